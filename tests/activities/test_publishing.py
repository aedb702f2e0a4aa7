import json

import pytest
from django.core.cache import cache

from activities import services
from activities.models import ActivityRevision, AuditEntry
from tests.activities import testing_types  # noqa: F401  (registers the test types)

pytestmark = pytest.mark.django_db

RICH = {"html": "<p>rules</p>"}


def api(client, slug):
    return client.get(f"/api/v1/activities/{slug}")


def test_published_snapshot_is_served_with_components_in_order(make_activity, publish, api_client):
    activity = make_activity(
        components=[("banner", {"image": "https://img.example.com/1.png"}), ("rich_text", RICH), ("countdown", {})],
        theme_background_color="#112233",
    )
    publish(activity)
    response = api(api_client, activity.slug)
    assert response.status_code == 200
    body = response.json()
    assert body["slug"] == activity.slug and body["status"] == "online" and body["revision"] == 1
    assert body["theme"]["background_color"] == "#112233"
    assert [c["type"] for c in body["components"]] == ["banner", "rich_text", "countdown"]
    banner = body["components"][0]
    assert set(banner) == {"id", "type", "position", "title", "config"}
    assert banner["config"] == {"image": "https://img.example.com/1.png", "link": "", "alt": ""}
    assert body["components"][2]["config"]["label"] == "距活动结束还有"  # default filled in


def test_edits_change_nothing_until_republished(make_activity, publish, api_client, client, operator):
    activity = make_activity(components=[("banner", {"image": "https://img.example.com/1.png"}), ("rich_text", RICH)])
    publish(activity)
    before_api = api(api_client, activity.slug).json()
    before_page = client.get(f"/a/{activity.slug}/").content

    banner, rich = activity.components.order_by("position")
    services.component_update(component=rich, actor=operator, config={"html": "<p>changed</p>"})
    services.components_reorder(activity=activity, actor=operator, component_ids=[rich.pk, banner.pk])
    services.activity_update(activity=activity, actor=operator, name="Renamed", theme_background_color="#000000")
    services.component_create(activity=activity, actor=operator, type="countdown", config={})
    cache.clear()  # even with a cold cache users still see the published revision
    assert api(api_client, activity.slug).json() == before_api
    assert client.get(f"/a/{activity.slug}/").content == before_page

    publish(activity)
    after = api(api_client, activity.slug).json()
    assert after["revision"] == 2 and after["name"] == "Renamed"
    assert [c["type"] for c in after["components"]] == ["rich_text", "banner", "countdown"]
    assert after["components"][0]["config"]["html"] == "<p>changed</p>"
    page = client.get(f"/a/{activity.slug}/").content.decode()
    assert "changed" in page and page.index('data-component-type="rich_text"') < page.index(
        'data-component-type="banner"'
    )


def test_republishing_unchanged_content_adds_no_revision(make_activity, publish):
    activity = make_activity()
    first = publish(activity)
    assert publish(activity) == first
    assert ActivityRevision.objects.filter(activity=activity).count() == 1
    assert AuditEntry.objects.filter(activity=activity, action="publish").count() == 1


def test_disabled_components_are_left_out_of_the_snapshot(make_activity, publish, operator, api_client):
    activity = make_activity(components=[("banner", {"image": "https://img.example.com/1.png"}), ("rich_text", RICH)])
    services.component_update(component=activity.components.get(type="rich_text"), actor=operator, enabled=False)
    publish(activity)
    assert [c["type"] for c in api(api_client, activity.slug).json()["components"]] == ["banner"]


def test_rollback_serves_an_earlier_revision_as_a_new_one(make_activity, publish, operator, api_client, committed):
    activity = make_activity(components=[("rich_text", {"html": "<p>one</p>"})])
    first = publish(activity)
    services.component_update(component=activity.components.get(), actor=operator, config={"html": "<p>two</p>"})
    publish(activity)
    assert api(api_client, activity.slug).json()["components"][0]["config"]["html"] == "<p>two</p>"

    with committed():
        rolled = services.activity_rollback(activity=activity, revision=first, actor=operator)
    body = api(api_client, activity.slug).json()
    assert rolled.number == 3 and rolled.rolled_back_from == first and body["revision"] == 3
    assert body["components"][0]["config"]["html"] == "<p>one</p>"
    # the draft keeps the operator's edits
    assert activity.components.get().config["html"] == "<p>two</p>"
    entry = AuditEntry.objects.filter(action="rollback").get()
    assert entry.changes == {"revision": [2, 3], "copy_of": [None, 1]} and entry.actor == operator


def test_rollback_to_the_current_revision_or_anothers_revision_is_refused(make_activity, publish, operator):
    from core.errors import DomainError

    activity, other = make_activity(), make_activity()
    current = publish(activity)
    foreign = publish(other)
    with pytest.raises(DomainError) as exc:
        services.activity_rollback(activity=activity, revision=current, actor=operator)
    assert exc.value.code == "already_current"
    with pytest.raises(DomainError) as exc:
        services.activity_rollback(activity=activity, revision=foreign, actor=operator)
    assert exc.value.code == "revision_mismatch"


@pytest.mark.parametrize(
    ("status", "code"),
    [
        ("draft", "activity_not_found"),
        ("scheduled", "activity_not_started"),
        ("offline", "activity_offline"),
        ("ended", "activity_ended"),
        ("archived", "activity_ended"),
    ],
)
def test_an_activity_that_is_not_online_is_a_404(make_activity, publish, api_client, client, status, code):
    from activities.cache import public_cache_invalidate
    from activities.models import Activity

    activity = make_activity()
    if status != "draft":
        publish(activity)
        Activity.objects.filter(pk=activity.pk).update(status=status)
        public_cache_invalidate(activity.slug)
    response = api(api_client, activity.slug)
    assert response.status_code == 404 and response.json()["error"]["code"] == code
    page = client.get(f"/a/{activity.slug}/")
    assert page.status_code == 404 and f'data-error-code="{code}"' in page.content.decode()


def test_unknown_slug_and_templates_are_404(make_activity, api_client, client, operator):
    template = services.activity_save_as_template(activity=make_activity(), actor=operator)
    for slug in ("no-such-thing", template.slug):
        assert api(api_client, slug).json()["error"]["code"] == "activity_not_found"
        assert client.get(f"/a/{slug}/").status_code == 404


def test_unknown_slugs_create_no_cache_entries(make_activity, publish, api_client, client):
    from core.redis import get_redis

    activity = make_activity()
    publish(activity)
    assert api(api_client, activity.slug).status_code == 200  # a real activity is cached...
    assert client.get(f"/a/{activity.slug}/").status_code == 200
    keys = get_redis().dbsize()
    for i in range(200):  # ...made-up slugs are not: nobody can fill Redis with them
        assert api(api_client, f"made-up-{i}").status_code == 404
        assert client.get(f"/a/made-up-page-{i}/").status_code == 404
    assert get_redis().dbsize() == keys


def test_status_changes_reach_the_cached_page_at_once(make_activity, publish, operator, client, committed):
    activity = make_activity()
    publish(activity)
    assert client.get(f"/a/{activity.slug}/").status_code == 200
    with committed():
        services.activity_transition(activity=activity, to="offline", actor=operator)
    assert client.get(f"/a/{activity.slug}/").status_code == 404
    with committed():
        services.activity_transition(activity=activity, to="online", actor=operator)
    assert client.get(f"/a/{activity.slug}/").status_code == 200


def test_the_page_is_served_from_cache_until_the_next_publish(make_activity, publish, client):
    activity = make_activity(components=[("rich_text", {"html": "<p>cached</p>"})])
    revision = publish(activity)
    assert "cached" in client.get(f"/a/{activity.slug}/").content.decode()
    snapshot = revision.snapshot
    snapshot["components"][0]["config"]["html"] = "<p>tampered</p>"
    ActivityRevision.objects.filter(pk=revision.pk).update(snapshot=snapshot)
    assert "cached" in client.get(f"/a/{activity.slug}/").content.decode()


def test_page_renders_theme_components_and_the_runtime(make_activity, publish, client):
    activity = make_activity(
        components=[("banner", {"image": "https://img.example.com/1.png", "link": "https://example.com/x"})],
        theme_background_color="#ABCDEF",
        theme_header_image="https://img.example.com/header.png",
        theme_share_title="Share me",
    )
    publish(activity)
    html = client.get(f"/a/{activity.slug}/").content.decode()
    component = activity.components.get()
    assert f'data-activity-slug="{activity.slug}"' in html
    assert f'data-component-id="{component.pk}" data-component-type="banner"' in html
    assert "/static/huodong/huodong.js" in html and "#ABCDEF" in html
    assert 'href="https://example.com/x"' in html and "https://img.example.com/header.png" in html
    assert '<meta property="og:title" content="Share me">' in html


def test_live_state_is_per_request_and_per_user(make_activity, publish, api_client, user_client):
    activity = make_activity(components=[("banner", {"image": "https://img.example.com/1.png"}), ("test_stateful", {})])
    publish(activity)
    anonymous = api(api_client, activity.slug).json()["components"]
    assert "state" not in anonymous[0]
    assert anonymous[1]["state"] == {"user": None, "activity": activity.slug}
    response = api(user_client("10086"), activity.slug)
    assert response.json()["components"][1]["state"]["user"] == "10086"
    assert "Authorization" in response["Vary"]


def test_a_failing_live_state_yields_null_not_a_500(make_activity, publish, api_client):
    activity = make_activity(components=[("test_stateful", {"explode": True})])
    publish(activity)
    response = api(api_client, activity.slug)
    assert response.status_code == 200 and response.json()["components"][0]["state"] is None


def test_an_invalid_token_on_the_optional_auth_endpoint_is_a_401(make_activity, publish, api_client):
    activity = make_activity()
    publish(activity)
    api_client.credentials(HTTP_AUTHORIZATION="Bearer not-a-jwt")
    response = api(api_client, activity.slug)
    assert response.status_code == 401 and response.json()["error"]["code"] == "token_invalid"


def test_preview_link_shows_the_draft_and_expires(make_activity, client, settings):
    from django.core import signing

    from activities.views import preview_token_make

    activity = make_activity(components=[("rich_text", {"html": "<p>draft only</p>"})])
    token = preview_token_make(activity)
    response = client.get(f"/a/preview/{token}/")
    assert response.status_code == 200 and "draft only" in response.content.decode()
    assert response["X-Robots-Tag"] == "noindex"
    assert client.get(f"/a/{activity.slug}/").status_code == 404
    assert client.get(f"/a/preview/{token[:-2]}xx/").status_code == 403
    settings.ACTIVITY_PREVIEW_TTL_SECONDS = -1
    expired = client.get(f"/a/preview/{token}/")
    assert expired.status_code == 403 and "expired" in expired.content.decode()
    assert signing.loads(token, salt="activities.preview")["activity"] == activity.pk


def test_the_page_revalidates_with_an_etag_that_changes_on_publish(make_activity, publish, operator, client):
    activity = make_activity(components=[("rich_text", {"html": "<p>one</p>"})])
    publish(activity)
    first = client.get(f"/a/{activity.slug}/")
    assert first["Cache-Control"] == "no-cache"
    assert client.get(f"/a/{activity.slug}/", HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 304
    services.component_update(component=activity.components.get(), actor=operator, config={"html": "<p>two</p>"})
    publish(activity)
    again = client.get(f"/a/{activity.slug}/", HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 200 and "two" in again.content.decode() and again["ETag"] != first["ETag"]


def test_a_warm_page_and_api_never_touch_the_database(
    make_activity, publish, api_client, client, django_assert_num_queries
):
    activity = make_activity(components=[("rich_text", {"html": "<p>warm</p>"}), ("countdown", {})])
    publish(activity)
    cold_api, cold_page = api(api_client, activity.slug).json(), client.get(f"/a/{activity.slug}/").content
    with django_assert_num_queries(0):
        assert api(api_client, activity.slug).json() == cold_api
        assert client.get(f"/a/{activity.slug}/").content == cold_page


def test_a_reader_that_raced_a_publish_cannot_pin_stale_content(make_activity, publish, operator, api_client, client):
    from activities import cache

    activity = make_activity(components=[("rich_text", {"html": "<p>old</p>"})])
    publish(activity)
    raced = cache.public_activity_get(activity.slug, with_page=True)  # read just before the publish...
    services.component_update(component=activity.components.get(), actor=operator, config={"html": "<p>new</p>"})
    publish(activity)
    # ...and filled the cache after it, with what it had read
    cache.public_page_fill(activity.slug, raced.generation, "<p>stale page</p>")
    cache._entry_fill(
        "public", activity.slug, raced.generation, json.dumps({"status": "online", "body": raced.body}).encode()
    )
    body = api(api_client, activity.slug).json()
    assert body["revision"] == 2 and body["components"][0]["config"]["html"] == "<p>new</p>"
    page = client.get(f"/a/{activity.slug}/").content.decode()
    assert "stale page" not in page and "<p>new</p>" in page


@pytest.mark.django_db(transaction=True)
def test_concurrent_publishes_number_revisions_without_gaps_or_duplicates(operator):
    import threading

    from django.db import connection

    activity = services.activity_create(actor=operator, name="Race", slug="race")
    services.component_create(activity=activity, actor=operator, type="rich_text", config={"html": "<p>0</p>"})
    barrier = threading.Barrier(4)
    errors = []

    def publish_same():
        try:
            barrier.wait()
            services.activity_publish(activity=activity, actor=operator)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=publish_same) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    # the same content published four times at once: one revision
    assert list(ActivityRevision.objects.filter(activity=activity).values_list("number", flat=True)) == [1]
    activity.refresh_from_db()
    assert activity.status == "online" and activity.published_revision.number == 1


@pytest.mark.parametrize(
    "path", ["/api/v1/activities/%E4%B8%AD%E6%96%87", "/api/v1/activities/a%20b", "/api/v1/activities/"]
)
def test_odd_slugs_get_a_json_404(api_client, path):
    response = api_client.get(path)
    assert response.status_code == 404 and response.json()["error"]["code"]


def test_revision_admin_shows_the_frozen_snapshot(make_activity, publish, client):
    from core.services import OPERATOR_GROUP, groups_sync, staff_user_ensure

    groups_sync()
    client.force_login(staff_user_ensure(username="operator", password="pw-operator-2026", group=OPERATOR_GROUP))
    revision = publish(make_activity(components=[("rich_text", {"html": "<p>frozen text</p>"})]))
    page = client.get(f"/admin/activities/activityrevision/{revision.pk}/change/").content.decode()
    assert "frozen text" in page
