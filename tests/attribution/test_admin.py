from urllib.parse import urlencode

import pytest
from django.utils import timezone

from attribution import services
from attribution.models import Conversion, MatchTrace, Postback, PostbackAttempt, TrackingLink
from attribution.models import TestDevice as QaDevice
from core.redis import get_redis
from tests.attribution.conftest import click_params
from tests.factories import StaffUserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    user = StaffUserFactory(is_superuser=True)
    client.force_login(user)
    return client


def test_creating_a_link_in_the_admin_replicates_it_and_shows_the_click_url_with_macros(
    admin_client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            "/admin/attribution/trackinglink/add/",
            {
                "platform": "tencent",
                "app_id": "com.kuaipao.app",
                "os": "android",
                "campaign_name": "双11 拉新",
                "enabled": "on",
                "device_window_days": "7",
                "ipua_window_hours": "24",
                "postback_activate": "on",
                "rate_limit_per_second": "1000",
            },
        )
    assert response.status_code == 302, response.content
    link = TrackingLink.objects.get()
    assert get_redis().hget(f"att:link:{link.token}", "platform") == b"tencent"
    page = admin_client.get(f"/admin/attribution/trackinglink/{link.pk}/change/").content.decode()
    assert f"/t/tencent/{link.token}?" in page
    for macro in ("__CLICK_ID__", "imei_md5=__MUID__", "__HASH_OAID__", "__CALLBACK__", "__CLICK_TIME__"):
        assert macro in page


def test_out_of_range_window_is_refused_by_the_form(admin_client):
    response = admin_client.post(
        "/admin/attribution/trackinglink/add/",
        {
            "platform": "generic",
            "app_id": "a",
            "os": "ios",
            "campaign_name": "c",
            "device_window_days": "31",
            "ipua_window_hours": "24",
            "rate_limit_per_second": "10",
        },
    )
    assert response.status_code == 200 and TrackingLink.objects.count() == 0


def test_match_trace_pages_show_considered_clicks_and_why(admin_client, make_link, client):
    link = make_link("oceanengine", os="ios")
    client.get(f"/t/oceanengine/{link.token}?{urlencode(click_params('oceanengine', '', idfa='AB-1'))}")
    outcome = services.activation_record(
        event_id="ev-1",
        app_id=link.app_id,
        os="ios",
        user_id="1",
        device={"idfa": "AB-1"},
        ip=None,
        ua=None,
        occurred_at=timezone.now(),
    )
    page = admin_client.get(f"/admin/attribution/matchtrace/{outcome.trace.pk}/change/").content.decode()
    assert "matched" in page and "last click before the activation" in page
    device = admin_client.get("/admin/attribution/matchtrace/device/", {"app_id": link.app_id, "idfa": "AB-1"})
    text = device.content.decode()
    assert device.status_code == 200 and "reinstall" in text and "idfa within the 7 d window" in text
    assert admin_client.get("/admin/attribution/matchtrace/").status_code == 200


def test_forget_this_device_removes_its_conversion_and_clicks(
    admin_client, make_link, client, django_capture_on_commit_callbacks
):
    link = make_link("oceanengine", os="ios")
    device = services.test_device_save(device=QaDevice(label="QA", idfa="AB-2", app_id=link.app_id))
    client.get(f"/t/oceanengine/{link.token}?{urlencode(click_params('oceanengine', '', idfa='AB-2'))}")
    services.activation_record(
        event_id="ev-2",
        app_id=link.app_id,
        os="ios",
        user_id=None,
        device={"idfa": "AB-2"},
        ip=None,
        ua=None,
        occurred_at=timezone.now(),
    )
    assert Conversion.objects.get().is_test
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            "/admin/attribution/testdevice/", {"action": "forget_devices", "_selected_action": [device.pk]}
        )
    assert response.status_code == 302
    assert Conversion.objects.count() == 0 and MatchTrace.objects.count() == 0
    assert list(get_redis().scan_iter(match=f"att:k:{link.id}:idfa:*")) == []


def test_failed_postbacks_list_shows_attempts_and_retry_action_resends(
    admin_client, make_link, ad_platform, django_capture_on_commit_callbacks
):
    link = make_link("generic")
    now = timezone.now()
    conversion = Conversion.objects.create(
        link=link,
        platform="generic",
        app_id=link.app_id,
        activation_event_id="e",
        click_id="c",
        click_at=now,
        activated_at=now,
        seconds_to_install=0,
        match_method="idfa",
        match_key="idfa:x",
        callback=ad_platform.url + "/generic/cb",
    )
    postback = Postback.objects.create(
        conversion=conversion,
        event_type="activate",
        source_event_id="e",
        event_time=now,
        status="failed",
        attempt_count=1,
        last_error="HTTP 500",
    )
    PostbackAttempt.objects.create(postback=postback, number=1, method="GET", url="u", status_code=500, latency_ms=3)
    listing = admin_client.get("/admin/attribution/postback/", {"delivery": "failed"})
    assert listing.status_code == 200 and "HTTP 500" in listing.content.decode()
    detail = admin_client.get(f"/admin/attribution/postback/{postback.pk}/change/")
    assert detail.status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(
            "/admin/attribution/postback/", {"action": "retry_postbacks", "_selected_action": [postback.pk]}
        )
    postback.refresh_from_db()
    assert postback.status == "succeeded" and len(ad_platform.received("generic")) == 1


def test_conversion_and_pending_event_lists_render(admin_client):
    for url in (
        "/admin/attribution/conversion/",
        "/admin/attribution/pendingevent/",
        "/admin/attribution/testdevice/",
        "/admin/attribution/trackinglink/",
    ):
        assert admin_client.get(url).status_code == 200


def test_deleting_links_in_the_admin_removes_their_replicas(
    admin_client, make_link, django_capture_on_commit_callbacks
):
    first, second = make_link("generic"), make_link("kuaishou", os="android")
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            "/admin/attribution/trackinglink/",
            {"action": "delete_selected", "_selected_action": [first.pk, second.pk], "post": "yes"},
        )
    assert response.status_code == 302 and TrackingLink.objects.count() == 0
    assert not get_redis().exists(f"att:link:{first.token}", f"att:link:{second.token}")


def test_conversion_trace_and_postback_lists_query_a_fixed_number_of_times(admin_client, make_link):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    link = make_link("generic")
    now = timezone.now()
    urls = ("/admin/attribution/conversion/", "/admin/attribution/matchtrace/", "/admin/attribution/postback/")

    def add_conversion(n: int) -> None:
        conversion = Conversion.objects.create(
            link=link,
            platform="generic",
            app_id=link.app_id,
            activation_event_id=f"e{n}",
            click_id=f"c{n}",
            click_at=now,
            activated_at=now,
            seconds_to_install=0,
            match_method="idfa",
            match_key="idfa:x",
        )
        MatchTrace.objects.create(
            event_id=f"e{n}", app_id=link.app_id, activated_at=now, outcome="attributed", conversion=conversion
        )
        Postback.objects.create(conversion=conversion, event_type="activate", source_event_id=f"e{n}", event_time=now)

    def queries() -> list[int]:
        counts = []
        for url in urls:
            with CaptureQueriesContext(connection) as captured:
                assert admin_client.get(url).status_code == 200
            counts.append(len(captured))
        return counts

    add_conversion(1)
    one = queries()
    for n in range(2, 6):
        add_conversion(n)
    assert queries() == one


def test_device_page_shows_the_matchers_own_decision_for_an_activation_now(admin_client, make_link, client):
    """The device page and the matcher share one explanation (selectors.activation_explain):
    before the activation it says what the matcher then records; after it, a reinstall
    with the matched click rejected by the reinstall rule."""
    link = make_link("oceanengine", os="ios")
    client.get(f"/t/oceanengine/{link.token}?{urlencode(click_params('oceanengine', '', idfa='AB-9'))}")
    before = admin_client.get("/admin/attribution/matchtrace/device/", {"app_id": link.app_id, "idfa": "AB-9"})
    outcome = services.activation_record(
        event_id="ev-9",
        app_id=link.app_id,
        os="ios",
        user_id="9",
        device={"idfa": "AB-9"},
        ip=None,
        ua=None,
        occurred_at=timezone.now(),
    )
    assert outcome.outcome == "attributed"
    decided = outcome.trace.reason.split(" · ")[0]  # what follows are the fraud rule's and test devices' notes
    assert decided == "matched by idfa" and f'<p id="verdict">{decided}</p>' in before.content.decode()
    after = admin_client.get("/admin/attribution/matchtrace/device/", {"app_id": link.app_id, "idfa": "AB-9"})
    text = after.content.decode()
    assert f"reinstall: device already attributed to conversion {outcome.conversion.pk}" in text
    assert "reinstall rule:" in text and "would have won: last click before the activation" in text


def test_save_on_a_read_only_conversion_page_never_undoes_a_release_made_meanwhile(make_link, client, rf):
    from django.contrib.admin.sites import site
    from django.contrib.auth import get_user_model

    from attribution.models import FraudStatus

    link = make_link("oceanengine", os="ios")
    client.get(f"/t/oceanengine/{link.token}?{urlencode(click_params('oceanengine', '', idfa='AB-8'))}")
    conversion = services.activation_record(
        event_id="ev-8",
        app_id=link.app_id,
        os="ios",
        user_id="8",
        device={"idfa": "AB-8"},
        ip=None,
        ua=None,
        occurred_at=timezone.now(),
    ).conversion
    Conversion.objects.filter(pk=conversion.pk).update(fraud_status=FraudStatus.REJECTED)
    loaded = Conversion.objects.get(pk=conversion.pk)  # the admin reads the conversion at the start...
    services.conversion_release(conversion=conversion, released_by="another operator")  # ...it is released
    request = rf.post(f"/admin/attribution/conversion/{conversion.pk}/change/")
    request.user = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw-for-tests-2026")
    admin_ = site._registry[Conversion]
    admin_.save_model(request, loaded, admin_.get_form(request, loaded)(instance=loaded), change=True)
    conversion.refresh_from_db()
    assert (conversion.fraud_status, conversion.released_by) == (FraudStatus.RELEASED, "another operator")
