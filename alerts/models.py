"""Alert rules, channels, alerts with their lifecycle, deliveries, and the fraud
rules judged at attribution time (with their audit trail).

Lifecycle of an alert (one row per condition, its `fingerprint`):

    firing --acknowledge--> acknowledged --(condition gone)--> resolved
       \\------------------(condition gone)-----------------/

A detection of a condition that already has an open (firing or acknowledged) alert
updates that alert; it never opens a second one (a partial unique constraint on
MariaDB is not available, so `open_key` = fingerprint while open, NULL once resolved,
carries the uniqueness)."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Severity(models.TextChoices):
    INFO = "info", "info"
    WARNING = "warning", "warning"
    CRITICAL = "critical", "critical"


SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


class ChannelKind(models.TextChoices):
    WECOM = "wecom", "WeCom (企业微信) group robot"
    DINGTALK = "dingtalk", "DingTalk (钉钉) robot"
    FEISHU = "feishu", "Feishu (飞书) robot"
    WEBHOOK = "webhook", "generic webhook"
    EMAIL = "email", "email"


class AlertChannel(models.Model):
    """Where alerts go (contracts §7). Routing: a channel receives an alert whose
    severity is at least `min_severity` and whose labels match every non-empty
    filter (app, platform)."""

    name = models.CharField(max_length=80, unique=True)
    kind = models.CharField(max_length=16, choices=ChannelKind.choices)
    url = models.URLField(max_length=500, blank=True, help_text="webhook URL (not for email)")
    secret = models.CharField(max_length=200, blank=True, help_text="signing secret; empty for unsigned")
    emails = models.TextField(blank=True, help_text="email: recipients, comma or newline separated")
    min_severity = models.CharField(max_length=16, choices=Severity.choices, default=Severity.WARNING)
    app_id = models.CharField(max_length=128, blank=True, help_text="only alerts labelled with this app (empty: any)")
    platform = models.CharField(max_length=16, blank=True, help_text="only alerts labelled with this platform")
    cooldown_minutes = models.PositiveIntegerField(
        default=60, help_text="an alert that stays firing is re-sent at most this often"
    )
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"

    def recipients(self) -> list[str]:
        return [part.strip() for part in self.emails.replace("\n", ",").split(",") if part.strip()]


class AlertRule(models.Model):
    """One detector or fraud watch with its thresholds. `params` override the
    detector's defaults (docs/alerts.md lists them per rule)."""

    key = models.CharField(max_length=48, unique=True)
    name = models.CharField(max_length=120)
    severity = models.CharField(max_length=16, choices=Severity.choices, default=Severity.WARNING)
    enabled = models.BooleanField(default=True)
    params = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.key


class AlertState(models.TextChoices):
    FIRING = "firing", "firing"
    ACKNOWLEDGED = "acknowledged", "acknowledged"
    RESOLVED = "resolved", "resolved"


class Alert(models.Model):
    rule = models.CharField(max_length=48, db_index=True)
    fingerprint = models.CharField(max_length=200, db_index=True)
    open_key = models.CharField(max_length=200, null=True, blank=True, unique=True)
    severity = models.CharField(max_length=16, choices=Severity.choices)
    state = models.CharField(max_length=16, choices=AlertState.choices, default=AlertState.FIRING)
    title = models.CharField(max_length=200)
    text = models.TextField(blank=True)
    labels = models.JSONField(default=dict, blank=True)
    url = models.CharField(max_length=500, blank=True, help_text="the dashboard filtered to the series")
    value = models.FloatField(null=True, blank=True)
    baseline = models.FloatField(null=True, blank=True)
    starts_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    ends_at = models.DateTimeField(null=True, blank=True)
    detections = models.PositiveIntegerField(default=1)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-starts_at"]
        indexes = [models.Index(fields=["state", "rule"])]

    def __str__(self) -> str:
        return f"[{self.state}] {self.title}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "pending"
    SENT = "sent", "sent"
    RETRYING = "retrying", "retrying"
    FAILED = "failed", "failed (gave up)"


class AlertDelivery(models.Model):
    """One message of one alert to one channel, with its attempts."""

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.ForeignKey(AlertChannel, on_delete=models.CASCADE, related_name="deliveries")
    state = models.CharField(max_length=16, choices=AlertState.choices, help_text="firing or resolved message")
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["alert", "channel", "state"])]

    def __str__(self) -> str:
        return f"{self.alert_id} → {self.channel} ({self.state}, {self.status})"


# --- fraud rules --------------------------------------------------------------------
class FraudRuleKind(models.TextChoices):
    INJECTION = "injection", "click injection (CTIT too short)"
    FLOODING = "flooding", "click flooding"
    DENYLIST = "denylist", "source IP deny list"


class FraudMode(models.TextChoices):
    OFF = "off", "off"
    FLAG = "flag", "flag (attributed, reported as suspicious)"
    REJECT = "reject", "reject (kept as rejected, not posted back)"


FRAUD_DEFAULT_MODES = {
    FraudRuleKind.INJECTION: FraudMode.FLAG,
    FraudRuleKind.FLOODING: FraudMode.FLAG,
    FraudRuleKind.DENYLIST: FraudMode.REJECT,
}


class FraudRule(models.Model):
    """A fraud rule for one app ("" = every app without its own row). params:
    injection `min_ctit_seconds` (10); flooding `max_clicks_per_device` (20),
    `min_ctit_seconds_long_tail` (86400); deny list `cidrs` (list of CIDR ranges)."""

    kind = models.CharField(max_length=16, choices=FraudRuleKind.choices)
    app_id = models.CharField(max_length=128, blank=True, help_text="empty: every app without its own rule")
    mode = models.CharField(max_length=8, choices=FraudMode.choices)
    params = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["kind", "app_id"]
        constraints = [models.UniqueConstraint(fields=["kind", "app_id"], name="alerts_fraud_rule_once")]

    def __str__(self) -> str:
        return f"{self.kind} {self.app_id or '*'}: {self.mode}"


class FraudRuleChange(models.Model):
    """Audit: who changed which fraud rule, from what to what."""

    rule = models.ForeignKey(FraudRule, null=True, on_delete=models.SET_NULL, related_name="changes")
    kind = models.CharField(max_length=16)
    app_id = models.CharField(max_length=128, blank=True)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    changed_at = models.DateTimeField()
    before = models.JSONField(default=dict)
    after = models.JSONField(default=dict)

    class Meta:
        ordering = ["-changed_at"]

    def __str__(self) -> str:
        return f"{self.kind} {self.app_id or '*'} changed {self.changed_at:%Y-%m-%d %H:%M}"


# --- pipeline health ------------------------------------------------------------------
class ClickOutage(models.Model):
    """Clicks the click door answered 503 (click storage unavailable), per 5-minute
    bucket. Counted in each web process's memory and written here every few seconds
    by a background thread (alerts.health): Redis is what failed, so they cannot be
    counted there, and the request never waits for the database."""

    bucket_start = models.DateTimeField(unique=True)
    count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-bucket_start"]

    def __str__(self) -> str:
        return f"{self.count} × 503 from {self.bucket_start:%Y-%m-%d %H:%M}"


class BeatJobRun(models.Model):
    """When each beat job (an entry of the beat schedule) last started on a worker;
    the `pipeline_health` detector compares it with the job's schedule."""

    job = models.CharField(max_length=120, unique=True)
    task = models.CharField(max_length=200)
    last_run_at = models.DateTimeField()

    class Meta:
        ordering = ["job"]

    def __str__(self) -> str:
        return f"{self.job} last ran {self.last_run_at:%Y-%m-%d %H:%M:%S}"
