"""Each channel kind against a loopback stand-in checking payload and signature;
lifecycle: firing once, dedup, cooldown, acknowledge, one resolved message; failed
sends retried with backoff and recorded."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime, timedelta

import pytest

from alerts import channels, services
from alerts.models import Alert, AlertChannel, AlertDelivery
from alerts.services import Detection
from core.errors import Conflict
from tests.alerts.conftest import SECRETS

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)


def _channels(robots, **overrides) -> dict[str, AlertChannel]:
    made = {
        "wecom": AlertChannel(name="wecom", kind="wecom", url=f"{robots.url}/wecom/cgi-bin/webhook/send?key=robot-key"),
        "dingtalk": AlertChannel(
            name="dingtalk",
            kind="dingtalk",
            url=f"{robots.url}/dingtalk/robot/send?access_token=t",
            secret=SECRETS["dingtalk"],
        ),
        "feishu": AlertChannel(
            name="feishu", kind="feishu", url=f"{robots.url}/feishu/hook/x", secret=SECRETS["feishu"]
        ),
        "webhook": AlertChannel(name="webhook", kind="webhook", url=f"{robots.url}/webhook", secret=SECRETS["webhook"]),
        "email": AlertChannel(name="email", kind="email", emails="oncall@example.com, mkt@example.com"),
    }
    for channel in made.values():
        for name, value in overrides.items():
            setattr(channel, name, value)
        services.alert_channel_save(channel=channel)
    return made


def _detection(**fields) -> Detection:
    values = {
        "rule": "os_activation_drop",
        "fingerprint": "os_activation_drop:com.kuaipao.app:ios",
        "severity": "critical",
        "title": "iOS activations down 92% (com.kuaipao.app)",
        "text": "activations 3 vs baseline 40 (−92%) since 10:05; clicks normal (510 vs 500)",
        "labels": {"app": "com.kuaipao.app", "platform": "oceanengine", "os": "ios"},
        "value": 3,
        "baseline": 40,
        "url": "http://testserver/admin/analytics/linkrollup/?os=ios",
    }
    return Detection(**{**values, **fields})


def _send_due(now: datetime) -> int:
    return services.deliveries_sweep(now=now)


def test_each_channel_kind_gets_its_payload_signed(robots, smtp):
    _channels(robots)
    alert = services.alert_fire(detection=_detection(), now=T0)
    assert _send_due(T0) == 5
    assert set(AlertDelivery.objects.values_list("status", flat=True)) == {"sent"}
    for kind in ("wecom", "dingtalk", "feishu", "webhook"):
        (request,) = robots.of(kind)
        assert request["verdict"] == "ok", (kind, request)
    assert "−92%" in robots.of("wecom")[0]["body"]["markdown"]["content"]
    assert robots.of("dingtalk")[0]["body"]["markdown"]["title"].startswith("🔥 CRITICAL")
    hook = robots.of("webhook")[0]["body"]["alert"]
    assert (hook["id"], hook["state"], hook["labels"]["os"], hook["ends_at"]) == (alert.pk, "firing", "ios", None)
    (mail,) = smtp.messages
    assert set(mail.rcpt_tos) == {"oncall@example.com", "mkt@example.com"}
    message = email.message_from_bytes(mail.content, policy=email.policy.default)
    assert message.is_multipart() and "iOS activations down" in message["Subject"]


def test_a_wrong_secret_is_refused_by_the_robot_and_recorded(robots):
    _channels(robots)
    AlertChannel.objects.filter(kind="dingtalk").update(secret="wrong")
    AlertChannel.objects.exclude(kind="dingtalk").update(active=False)
    services.alert_fire(detection=_detection(), now=T0)
    assert _send_due(T0) == 0
    delivery = AlertDelivery.objects.get()
    assert delivery.status == "retrying" and "errcode=310000" in delivery.last_error


def test_long_text_is_cut_to_4kb_with_an_ellipsis():
    text = channels.cut("警" * 3000)
    assert len(text.encode()) <= 4096 and text.endswith("…")


def test_dedup_cooldown_acknowledge_and_one_resolved_message(robots, admin_user):
    _channels(robots, cooldown_minutes=30)
    AlertChannel.objects.exclude(kind="webhook").update(active=False)
    first = services.alert_fire(detection=_detection(), now=T0)
    _send_due(T0)
    for minutes in (1, 5, 29):  # still firing, within the cooldown: same alert, no new message
        again = services.alert_fire(detection=_detection(value=2), now=T0 + timedelta(minutes=minutes))
        assert again.pk == first.pk
        _send_due(T0 + timedelta(minutes=minutes))
    assert len(robots.of("webhook")) == 1 and Alert.objects.count() == 1
    services.alert_fire(detection=_detection(), now=T0 + timedelta(minutes=31))  # cooldown over: re-sent once
    _send_due(T0 + timedelta(minutes=31))
    assert len(robots.of("webhook")) == 2
    acked = services.alert_acknowledge(alert=first, user=admin_user, now=T0 + timedelta(minutes=40))
    assert (acked.state, acked.acknowledged_by) == ("acknowledged", admin_user)
    with pytest.raises(Conflict):
        services.alert_acknowledge(alert=first, user=admin_user)
    services.alert_fire(detection=_detection(), now=T0 + timedelta(minutes=90))  # acknowledged: never re-sent
    _send_due(T0 + timedelta(minutes=90))
    assert len(robots.of("webhook")) == 2
    resolved = services.alert_resolve(fingerprint=first.fingerprint, now=T0 + timedelta(minutes=95))
    assert services.alert_resolve(fingerprint=first.fingerprint, now=T0 + timedelta(minutes=96)) is None
    _send_due(T0 + timedelta(minutes=96))
    states = [r["body"]["alert"]["state"] for r in robots.of("webhook")]
    assert states == ["firing", "firing", "resolved"]
    assert robots.of("webhook")[-1]["body"]["alert"]["ends_at"] == resolved.ends_at.isoformat()
    # the condition returning later is a new alert
    reopened = services.alert_fire(detection=_detection(), now=T0 + timedelta(minutes=120))
    assert reopened.pk != first.pk and Alert.objects.count() == 2


def test_routing_by_severity_and_labels(robots):
    _channels(robots)
    AlertChannel.objects.filter(kind="wecom").update(platform="tencent")  # other platform: not routed
    AlertChannel.objects.filter(kind="feishu").update(min_severity="critical")
    AlertChannel.objects.filter(kind="email").update(active=False)
    alert = services.alert_fire(detection=_detection(severity="warning"), now=T0)
    routed = set(AlertDelivery.objects.filter(alert=alert).values_list("channel__kind", flat=True))
    assert routed == {"dingtalk", "webhook"}


def test_a_failing_channel_is_retried_with_backoff_for_over_an_hour_and_recorded(robots):
    _channels(robots)
    AlertChannel.objects.exclude(kind="wecom").update(active=False)
    robots.fail["wecom"] = 3
    services.alert_fire(detection=_detection(), now=T0)
    delivery = AlertDelivery.objects.get()
    now = T0
    assert _send_due(now) == 0
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("retrying", 1) and "HTTP 500" in delivery.last_error
    assert delivery.next_attempt_at == now + timedelta(seconds=60)
    assert _send_due(now + timedelta(seconds=59)) == 0  # not due yet: no attempt
    delivery.refresh_from_db()
    assert delivery.attempts == 1
    for wait in (60, 300, 900):
        now += timedelta(seconds=wait)
        _send_due(now)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.sent_at) == ("sent", 4, now)
    assert sum(services.DELIVERY_BACKOFF) >= 3600
    assert services.delivery_backoff(attempt=len(services.DELIVERY_BACKOFF) + 1) is None


def test_a_channel_that_never_answers_gives_up_after_the_schedule(robots):
    _channels(robots, url="http://127.0.0.1:9/closed")
    AlertChannel.objects.exclude(kind="webhook").update(active=False)
    services.alert_fire(detection=_detection(), now=T0)
    now = T0
    for wait in (0, *services.DELIVERY_BACKOFF):
        now += timedelta(seconds=wait)
        _send_due(now)
    delivery = AlertDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("failed", len(services.DELIVERY_BACKOFF) + 1)
    assert now - T0 >= timedelta(hours=1)
