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
from django.utils.translation import gettext_lazy as _


class Severity(models.TextChoices):
    INFO = "info", _("info")
    WARNING = "warning", _("warning")
    CRITICAL = "critical", _("critical")


SEVERITY_RANK: dict[str, int] = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


class ChannelKind(models.TextChoices):
    WECOM = "wecom", _("WeCom (企业微信) group robot")
    DINGTALK = "dingtalk", _("DingTalk (钉钉) robot")
    FEISHU = "feishu", _("Feishu (飞书) robot")
    WEBHOOK = "webhook", _("generic webhook")
    EMAIL = "email", _("email")


class AlertChannel(models.Model):
    """Where alerts go (contracts §7). Routing: a channel receives an alert whose
    severity is at least `min_severity` and whose labels match every non-empty
    filter (app, platform)."""

    name = models.CharField(max_length=80, unique=True, verbose_name=_("name"))
    kind = models.CharField(max_length=16, choices=ChannelKind.choices, verbose_name=_("kind"))
    url = models.URLField(max_length=500, blank=True, help_text=_("webhook URL (not for email)"), verbose_name=_("url"))
    secret = models.CharField(
        max_length=200, blank=True, help_text=_("signing secret; empty for unsigned"), verbose_name=_("secret")
    )
    emails = models.TextField(
        blank=True, help_text=_("email: recipients, comma or newline separated"), verbose_name=_("emails")
    )
    min_severity = models.CharField(
        max_length=16, choices=Severity.choices, default=Severity.WARNING, verbose_name=_("min severity")
    )
    app_id = models.CharField(
        max_length=128,
        blank=True,
        help_text=_("only alerts labelled with this app (empty: any)"),
        verbose_name=_("app id"),
    )
    platform = models.CharField(
        max_length=16, blank=True, help_text=_("only alerts labelled with this platform"), verbose_name=_("platform")
    )
    cooldown_minutes = models.PositiveIntegerField(
        default=60,
        help_text=_("an alert that stays firing is re-sent at most this often"),
        verbose_name=_("cooldown minutes"),
    )
    active = models.BooleanField(default=True, verbose_name=_("active"))

    class Meta:
        verbose_name = _("alert channel")
        verbose_name_plural = _("alert channels")
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"

    def recipients(self) -> list[str]:
        return [part.strip() for part in self.emails.replace("\n", ",").split(",") if part.strip()]


class AlertRule(models.Model):
    """One detector or fraud watch with its thresholds. `params` override the
    detector's defaults (docs/alerts.md lists them per rule)."""

    key = models.CharField(max_length=48, unique=True, verbose_name=_("key"))
    name = models.CharField(max_length=120, verbose_name=_("name"))
    severity = models.CharField(
        max_length=16, choices=Severity.choices, default=Severity.WARNING, verbose_name=_("severity")
    )
    enabled = models.BooleanField(default=True, verbose_name=_("enabled"))
    params = models.JSONField(default=dict, blank=True, verbose_name=_("params"))

    class Meta:
        verbose_name = _("alert rule")
        verbose_name_plural = _("alert rules")
        ordering = ["key"]

    def __str__(self) -> str:
        return self.key


class AlertState(models.TextChoices):
    FIRING = "firing", _("firing")
    ACKNOWLEDGED = "acknowledged", _("acknowledged")
    RESOLVED = "resolved", _("resolved")


class Alert(models.Model):
    rule = models.CharField(max_length=48, db_index=True, verbose_name=_("rule"))
    fingerprint = models.CharField(max_length=200, db_index=True, verbose_name=_("fingerprint"))
    open_key = models.CharField(max_length=200, null=True, blank=True, unique=True, verbose_name=_("open key"))
    severity = models.CharField(max_length=16, choices=Severity.choices, verbose_name=_("severity"))
    state = models.CharField(
        max_length=16, choices=AlertState.choices, default=AlertState.FIRING, verbose_name=_("state")
    )
    title = models.CharField(max_length=200, verbose_name=_("title"))
    text = models.TextField(blank=True, verbose_name=_("text"))
    labels = models.JSONField(default=dict, blank=True, verbose_name=_("labels"))
    url = models.CharField(
        max_length=500, blank=True, help_text=_("the dashboard filtered to the series"), verbose_name=_("url")
    )
    value = models.FloatField(null=True, blank=True, verbose_name=_("value"))
    baseline = models.FloatField(null=True, blank=True, verbose_name=_("baseline"))
    starts_at = models.DateTimeField(verbose_name=_("starts at"))
    last_seen_at = models.DateTimeField(verbose_name=_("last seen at"))
    ends_at = models.DateTimeField(null=True, blank=True, verbose_name=_("ends at"))
    detections = models.PositiveIntegerField(default=1, verbose_name=_("detections"))
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("acknowledged by"),
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True, verbose_name=_("acknowledged at"))

    class Meta:
        verbose_name = _("alert")
        verbose_name_plural = _("alerts")
        ordering = ["-starts_at"]
        indexes = [models.Index(fields=["state", "rule"])]

    def __str__(self) -> str:
        return f"[{self.state}] {self.title}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", _("pending")
    SENT = "sent", _("sent")
    RETRYING = "retrying", _("retrying")
    FAILED = "failed", _("failed (gave up)")


class AlertDelivery(models.Model):
    """One message of one alert to one channel, with its attempts."""

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="deliveries", verbose_name=_("alert"))
    channel = models.ForeignKey(
        AlertChannel, on_delete=models.CASCADE, related_name="deliveries", verbose_name=_("channel")
    )
    state = models.CharField(
        max_length=16, choices=AlertState.choices, help_text=_("firing or resolved message"), verbose_name=_("state")
    )
    status = models.CharField(
        max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING, verbose_name=_("status")
    )
    attempts = models.PositiveIntegerField(default=0, verbose_name=_("attempts"))
    last_error = models.TextField(blank=True, verbose_name=_("last error"))
    next_attempt_at = models.DateTimeField(null=True, blank=True, verbose_name=_("next attempt at"))
    sent_at = models.DateTimeField(null=True, blank=True, verbose_name=_("sent at"))
    created_at = models.DateTimeField(verbose_name=_("created at"))

    class Meta:
        verbose_name = _("alert delivery")
        verbose_name_plural = _("alert deliveries")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["alert", "channel", "state"])]

    def __str__(self) -> str:
        return f"{self.alert_id} → {self.channel} ({self.state}, {self.status})"


# --- fraud rules --------------------------------------------------------------------
class FraudRuleKind(models.TextChoices):
    INJECTION = "injection", _("click injection (CTIT too short)")
    FLOODING = "flooding", _("click flooding")
    DENYLIST = "denylist", _("source IP deny list")


class FraudMode(models.TextChoices):
    OFF = "off", _("off")
    FLAG = "flag", _("flag (attributed, reported as suspicious)")
    REJECT = "reject", _("reject (kept as rejected, not posted back)")


FRAUD_DEFAULT_MODES: dict[str, str] = {
    FraudRuleKind.INJECTION: FraudMode.FLAG,
    FraudRuleKind.FLOODING: FraudMode.FLAG,
    FraudRuleKind.DENYLIST: FraudMode.REJECT,
}


class FraudRule(models.Model):
    """A fraud rule for one app ("" = every app without its own row). params:
    injection `min_ctit_seconds` (10); flooding `max_clicks_per_device` (20),
    `long_tail_seconds` (86400), `min_install_rate` (0.001); deny list `cidrs` (list
    of CIDR ranges)."""

    kind = models.CharField(max_length=16, choices=FraudRuleKind.choices, verbose_name=_("kind"))
    app_id = models.CharField(
        max_length=128, blank=True, help_text=_("empty: every app without its own rule"), verbose_name=_("app id")
    )
    mode = models.CharField(max_length=8, choices=FraudMode.choices, verbose_name=_("mode"))
    params = models.JSONField(default=dict, blank=True, verbose_name=_("params"))
    updated_at = models.DateTimeField(verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("fraud rule")
        verbose_name_plural = _("fraud rules")
        ordering = ["kind", "app_id"]
        constraints = [models.UniqueConstraint(fields=["kind", "app_id"], name="alerts_fraud_rule_once")]

    def __str__(self) -> str:
        return f"{self.kind} {self.app_id or '*'}: {self.mode}"


class FraudRuleChange(models.Model):
    """Audit: who changed which fraud rule, from what to what."""

    rule = models.ForeignKey(
        FraudRule, null=True, on_delete=models.SET_NULL, related_name="changes", verbose_name=_("rule")
    )
    kind = models.CharField(max_length=16, verbose_name=_("kind"))
    app_id = models.CharField(max_length=128, blank=True, verbose_name=_("app id"))
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("changed by"),
    )
    changed_at = models.DateTimeField(verbose_name=_("changed at"))
    before = models.JSONField(default=dict, verbose_name=_("before"))
    after = models.JSONField(default=dict, verbose_name=_("after"))

    class Meta:
        verbose_name = _("fraud rule change")
        verbose_name_plural = _("fraud rule changes")
        ordering = ["-changed_at"]

    def __str__(self) -> str:
        return f"{self.kind} {self.app_id or '*'} changed {self.changed_at:%Y-%m-%d %H:%M}"


# --- pipeline health ------------------------------------------------------------------
class ClickOutage(models.Model):
    """Clicks the click door answered 503 (click storage unavailable), per 5-minute
    bucket. Counted in each web process's memory and written here every few seconds
    by a background thread (alerts.health): Redis is what failed, so they cannot be
    counted there, and the request never waits for the database."""

    bucket_start = models.DateTimeField(unique=True, verbose_name=_("bucket start"))
    count = models.PositiveIntegerField(default=0, verbose_name=_("count"))

    class Meta:
        verbose_name = _("click outage")
        verbose_name_plural = _("click outages")
        ordering = ["-bucket_start"]

    def __str__(self) -> str:
        return f"{self.count} × 503 from {self.bucket_start:%Y-%m-%d %H:%M}"


class BeatJobRun(models.Model):
    """When each beat job (an entry of the beat schedule) last started on a worker;
    the `pipeline_health` detector compares it with the job's schedule."""

    job = models.CharField(max_length=120, unique=True, verbose_name=_("job"))
    task = models.CharField(max_length=200, verbose_name=_("task"))
    last_run_at = models.DateTimeField(verbose_name=_("last run at"))

    class Meta:
        verbose_name = _("beat job run")
        verbose_name_plural = _("beat job runs")
        ordering = ["job"]

    def __str__(self) -> str:
        return f"{self.job} last ran {self.last_run_at:%Y-%m-%d %H:%M:%S}"
