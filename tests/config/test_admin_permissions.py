"""Read-only means read-only: the analyst group can run no admin action and no admin
view that writes or calls out, while operators still can.

The walk covers every registered ModelAdmin, every action it offers and every URL it
serves (admin.site._registry), so an action or view added later is covered without
editing this file. Each POST is a real request as the analyst; the whole database
(every model's rows), Redis (outside the cache) and a loopback stand-in for every
outside service (ad platforms, payment service) are compared before and after."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO

import pytest
from django.apps import apps
from django.conf import settings
from django.contrib import admin
from django.contrib.auth.models import Group
from django.core.checks import run_checks
from django.core.management import call_command
from django.test import RequestFactory
from django.urls import URLPattern, reverse
from django.utils import timezone

from attribution.models import Conversion, Postback, TrackingLink
from attribution.models import TestDevice as QaDevice
from core.redis import get_redis
from core.services import DOMAIN_APPS, TECHNICAL_MODELS
from tests.factories import StaffUserFactory

pytestmark = pytest.mark.django_db

# Rows that a refused request may still write: the login session itself.
NOT_STATE = {"sessions.Session"}
# Django's own read-only admin pages (a POST there renders the page, it changes nothing).
DJANGO_READ_VIEWS = ("_changelist", "_history")


class OutsideWorld:
    """Every outside service on one loopback port; counts what reaches it."""

    def __init__(self):
        self.requests: list[str] = []
        world = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                world.requests.append(f"{self.command} {self.path}")
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"code": 0, "result": 1}')

            do_GET = do_POST = _answer  # noqa: N815

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def outside(settings):
    world = OutsideWorld()
    settings.POSTBACK_OCEANENGINE_URL = world.url + "/oceanengine/"
    settings.POSTBACK_KUAISHOU_URL = world.url + "/kuaishou/"
    settings.PAYMENT_SERVICE_URL = world.url + "/pay"
    yield world
    world.close()


def _state() -> dict:
    db = {
        model._meta.label: list(model._default_manager.order_by("pk").values())
        for model in apps.get_models()
        if model._meta.label not in NOT_STATE
    }
    # Not state: the cache, and the clicks' per-second rate-limit windows, which expire
    # on their own a second or two after the fixture's clicks (mid-walk on a slow machine).
    volatile = (settings.CACHES["default"].get("KEY_PREFIX", "") + ":", settings.ATTRIBUTION_REDIS_PREFIX + ":rl:")
    client = get_redis()
    redis = {key: client.dump(key) for key in client.scan_iter() if not key.decode().startswith(volatile)}
    return {"db": db, "redis": redis}


def _diff(before: dict, after: dict) -> list[str]:
    changed = [label for label, rows in after["db"].items() if rows != before["db"].get(label)]
    changed += [f"redis {key!r}" for key in set(before["redis"]) ^ set(after["redis"])]
    changed += [f"redis {key!r}" for key in before["redis"] if after["redis"].get(key) != before["redis"][key]]
    return changed


@pytest.fixture
def everything(outside):
    """One of everything (seed_demo), plus the rows the attribution actions act on."""
    call_command("seed_demo", stdout=StringIO())
    link = TrackingLink.objects.filter(platform="generic").first()
    now = timezone.now()
    conversion = Conversion.objects.create(
        link=link,
        platform="generic",
        app_id=link.app_id,
        activation_event_id="ev-admin-walk",
        click_id="click-admin-walk",
        click_at=now,
        activated_at=now,
        seconds_to_install=0,
        match_method="idfa",
        match_key="idfa:X",
        callback=outside.url + "/generic/cb?click=1",
    )
    Postback.objects.create(conversion=conversion, event_type="activate", source_event_id="ev", event_time=now)
    Postback.objects.filter(conversion=conversion).update(status="failed", attempt_count=3)
    QaDevice.objects.create(label="QA phone", idfa="AAAA-BBBB", keys=["idfa:AAAA-BBBB"])


def _login(client, group: str):
    user = StaffUserFactory(username=group + "-walker")
    user.groups.add(Group.objects.get(name=group))
    client.force_login(user)
    return user


def _first_pk(model) -> str:
    pk = model._default_manager.order_by("pk").values_list("pk", flat=True).first()
    return str(pk if pk is not None else 1)


def _admin_urls(model, model_admin):
    """(url, name, view) for every named URL the ModelAdmin serves, arguments filled in."""
    for pattern in model_admin.get_urls():
        if not isinstance(pattern, URLPattern) or not pattern.name:
            continue
        kwargs = {}
        for name, converter in pattern.pattern.converters.items():
            kwargs[name] = _first_pk(model) if converter.regex in ("[0-9]+", ".+") else "x"
        try:
            url = reverse(f"admin:{pattern.name}", kwargs=kwargs)
        except Exception:
            continue
        yield url, pattern.name, pattern.callback


def _actions(model_admin, user) -> dict:
    request = RequestFactory().get("/admin/")
    request.user = user
    return model_admin.get_actions(request)


def test_every_admin_action_declares_the_permission_it_needs():
    errors = [e for e in run_checks(tags=["admin"]) if e.id == "huodong.E001"]
    assert errors == [], [e.msg for e in errors]


def test_the_analyst_can_run_no_action_that_writes_or_calls_out_and_the_operator_still_can(client, everything, outside):
    analyst = _login(client, "analyst")
    walked, state = 0, _state()
    for model, model_admin in admin.site._registry.items():
        opts = model._meta
        changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        offered = _actions(model_admin, analyst)
        for func, name, _ in model_admin._get_base_actions():
            needed = set(getattr(func, "allowed_permissions", ()))
            if name in offered:
                # only a read-only action may be offered to a read-only account
                assert needed <= {"view"}, f"{opts.label}: analyst is offered {name!r} needing {needed}"
            before, calls = state, len(outside.requests)
            response = client.post(
                changelist,
                {"action": name, "_selected_action": [_first_pk(model)], "select_across": "1", "index": "0"},
            )
            if name not in offered:
                assert response.status_code == 403, f"{opts.label} action {name!r}: {response.status_code}"
            state = _state()
            assert _diff(before, state) == [], f"{opts.label} action {name!r} changed state"
            assert len(outside.requests) == calls, f"{opts.label} action {name!r} called out"
            walked += 1
    assert walked >= 15  # every app's actions were reached (delete_selected on each, plus their own)


def test_the_analyst_gets_a_403_from_every_admin_view_that_writes_and_nothing_changes(client, everything, outside):
    _login(client, "analyst")
    walked, state = 0, _state()
    for model, model_admin in admin.site._registry.items():
        for url, name, view in _admin_urls(model, model_admin):
            read_only = name.endswith(DJANGO_READ_VIEWS) or getattr(view, "admin_read_only", False)
            before, calls = state, len(outside.requests)
            response = client.post(url, {"post": "yes", "_save": "1"})
            refused = (403, 405) if model._default_manager.exists() else (403, 404, 405)  # 404: no such object
            if not read_only:
                assert response.status_code in refused, f"{url} ({name}) answered {response.status_code}"
            state = _state()
            assert _diff(before, state) == [], f"POST {url} ({name}) changed state"
            assert len(outside.requests) == calls, f"POST {url} ({name}) called out"
            walked += 1
    assert walked >= 100


def test_the_operator_runs_the_write_actions(client, everything, outside, django_capture_on_commit_callbacks):
    operator = _login(client, "operator")
    superuser = StaffUserFactory(username="root-walker", is_superuser=True)
    for model, model_admin in admin.site._registry.items():
        if (
            model._meta.app_label not in DOMAIN_APPS
            or (model._meta.app_label, model._meta.model_name) in TECHNICAL_MODELS
        ):
            continue  # technical records are the technical group's
        missing = set(_actions(model_admin, superuser)) - set(_actions(model_admin, operator))
        assert not missing, f"{model._meta.label}: the operator is not offered {sorted(missing)}"
    link = TrackingLink.objects.filter(enabled=True).first()
    changelist = reverse("admin:attribution_trackinglink_changelist")
    response = client.post(changelist, {"action": "disable_links", "_selected_action": [link.pk], "index": "0"})
    assert response.status_code == 302
    link.refresh_from_db()
    assert not link.enabled
    failed = Postback.objects.get(status="failed")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:attribution_postback_changelist"),
            {"action": "retry_postbacks", "_selected_action": [failed.pk], "index": "0"},
        )
    assert response.status_code == 302
    failed.refresh_from_db()
    assert failed.status == "succeeded" and any(r.startswith("GET /generic/cb") for r in outside.requests)
