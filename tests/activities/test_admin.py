import re

import pytest
from django.urls import reverse

from activities import services
from activities.models import Activity, AuditEntry
from components.models import Component
from core.services import OPERATOR_GROUP, groups_sync, staff_user_ensure

pytestmark = pytest.mark.django_db


@pytest.fixture
def op(client):
    groups_sync()
    user = staff_user_ensure(username="operator", password="operator-demo-2026", group=OPERATOR_GROUP)
    client.force_login(user)
    return user


CONFIRM = {"confirm": "1", "confirm_warnings": "on"}


def _inline_data(activity, rows):
    """POST data for the activity page: its fields plus the components inline."""
    data = {
        "name": activity.name,
        "slug": activity.slug,
        "description": activity.description,
        "starts_at_0": "",
        "starts_at_1": "",
        "ends_at_0": "",
        "ends_at_1": "",
        "theme_background_color": activity.theme_background_color,
        "theme_header_image": "",
        "theme_share_title": "",
        "theme_share_image": "",
        "components-TOTAL_FORMS": str(len(rows)),
        "components-INITIAL_FORMS": str(len(rows)),
        "components-MIN_NUM_FORMS": "0",
        "components-MAX_NUM_FORMS": "1000",
    }
    for i, (component, position, extra) in enumerate(rows):
        data.update(
            {
                f"components-{i}-id": str(component.pk),
                f"components-{i}-activity": str(activity.pk),
                f"components-{i}-position": str(position),
                f"components-{i}-title": component.title,
                f"components-{i}-enabled": "on" if component.enabled else "",
                **{f"components-{i}-{k}": v for k, v in extra.items()},
            }
        )
    return {k: v for k, v in data.items() if v is not None}


def test_list_shows_status_badges_and_filters_and_search(op, client, make_activity, publish):
    online = make_activity(slug="spring-sale", name="Spring sale")
    publish(online)
    make_activity(slug="autumn", name="Autumn")
    url = reverse("admin:activities_activity_changelist")
    page = client.get(url).content.decode()
    assert 'data-status="online"' in page and 'data-status="draft"' in page
    filtered = client.get(url, {"status__exact": "online"}).content.decode()
    assert "Spring sale" in filtered and "Autumn" not in filtered
    searched = client.get(url, {"q": "autumn"}).content.decode()
    assert "Autumn" in searched and "Spring sale" not in searched


def test_operator_creates_an_activity_through_the_admin_and_it_is_audited(op, client):
    response = client.post(
        reverse("admin:activities_activity_add"),
        {
            "name": "Double 11",
            "slug": "double-11",
            "description": "",
            "starts_at_0": "",
            "starts_at_1": "",
            "ends_at_0": "",
            "ends_at_1": "",
            "theme_background_color": "#ff0000",
            "components-TOTAL_FORMS": "0",
            "components-INITIAL_FORMS": "0",
            "components-MIN_NUM_FORMS": "0",
            "components-MAX_NUM_FORMS": "1000",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    activity = Activity.objects.get(slug="double-11")
    assert activity.created_by == op and activity.status == "draft"
    assert AuditEntry.objects.filter(activity=activity, action="create", actor=op).exists()


def test_bad_activity_values_are_form_errors(op, client):
    response = client.post(
        reverse("admin:activities_activity_add"),
        {
            "name": "X",
            "slug": "x",
            "starts_at_0": "2026-12-02",
            "starts_at_1": "10:00:00",
            "ends_at_0": "2026-12-01",
            "ends_at_1": "10:00:00",
            "theme_background_color": "red",
            "components-TOTAL_FORMS": "0",
            "components-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "ends_at" in errors and "theme_background_color" in errors
    assert not Activity.objects.filter(slug="x").exists()


def test_component_form_is_generated_from_the_schema(op, client, make_activity):
    activity = make_activity(components=())
    url = reverse("admin:components_component_add") + f"?activity={activity.pk}&type=banner"
    page = client.get(url).content.decode()
    assert 'name="cfg_image"' in page and 'name="cfg_link"' in page and 'name="cfg_alt"' in page
    assert 'name="config"' not in page
    bad = client.post(url, {"title": "Top", "enabled": "on", "cfg_image": "javascript:alert(1)"})
    assert bad.status_code == 200 and "cfg_image" in bad.context["adminform"].form.errors
    assert not Component.objects.exists()
    ok = client.post(url, {"title": "Top", "enabled": "on", "cfg_image": "https://img.example.com/a.png"})
    assert ok.status_code == 302 and ok["Location"] == reverse("admin:activities_activity_change", args=[activity.pk])
    component = Component.objects.get()
    assert component.config == {"image": "https://img.example.com/a.png", "link": "", "alt": ""}
    edit = client.get(reverse("admin:components_component_change", args=[component.pk])).content.decode()
    assert 'value="https://img.example.com/a.png"' in edit
    rich_url = reverse("admin:components_component_add") + f"?activity={activity.pk}&type=rich_text"
    assert "<textarea" in client.get(rich_url).content.decode()


def test_components_are_reordered_renamed_and_removed_from_the_activity_page(op, client, make_activity):
    activity = make_activity(components=[("countdown", {}), ("rich_text", {"html": "a"}), ("countdown", {})])
    a, b, c = activity.components.order_by("position")
    page = client.get(reverse("admin:activities_activity_change", args=[activity.pk])).content.decode()
    assert "hd-up" in page and "admin-reorder.js" in page and 'data-type="banner"' in page
    data = _inline_data(activity, [(a, 3, {}), (b, 1, {"title": "Rules"}), (c, 2, {"DELETE": "on"})])
    response = client.post(reverse("admin:activities_activity_change", args=[activity.pk]), data)
    assert response.status_code == 302, response.content.decode()[:3000]
    assert list(activity.components.order_by("position").values_list("pk", "title")) == [(b.pk, "Rules"), (a.pk, "")]
    actions = set(AuditEntry.objects.filter(activity=activity, actor=op).values_list("action", flat=True))
    assert {"reorder", "update", "delete"} <= actions


def test_publish_status_rollback_and_template_buttons(op, client, make_activity):
    activity = make_activity(components=[("rich_text", {"html": "<p>v1</p>"})])
    change = reverse("admin:activities_activity_change", args=[activity.pk])
    response = client.post(reverse("admin:activities_activity_publish", args=[activity.pk]), CONFIRM)
    assert response.status_code == 302 and response["Location"] == change
    activity.refresh_from_db()
    assert activity.status == "online" and activity.published_revision.number == 1
    first = activity.published_revision

    services.component_update(component=activity.components.get(), actor=op, config={"html": "<p>v2</p>"})
    client.post(reverse("admin:activities_activity_publish", args=[activity.pk]), CONFIRM)
    page = client.get(change).content.decode()
    assert "Roll back to r1" in page and "hd-preview-link" in page
    client.post(reverse("admin:activities_activity_rollback", args=[activity.pk, first.pk]))
    activity.refresh_from_db()
    assert activity.published_revision.number == 3 and activity.published_revision.rolled_back_from == first

    client.post(reverse("admin:activities_activity_status", args=[activity.pk, "offline"]))
    activity.refresh_from_db()
    assert activity.status == "offline"
    refused = client.post(reverse("admin:activities_activity_status", args=[activity.pk, "scheduled"]), follow=True)
    assert "cannot go from offline to scheduled" in refused.content.decode()

    client.post(reverse("admin:activities_activity_save_template", args=[activity.pk]))
    template = Activity.objects.get(is_template=True)
    client.post(reverse("admin:activities_activity_from_template", args=[template.pk]))
    copy = Activity.objects.filter(is_template=False).exclude(pk=activity.pk).get()
    assert copy.status == "draft" and copy.components.get().config == {"html": "<p>v2</p>"}
    assert client.put(reverse("admin:activities_activity_publish", args=[activity.pk])).status_code == 405


def test_preview_link_from_the_admin_works_without_a_login(op, client, make_activity):
    from django.test import Client

    activity = make_activity(components=[("rich_text", {"html": "<p>secret draft</p>"})])
    page = client.get(reverse("admin:activities_activity_change", args=[activity.pk])).content.decode()
    link = re.search(r'class="hd-preview-link" href="([^"]+)"', page).group(1)
    assert "secret draft" in Client().get(link).content.decode()


def test_list_actions_publish_and_make_templates(op, client, make_activity):
    good, empty = make_activity(), make_activity(components=())
    url = reverse("admin:activities_activity_changelist")
    response = client.post(url, {"action": "action_publish", "_selected_action": [good.pk, empty.pk]}, follow=True)
    good.refresh_from_db()
    empty.refresh_from_db()
    assert good.status == "online" and empty.status == "draft"
    assert "No enabled component: add one" in response.content.decode()
    client.post(url, {"action": "action_save_as_template", "_selected_action": [good.pk]})
    assert Activity.objects.filter(is_template=True).count() == 1


def test_audit_log_is_visible_and_read_only(op, client, make_activity):
    make_activity()
    url = reverse("admin:activities_auditentry_changelist")
    assert "op-tests" in client.get(url).content.decode()
    entry = AuditEntry.objects.first()
    assert (
        client.post(reverse("admin:activities_auditentry_delete", args=[entry.pk]), {"post": "yes"}).status_code == 403
    )


def test_a_component_of_an_unregistered_type_is_shown_read_only(op, client, make_activity):
    activity = make_activity(components=())
    component = Component.objects.create(activity=activity, type="gone_type", config={"x": 1})
    url = reverse("admin:components_component_change", args=[component.pk])
    assert client.get(url).status_code == 200
    assert client.get(reverse("admin:activities_activity_change", args=[activity.pk])).status_code == 200
    client.post(url, {"title": "changed", "enabled": "on"})
    component.refresh_from_db()
    assert component.title == ""
