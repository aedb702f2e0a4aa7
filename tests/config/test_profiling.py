"""Profiles on demand: a signed token from the admin profiles one request, sampled
slow requests and configured Celery tasks land in the same admin list."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core import signing
from django.test import Client

from core import profiling
from core.models import Profile
from core.services import groups_sync, staff_user_ensure

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator_admin() -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("root-profiler", "root@example.com", "pw-0123456789"))
    return client


def _token(admin: Client) -> str:
    page = admin.get("/admin/config/profile/token/")
    assert page.status_code == 200
    return page.context["token"]


def test_a_staff_token_profiles_one_request_and_the_report_is_readable_in_the_admin(operator_admin):
    token = _token(operator_admin)
    assert Client().get("/healthz", HTTP_X_PROFILE_TOKEN=token).status_code == 200
    assert Client().get(f"/readyz?_profile={token}").status_code in (200, 503)
    assert Client().get("/healthz").status_code == 200  # no token: not profiled
    names = sorted(Profile.objects.values_list("name", flat=True))
    assert names == ["GET /healthz", "GET /readyz"]
    profile = Profile.objects.get(name="GET /healthz")
    assert profile.trigger == "on_demand" and profile.requested_by == "root-profiler" and profile.kind == "request"
    assert "Recorded:" in profile.text and profile.duration_ms > 0  # a pyinstrument report
    listing = operator_admin.get("/admin/config/profile/")
    assert listing.status_code == 200 and b"GET /healthz" in listing.content
    detail = operator_admin.get(f"/admin/config/profile/{profile.pk}/change/")
    assert detail.status_code == 200 and b"Recorded:" in detail.content
    report = operator_admin.get(f"/admin/config/profile/{profile.pk}/html/")
    assert report.status_code == 200 and b"<html" in report.content.lower()
    assert report["Content-Security-Policy"] == "sandbox allow-scripts"


def test_forged_expired_or_unprivileged_tokens_profile_nothing(operator_admin, settings):
    groups_sync()
    analyst = staff_user_ensure(username="ana", password="pw-0123456789", group="analyst")
    analyst_client = Client()
    analyst_client.force_login(analyst)
    assert analyst_client.get("/admin/config/profile/token/").status_code == 403
    assert analyst_client.get("/admin/config/profile/").status_code == 403  # profiles are technical records
    forged = signing.TimestampSigner(salt="another-salt").sign("1")
    unprivileged = profiling.profile_token_mint(user=analyst)
    for token in (forged, unprivileged, "garbage"):
        assert Client().get("/healthz", HTTP_X_PROFILE_TOKEN=token).status_code == 200
    settings.PROFILE_TOKEN_TTL_SECONDS = -1  # every token has expired
    assert Client().get("/healthz", HTTP_X_PROFILE_TOKEN=_token(operator_admin)).status_code == 200
    assert Profile.objects.count() == 0


def test_sampled_requests_over_the_threshold_are_kept_as_slow(settings):
    settings.PROFILE_SLOW_SAMPLE_RATIO = 1.0
    settings.PROFILE_SLOW_REQUEST_MS = 10**6
    Client().get("/healthz")
    assert Profile.objects.count() == 0  # profiled, but not slow
    settings.PROFILE_SLOW_REQUEST_MS = 0
    Client().get("/healthz")
    (profile,) = Profile.objects.all()
    assert profile.trigger == "slow" and profile.requested_by == ""


def test_a_task_named_in_the_setting_is_profiled_on_each_run(settings):
    from attribution.tasks import postbacks_sweep_task, tracking_links_resync_task

    settings.PROFILE_CELERY_TASKS = [postbacks_sweep_task.name]
    postbacks_sweep_task.delay()
    tracking_links_resync_task.delay()
    (profile,) = Profile.objects.all()
    assert (profile.kind, profile.trigger, profile.name) == ("task", "setting", postbacks_sweep_task.name)
