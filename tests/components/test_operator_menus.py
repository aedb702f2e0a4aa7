"""Operators and analysts see campaign models; technical records (processed
events, dead letters, sandbox paycodes...) are for the technical group."""

from __future__ import annotations

import pytest
from django.urls import reverse

from core.services import (
    ANALYST_GROUP,
    OPERATOR_GROUP,
    TECHNICAL_GROUP,
    TECHNICAL_MODELS,
    groups_sync,
    staff_user_ensure,
)

pytestmark = pytest.mark.django_db

TECHNICAL_URLS = [
    "admin:config_processedevent_changelist",
    "admin:config_deadletter_changelist",
    "admin:payments_sandboxpaycode_changelist",
    "admin:attribution_sandboxpostback_changelist",
]


@pytest.mark.parametrize("group", [OPERATOR_GROUP, ANALYST_GROUP])
def test_operators_and_analysts_see_campaign_models_only(client, group):
    groups_sync()
    client.force_login(staff_user_ensure(username=f"u-{group}", password="pw-123456789", group=group))
    index = client.get(reverse("admin:index")).content.decode()
    assert "/admin/activities/activity/" in index
    for app_label, model in TECHNICAL_MODELS:
        assert f"/admin/{app_label}/{model}/" not in index
    for name in TECHNICAL_URLS:
        assert client.get(reverse(name)).status_code == 403


def test_the_technical_group_reads_the_technical_lists(client):
    groups_sync()
    client.force_login(staff_user_ensure(username="tech", password="pw-123456789", group=TECHNICAL_GROUP))
    for name in TECHNICAL_URLS:
        assert client.get(reverse(name)).status_code == 200
