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
from django.utils.translation import gettext_lazy as _

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
    platform = models.CharField(max_length=16, choices=PLATFORM_CHOICES, verbose_name=_("platform"))
    token = models.CharField(
        max_length=64, unique=True, default=new_link_token, editable=False, verbose_name=_("token")
    )
    app_id = models.CharField(
        _("app id"), max_length=128, help_text=_("Bundle id / package name, e.g. com.kuaipao.app")
    )
    os = models.CharField(_("OS"), max_length=8, choices=OS_CHOICES)
    campaign_name = models.CharField(max_length=200, verbose_name=_("campaign name"))
    device_window_days = models.PositiveSmallIntegerField(
        _("device-id lookback (days)"), default=7, validators=[MinValueValidator(1), MaxValueValidator(30)]
    )
    ipua_window_hours = models.PositiveSmallIntegerField(
        _("IP+UA window (hours)"),
        default=24,
        validators=[MaxValueValidator(24 * 7)],
        help_text=_("0 turns IP+UA matching off for this link."),
    )
    postback_activate = models.BooleanField(_("post back activations"), default=True)
    postback_register = models.BooleanField(_("post back registrations"), default=False)
    postback_pay = models.BooleanField(_("post back payments"), default=False)
    rate_limit_per_second = models.PositiveIntegerField(
        default=1000,
        validators=[MinValueValidator(1)],
        help_text=_("Clicks per second accepted on this link."),
        verbose_name=_("rate limit per second"),
    )
    enabled = models.BooleanField(default=True, verbose_name=_("enabled"))
    callback_hosts = models.TextField(
        _("callback hosts"),
        blank=True,
        validators=[validate_host_patterns],
        help_text=_(
            "Generic links: the hosts the click's callback URL may point at, one per line "
            "(ad.example.com, *.example.com for its subdomains, or an IP address; loopback and private "
            "addresses stay refused in production). Other platforms use the settings' allow-lists."
        ),
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("tracking link")
        verbose_name_plural = _("tracking links")
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

    label = models.CharField(max_length=100, verbose_name=_("label"))
    app_id = models.CharField(max_length=128, blank=True, help_text=_("Empty: every app."), verbose_name=_("app id"))
    idfa = models.CharField(_("IDFA"), max_length=64, blank=True)
    caid = models.CharField(_("CAID"), max_length=512, blank=True)
    imei = models.CharField(_("IMEI"), max_length=64, blank=True)
    oaid = models.CharField(_("OAID"), max_length=128, blank=True)
    android_id = models.CharField(_("Android ID"), max_length=64, blank=True)
    keys = models.JSONField(
        default=list, editable=False, help_text=_("Canonical keys, kind:value"), verbose_name=_("keys")
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("test device")
        verbose_name_plural = _("test devices")
        ordering = ["label"]

    def __str__(self) -> str:
        return self.label


class FraudStatus(models.TextChoices):
    CLEAN = "", _("clean")
    FLAGGED = "flagged", _("flagged (suspicious, posted back)")
    REJECTED = "rejected", _("rejected (not posted back)")
    RELEASED = "released", _("released by an operator (posted back)")


class MatchOutcome(models.TextChoices):
    """What the matcher decided for one activation (MatchTrace.outcome)."""

    ATTRIBUTED = "attributed", _("attributed")
    ORGANIC = "organic", _("organic")
    REINSTALL = "reinstall", _("reinstall")


class CandidateVerdict(models.TextChoices):
    """What the matcher said of one stored click it considered (MatchTrace.candidates)."""

    MATCHED = "matched", _("matched")
    ELIGIBLE = "eligible", _("eligible")
    REJECTED = "rejected", _("rejected")


class PendingEventStatus(models.TextChoices):
    PENDING = "pending", _("pending")
    APPLIED = "applied", _("applied")
    DISCARDED = "discarded", _("discarded")


class PostbackStatus(models.TextChoices):
    PENDING = "pending", _("pending")
    SENDING = "sending", _("sending")
    RETRYING = "retrying", _("retrying")
    SUCCEEDED = "succeeded", _("succeeded")
    FAILED = "failed", _("failed (gave up)")
    REFUSED = "refused", _("refused (callback not allowed)")


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
    link = models.ForeignKey(TrackingLink, on_delete=models.PROTECT, related_name="conversions", verbose_name=_("link"))
    platform = models.CharField(max_length=16, choices=PLATFORM_CHOICES, verbose_name=_("platform"))
    app_id = models.CharField(max_length=128, verbose_name=_("app id"))
    os = models.CharField(max_length=8, blank=True, verbose_name=_("os"))
    activation_event_id = models.CharField(max_length=64, unique=True, verbose_name=_("activation event id"))
    click_id = models.CharField(
        max_length=32, unique=True, help_text=_("One click earns at most one install."), verbose_name=_("click id")
    )
    click_at = models.DateTimeField(verbose_name=_("click at"))
    activated_at = models.DateTimeField(verbose_name=_("activated at"))
    seconds_to_install = models.PositiveIntegerField(verbose_name=_("seconds to install"))
    match_method = models.CharField(max_length=16, choices=METHOD_CHOICES, verbose_name=_("match method"))
    match_key = models.CharField(max_length=80, verbose_name=_("match key"))
    clicks_before_conversion = models.PositiveIntegerField(default=1, verbose_name=_("clicks before conversion"))
    user_id = models.CharField(max_length=64, blank=True, db_index=True, verbose_name=_("user id"))
    callback = models.TextField(blank=True, verbose_name=_("callback"))
    click = models.JSONField(default=dict, help_text=_("The winning click as stored in Redis"), verbose_name=_("click"))
    device_keys = models.JSONField(default=dict, verbose_name=_("device keys"))
    oaid = models.CharField(max_length=128, blank=True, verbose_name=_("oaid"))
    is_test = models.BooleanField(default=False, verbose_name=_("is test"))
    fraud_status = models.CharField(
        max_length=8,
        choices=FraudStatus.choices,
        default=FraudStatus.CLEAN,
        blank=True,
        db_index=True,
        verbose_name=_("fraud status"),
    )
    fraud_rule = models.CharField(
        max_length=16, blank=True, help_text=_("the fraud rule that hit (alerts.fraud)"), verbose_name=_("fraud rule")
    )
    fraud_reason = models.CharField(max_length=300, blank=True, verbose_name=_("fraud reason"))
    released_by = models.CharField(max_length=150, blank=True, verbose_name=_("released by"))
    released_at = models.DateTimeField(null=True, blank=True, verbose_name=_("released at"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("conversion")
        verbose_name_plural = _("conversions")
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

    conversion = models.ForeignKey(
        Conversion, on_delete=models.CASCADE, related_name="events", verbose_name=_("conversion")
    )
    event_type = models.CharField(max_length=16, choices=EVENT_CHOICES, verbose_name=_("event type"))
    event_id = models.CharField(max_length=64, unique=True, verbose_name=_("event id"))
    user_id = models.CharField(max_length=64, blank=True, verbose_name=_("user id"))
    occurred_at = models.DateTimeField(verbose_name=_("occurred at"))
    amount_fen = models.PositiveBigIntegerField(null=True, blank=True, verbose_name=_("amount fen"))
    arrived_early = models.BooleanField(
        default=False, help_text=_("It arrived before the activation and waited."), verbose_name=_("arrived early")
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("conversion event")
        verbose_name_plural = _("conversion events")
        ordering = ["occurred_at"]
        indexes = [models.Index(fields=["occurred_at"], name="att_event_occurred_at")]  # analytics rollups

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id}"


class DeviceKey(models.Model):
    """The canonical keys of an attributed device: the reinstall rule and deep events look here."""

    app_id = models.CharField(max_length=128, verbose_name=_("app id"))
    key = models.CharField(max_length=80, verbose_name=_("key"))
    conversion = models.ForeignKey(
        Conversion, on_delete=models.CASCADE, related_name="keys", verbose_name=_("conversion")
    )
    activated_at = models.DateTimeField(verbose_name=_("activated at"))

    class Meta:
        verbose_name = _("device key")
        verbose_name_plural = _("device keys")
        constraints = [models.UniqueConstraint(fields=["conversion", "key"], name="att_devicekey_unique")]
        indexes = [models.Index(fields=["app_id", "key", "activated_at"])]

    def __str__(self) -> str:
        return self.key


class DeviceLock(models.Model):
    """One row per (app, canonical device key). An activation locks the rows of
    its device's keys before matching, so two activations of one device are
    matched one after the other and the second sees the first's conversion
    (reinstall rule) even when they would pick different clicks."""

    app_id = models.CharField(max_length=128, verbose_name=_("app id"))
    key = models.CharField(max_length=80, verbose_name=_("key"))
    last_activation_at = models.DateTimeField(verbose_name=_("last activation at"))

    class Meta:
        verbose_name = _("device lock")
        verbose_name_plural = _("device locks")
        constraints = [models.UniqueConstraint(fields=["app_id", "key"], name="att_devicelock_unique")]

    def __str__(self) -> str:
        return f"{self.app_id} {self.key}"


class MatchTrace(models.Model):
    """Every activation the matcher saw, with the clicks it considered and why."""

    event_id = models.CharField(max_length=64, unique=True, verbose_name=_("event id"))
    app_id = models.CharField(max_length=128, verbose_name=_("app id"))
    os = models.CharField(max_length=8, blank=True, verbose_name=_("os"))
    user_id = models.CharField(max_length=64, blank=True, verbose_name=_("user id"))
    activated_at = models.DateTimeField(verbose_name=_("activated at"))
    device_keys = models.JSONField(default=dict, verbose_name=_("device keys"))
    outcome = models.CharField(max_length=16, choices=MatchOutcome.choices, verbose_name=_("outcome"))
    reason = models.CharField(max_length=300, blank=True, verbose_name=_("reason"))
    is_test = models.BooleanField(default=False, verbose_name=_("is test"))
    conversion = models.ForeignKey(
        Conversion,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="traces",
        verbose_name=_("conversion"),
    )
    candidates = models.JSONField(default=list, verbose_name=_("candidates"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("match trace")
        verbose_name_plural = _("match traces")
        ordering = ["-activated_at"]
        indexes = [
            models.Index(fields=["app_id", "activated_at"]),
            models.Index(fields=["activated_at"], name="att_trace_activated_at"),  # analytics rollups
        ]

    def __str__(self) -> str:
        return f"{self.event_id}: {self.outcome}"


class PendingEvent(models.Model):
    """A registration or payment that arrived before its activation."""

    event_id = models.CharField(max_length=64, unique=True, verbose_name=_("event id"))
    event_type = models.CharField(max_length=16, choices=EVENT_CHOICES, verbose_name=_("event type"))
    app_id = models.CharField(max_length=128, verbose_name=_("app id"))
    user_id = models.CharField(max_length=64, blank=True, verbose_name=_("user id"))
    device_keys = models.JSONField(default=dict, verbose_name=_("device keys"))
    occurred_at = models.DateTimeField(verbose_name=_("occurred at"))
    amount_fen = models.PositiveBigIntegerField(null=True, blank=True, verbose_name=_("amount fen"))
    status = models.CharField(
        max_length=16, choices=PendingEventStatus.choices, default=PendingEventStatus.PENDING, verbose_name=_("status")
    )
    resolution = models.CharField(max_length=200, blank=True, verbose_name=_("resolution"))
    conversion = models.ForeignKey(
        Conversion, null=True, blank=True, on_delete=models.SET_NULL, verbose_name=_("conversion")
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("pending event")
        verbose_name_plural = _("pending events")
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

    event = models.ForeignKey(PendingEvent, on_delete=models.CASCADE, related_name="keys", verbose_name=_("event"))
    app_id = models.CharField(max_length=128, verbose_name=_("app id"))
    key = models.CharField(max_length=80, verbose_name=_("key"))

    class Meta:
        verbose_name = _("pending event key")
        verbose_name_plural = _("pending event keys")
        constraints = [models.UniqueConstraint(fields=["event", "key"], name="att_pendingkey_unique")]
        indexes = [models.Index(fields=["app_id", "key"])]

    def __str__(self) -> str:
        return self.key


class Postback(models.Model):
    """One conversion event to report to the ad platform; at most one per conversion and event type."""

    conversion = models.ForeignKey(
        Conversion, on_delete=models.CASCADE, related_name="postbacks", verbose_name=_("conversion")
    )
    event_type = models.CharField(max_length=16, choices=EVENT_CHOICES, verbose_name=_("event type"))
    source_event_id = models.CharField(max_length=64, verbose_name=_("source event id"))
    event_time = models.DateTimeField(verbose_name=_("event time"))
    amount_fen = models.PositiveBigIntegerField(null=True, blank=True, verbose_name=_("amount fen"))
    status = models.CharField(
        max_length=16, choices=PostbackStatus.choices, default=PostbackStatus.PENDING, verbose_name=_("status")
    )
    attempt_count = models.PositiveIntegerField(default=0, verbose_name=_("attempt count"))
    next_attempt_at = models.DateTimeField(null=True, blank=True, verbose_name=_("next attempt at"))
    claimed_until = models.DateTimeField(null=True, blank=True, verbose_name=_("claimed until"))
    succeeded_at = models.DateTimeField(null=True, blank=True, verbose_name=_("succeeded at"))
    last_error = models.CharField(max_length=500, blank=True, verbose_name=_("last error"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("postback")
        verbose_name_plural = _("postbacks")
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
    postback = models.ForeignKey(
        Postback, on_delete=models.CASCADE, related_name="attempts", verbose_name=_("postback")
    )
    number = models.PositiveIntegerField(verbose_name=_("number"))
    method = models.CharField(max_length=8, verbose_name=_("method"))
    url = models.TextField(verbose_name=_("url"))
    request_body = models.TextField(blank=True, verbose_name=_("request body"))
    status_code = models.PositiveSmallIntegerField(null=True, blank=True, verbose_name=_("status code"))
    response_body = models.TextField(blank=True, verbose_name=_("response body"))
    error = models.CharField(max_length=500, blank=True, verbose_name=_("error"))
    latency_ms = models.FloatField(verbose_name=_("latency ms"))
    succeeded = models.BooleanField(default=False, verbose_name=_("succeeded"))
    refused = models.BooleanField(
        default=False, help_text=_("The callback URL was not allowed: nothing was sent."), verbose_name=_("refused")
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("postback attempt")
        verbose_name_plural = _("postback attempts")
        ordering = ["number"]
        constraints = [
            models.UniqueConstraint(fields=["postback", "number"], name="att_attempt_number_unique"),
        ]
        indexes = [models.Index(fields=["created_at"], name="att_attempt_created_at")]  # analytics rollups

    def __str__(self) -> str:
        return f"attempt {self.number} of postback {self.postback_id}"


from attribution.sandbox.models import SandboxPostback  # noqa: E402, F401  (registers the sandbox's table)
