"""Ad attribution: tracking links, conversions, early deep events, postbacks.

Clicks are not here: they live in Redis (attribution.clicks)."""

from __future__ import annotations

import ipaddress
import re
import secrets

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from attribution.platforms import EVENT_TYPES, PLATFORM_CHOICES

OS_CHOICES = [("ios", "iOS"), ("android", "Android")]
EVENT_CHOICES = [(e, e) for e in EVENT_TYPES]


_HOST_PATTERN = re.compile(r"^(\*\.)?[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")


def host_patterns(text: str) -> list[str]:
    return [line.strip().lower() for line in re.split(r"[\s,]+", text or "") if line.strip()]


def validate_host_patterns(text: str) -> None:
    for pattern in host_patterns(text):
        try:
            ipaddress.ip_address(pattern.strip("[]"))
            continue
        except ValueError:
            pass
        if not _HOST_PATTERN.match(pattern) or len(pattern) > 253:
            raise ValidationError(f"{pattern!r} is not a host name or *.domain")


def new_link_token() -> str:
    return secrets.token_urlsafe(18)


class TrackingLink(models.Model):
    platform = models.CharField(max_length=16, choices=PLATFORM_CHOICES)
    token = models.CharField(max_length=64, unique=True, default=new_link_token, editable=False)
    app_id = models.CharField("app id", max_length=128, help_text="Bundle id / package name, e.g. com.kuaipao.app")
    os = models.CharField("OS", max_length=8, choices=OS_CHOICES)
    campaign_name = models.CharField(max_length=200)
    device_window_days = models.PositiveSmallIntegerField(
        "device-id lookback (days)", default=7, validators=[MinValueValidator(1), MaxValueValidator(30)]
    )
    ipua_window_hours = models.PositiveSmallIntegerField(
        "IP+UA window (hours)",
        default=24,
        validators=[MaxValueValidator(24 * 7)],
        help_text="0 turns IP+UA matching off for this link.",
    )
    postback_activate = models.BooleanField("post back activations", default=True)
    postback_register = models.BooleanField("post back registrations", default=False)
    postback_pay = models.BooleanField("post back payments", default=False)
    rate_limit_per_second = models.PositiveIntegerField(
        default=1000, validators=[MinValueValidator(1)], help_text="Clicks per second accepted on this link."
    )
    enabled = models.BooleanField(default=True)
    callback_hosts = models.TextField(
        "callback hosts",
        blank=True,
        validators=[validate_host_patterns],
        help_text="Generic links: the hosts the click's callback URL may point at, one per line "
        "(ad.example.com, *.example.com for its subdomains, or an IP address; loopback and private "
        "addresses stay refused in production). Other platforms use the settings' allow-lists.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["app_id", "os"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(device_window_days__gte=1, device_window_days__lte=30), name="att_link_device_window_1_30"
            ),
            models.CheckConstraint(condition=Q(ipua_window_hours__lte=168), name="att_link_ipua_window_max_7d"),
            models.CheckConstraint(
                condition=Q(platform__in=[p for p, _ in PLATFORM_CHOICES]), name="att_link_platform_known"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_platform_display()} · {self.campaign_name} ({self.app_id}/{self.os})"

    def postback_enabled(self, event_type: str) -> bool:
        return bool(getattr(self, f"postback_{event_type}"))

    @property
    def callback_host_list(self) -> list[str]:
        return host_patterns(self.callback_hosts)


class TestDevice(models.Model):
    """A device of the team: its activations are matched and traced, never posted back."""

    label = models.CharField(max_length=100)
    app_id = models.CharField(max_length=128, blank=True, help_text="Empty: every app.")
    idfa = models.CharField("IDFA", max_length=64, blank=True)
    caid = models.CharField("CAID", max_length=512, blank=True)
    imei = models.CharField("IMEI", max_length=64, blank=True)
    oaid = models.CharField("OAID", max_length=128, blank=True)
    android_id = models.CharField("Android ID", max_length=64, blank=True)
    keys = models.JSONField(default=list, editable=False, help_text="Canonical keys, kind:value")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["label"]

    def __str__(self) -> str:
        return self.label


class FraudStatus(models.TextChoices):
    CLEAN = "", "clean"
    FLAGGED = "flagged", "flagged (suspicious, posted back)"
    REJECTED = "rejected", "rejected (not posted back)"
    RELEASED = "released", "released by an operator (posted back)"


class MatchOutcome(models.TextChoices):
    """What the matcher decided for one activation (MatchTrace.outcome)."""

    ATTRIBUTED = "attributed", "attributed"
    ORGANIC = "organic", "organic"
    REINSTALL = "reinstall", "reinstall"


class CandidateVerdict(models.TextChoices):
    """What the matcher said of one stored click it considered (MatchTrace.candidates)."""

    MATCHED = "matched", "matched"
    ELIGIBLE = "eligible", "eligible"
    REJECTED = "rejected", "rejected"


class PendingEventStatus(models.TextChoices):
    PENDING = "pending", "pending"
    APPLIED = "applied", "applied"
    DISCARDED = "discarded", "discarded"


class PostbackStatus(models.TextChoices):
    PENDING = "pending", "pending"
    SENDING = "sending", "sending"
    RETRYING = "retrying", "retrying"
    SUCCEEDED = "succeeded", "succeeded"
    FAILED = "failed", "failed (gave up)"
    REFUSED = "refused", "refused (callback not allowed)"


class Conversion(models.Model):
    """An activation attributed to a click."""

    METHOD_CHOICES = [
        ("idfa", "IDFA"),
        ("caid", "CAID"),
        ("imei", "IMEI md5"),
        ("oaid", "OAID"),
        ("android_id", "Android ID md5"),
        ("ipua", "IP + UA"),
    ]
    link = models.ForeignKey(TrackingLink, on_delete=models.PROTECT, related_name="conversions")
    platform = models.CharField(max_length=16, choices=PLATFORM_CHOICES)
    app_id = models.CharField(max_length=128)
    os = models.CharField(max_length=8, blank=True)
    activation_event_id = models.CharField(max_length=64, unique=True)
    click_id = models.CharField(max_length=32, unique=True, help_text="One click earns at most one install.")
    click_at = models.DateTimeField()
    activated_at = models.DateTimeField()
    seconds_to_install = models.PositiveIntegerField()
    match_method = models.CharField(max_length=16, choices=METHOD_CHOICES)
    match_key = models.CharField(max_length=80)
    clicks_before_conversion = models.PositiveIntegerField(default=1)
    user_id = models.CharField(max_length=64, blank=True, db_index=True)
    callback = models.TextField(blank=True)
    click = models.JSONField(default=dict, help_text="The winning click as stored in Redis")
    device_keys = models.JSONField(default=dict)
    oaid = models.CharField(max_length=128, blank=True)
    is_test = models.BooleanField(default=False)
    fraud_status = models.CharField(
        max_length=8, choices=FraudStatus.choices, default=FraudStatus.CLEAN, blank=True, db_index=True
    )
    fraud_rule = models.CharField(max_length=16, blank=True, help_text="the fraud rule that hit (alerts.fraud)")
    fraud_reason = models.CharField(max_length=300, blank=True)
    released_by = models.CharField(max_length=150, blank=True)
    released_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-activated_at"]
        indexes = [
            models.Index(fields=["app_id", "activated_at"]),
            models.Index(fields=["link", "activated_at"]),
            models.Index(fields=["activated_at"], name="att_conv_activated_at"),  # analytics rollups
        ]
        constraints = [
            models.CheckConstraint(condition=Q(activated_at__gte=models.F("click_at")), name="att_conv_click_first")
        ]

    def __str__(self) -> str:
        return f"conversion {self.pk} ({self.platform}, {self.match_method})"


class ConversionEvent(models.Model):
    """A registration or payment attached to a conversion (whether or not it is posted back)."""

    conversion = models.ForeignKey(Conversion, on_delete=models.CASCADE, related_name="events")
    event_type = models.CharField(max_length=16, choices=EVENT_CHOICES)
    event_id = models.CharField(max_length=64, unique=True)
    user_id = models.CharField(max_length=64, blank=True)
    occurred_at = models.DateTimeField()
    amount_fen = models.PositiveBigIntegerField(null=True, blank=True)
    arrived_early = models.BooleanField(default=False, help_text="It arrived before the activation and waited.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["occurred_at"]
        indexes = [models.Index(fields=["occurred_at"], name="att_event_occurred_at")]  # analytics rollups

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id}"


class DeviceKey(models.Model):
    """The canonical keys of an attributed device: the reinstall rule and deep events look here."""

    app_id = models.CharField(max_length=128)
    key = models.CharField(max_length=80)
    conversion = models.ForeignKey(Conversion, on_delete=models.CASCADE, related_name="keys")
    activated_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["conversion", "key"], name="att_devicekey_unique")]
        indexes = [models.Index(fields=["app_id", "key", "activated_at"])]

    def __str__(self) -> str:
        return self.key


class DeviceLock(models.Model):
    """One row per (app, canonical device key). An activation locks the rows of
    its device's keys before matching, so two activations of one device are
    matched one after the other and the second sees the first's conversion
    (reinstall rule) even when they would pick different clicks."""

    app_id = models.CharField(max_length=128)
    key = models.CharField(max_length=80)
    last_activation_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["app_id", "key"], name="att_devicelock_unique")]

    def __str__(self) -> str:
        return f"{self.app_id} {self.key}"


class MatchTrace(models.Model):
    """Every activation the matcher saw, with the clicks it considered and why."""

    event_id = models.CharField(max_length=64, unique=True)
    app_id = models.CharField(max_length=128)
    os = models.CharField(max_length=8, blank=True)
    user_id = models.CharField(max_length=64, blank=True)
    activated_at = models.DateTimeField()
    device_keys = models.JSONField(default=dict)
    outcome = models.CharField(max_length=16, choices=MatchOutcome.choices)
    reason = models.CharField(max_length=300, blank=True)
    is_test = models.BooleanField(default=False)
    conversion = models.ForeignKey(Conversion, null=True, blank=True, on_delete=models.SET_NULL, related_name="traces")
    candidates = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-activated_at"]
        indexes = [
            models.Index(fields=["app_id", "activated_at"]),
            models.Index(fields=["activated_at"], name="att_trace_activated_at"),  # analytics rollups
        ]

    def __str__(self) -> str:
        return f"{self.event_id}: {self.outcome}"


class PendingEvent(models.Model):
    """A registration or payment that arrived before its activation."""

    event_id = models.CharField(max_length=64, unique=True)
    event_type = models.CharField(max_length=16, choices=EVENT_CHOICES)
    app_id = models.CharField(max_length=128)
    user_id = models.CharField(max_length=64, blank=True)
    device_keys = models.JSONField(default=dict)
    occurred_at = models.DateTimeField()
    amount_fen = models.PositiveBigIntegerField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=PendingEventStatus.choices, default=PendingEventStatus.PENDING)
    resolution = models.CharField(max_length=200, blank=True)
    conversion = models.ForeignKey(Conversion, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["app_id", "status", "created_at"]),
            models.Index(fields=["app_id", "user_id"]),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id} ({self.status})"


class PendingEventKey(models.Model):
    """A canonical device key of a waiting event: an activation finds its waiting events
    by key (index lookup) instead of reading every waiting event of the app."""

    event = models.ForeignKey(PendingEvent, on_delete=models.CASCADE, related_name="keys")
    app_id = models.CharField(max_length=128)
    key = models.CharField(max_length=80)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["event", "key"], name="att_pendingkey_unique")]
        indexes = [models.Index(fields=["app_id", "key"])]

    def __str__(self) -> str:
        return self.key


class Postback(models.Model):
    """One conversion event to report to the ad platform; at most one per conversion and event type."""

    conversion = models.ForeignKey(Conversion, on_delete=models.CASCADE, related_name="postbacks")
    event_type = models.CharField(max_length=16, choices=EVENT_CHOICES)
    source_event_id = models.CharField(max_length=64)
    event_time = models.DateTimeField()
    amount_fen = models.PositiveBigIntegerField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=PostbackStatus.choices, default=PostbackStatus.PENDING)
    attempt_count = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    succeeded_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["conversion", "event_type"], name="att_postback_once_per_event"),
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"]),
            models.Index(fields=["event_time"], name="att_postback_event_time"),  # analytics rollups
        ]

    def __str__(self) -> str:
        return f"postback {self.event_type} of conversion {self.conversion_id} ({self.status})"


class PostbackAttempt(models.Model):
    postback = models.ForeignKey(Postback, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveIntegerField()
    method = models.CharField(max_length=8)
    url = models.TextField()
    request_body = models.TextField(blank=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True)
    error = models.CharField(max_length=500, blank=True)
    latency_ms = models.FloatField()
    succeeded = models.BooleanField(default=False)
    refused = models.BooleanField(default=False, help_text="The callback URL was not allowed: nothing was sent.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["number"]
        constraints = [
            models.UniqueConstraint(fields=["postback", "number"], name="att_attempt_number_unique"),
        ]
        indexes = [models.Index(fields=["created_at"], name="att_attempt_created_at")]  # analytics rollups

    def __str__(self) -> str:
        return f"attempt {self.number} of postback {self.postback_id}"


from attribution.sandbox.models import SandboxPostback  # noqa: E402, F401  (registers the sandbox's table)
