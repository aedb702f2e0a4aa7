"""The activity page's action messages and the component settings link speak Chinese."""

import pytest
from django.urls import reverse

from core.services import ANALYST_GROUP, OPERATOR_GROUP, groups_sync, staff_user_ensure

pytestmark = [pytest.mark.django_db, pytest.mark.chinese]

CONFIRM = {"confirm": "1", "confirm_warnings": "on"}


def test_publish_message_is_chinese(client, make_activity):
    groups_sync()
    client.force_login(staff_user_ensure(username="op-zh", password="operator-demo-2026", group=OPERATOR_GROUP))
    activity = make_activity(components=[("rich_text", {"html": "<p>v1</p>"})])
    page = client.post(reverse("admin:activities_activity_publish", args=[activity.pk]), CONFIRM, follow=True)
    assert "已发布版本 r1；活动当前状态：进行中。" in page.content.decode()
    status = client.post(reverse("admin:activities_activity_status", args=[activity.pk, "offline"]), follow=True)
    assert "活动当前状态：" in status.content.decode()


def test_analyst_sees_view_settings_not_edit_settings(client, make_activity):
    groups_sync()
    activity = make_activity(components=[("rich_text", {"html": "<p>v1</p>"})])
    client.force_login(staff_user_ensure(username="an-zh", password="analyst-demo-2026", group=ANALYST_GROUP))
    page = client.get(reverse("admin:activities_activity_change", args=[activity.pk])).content.decode()
    assert "查看设置" in page and "编辑设置" not in page
