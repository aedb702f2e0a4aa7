"""Refusals from services reach people in their language: the API's `message` follows
the request's Accept-Language (its `code` never changes), the admin speaks the
operator's language (Simplified Chinese by default)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from activities import services
from activities.models import Activity
from core.services import OPERATOR_GROUP, groups_sync, staff_user_ensure

pytestmark = [pytest.mark.django_db, pytest.mark.chinese]


def test_an_api_refusal_is_answered_in_the_requests_language_with_the_same_code(api_client):
    url = reverse("activity-api", args=["no-such-activity"])
    chinese = api_client.get(url, HTTP_ACCEPT_LANGUAGE="zh-Hans")
    english = api_client.get(url, HTTP_ACCEPT_LANGUAGE="en")
    assert chinese.status_code == english.status_code == 404
    assert chinese.json()["error"] == {"code": "activity_not_found", "message": "没有这个活动。"}
    assert english.json()["error"] == {"code": "activity_not_found", "message": "No such activity."}
    assert chinese["Content-Language"] == "zh-hans" and english["Content-Language"] == "en"


def test_a_views_refusal_follows_the_request_language_too(api_client):
    """ApiError raised by a view (not a service) takes the same road."""
    url = reverse("listing-cities", args=[987654])
    chinese = api_client.get(url, HTTP_ACCEPT_LANGUAGE="zh-Hans").json()["error"]
    english = api_client.get(url, HTTP_ACCEPT_LANGUAGE="en").json()["error"]
    assert chinese["code"] == english["code"] == "component_not_found"
    assert chinese["message"].startswith("已发布且在线的活动页上没有此 ID 的房源组件")
    assert english["message"].startswith("No listing component with this id")


def test_the_admin_shows_a_service_refusal_in_chinese_with_the_statuses_named_in_chinese(client, make_activity):
    groups_sync()
    operator = staff_user_ensure(username="operator", password="operator-demo-2026", group=OPERATOR_GROUP)
    client.force_login(operator)
    activity = make_activity(components=[("rich_text", {"html": "<p>hi</p>"})])
    services.activity_publish(activity=activity, actor=operator)
    services.activity_transition(activity=activity, to="offline", actor=operator)
    refused = client.post(reverse("admin:activities_activity_status", args=[activity.pk, "scheduled"]), follow=True)
    page = refused.content.decode()
    assert "活动不能从“已下线”变为“待上线”。" in page
    assert "cannot go from" not in page
    assert Activity.objects.get(pk=activity.pk).status == "offline"
