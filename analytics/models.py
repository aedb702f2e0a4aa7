"""Rollups: the one source of reports, the dashboard and alerts (docs/analytics.md).

A rollup row is a bucket of time (an hour, or 5 minutes) and a group; rebuilding a
bucket replaces all its rows in one transaction, so any bucket can be re-rolled."""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _


class BucketMinutes(models.IntegerChoices):
    HOUR = 60, _("hour")
    FIVE = 5, _("5 minutes")
    DAY = 1440, _("local day")  # bucket_start = local midnight (TIME_ZONE), summed from the hourly rows


class LinkRollup(models.Model):
    """Ad traffic of one bucket per app, platform, tracking link and OS.

    Buckets: 5 minutes and hours (UTC, rolled from the sources), and local days
    (bucket_start = local midnight, the sums of that day's hourly rows; rebuilt with
    every hour of the day, so readers of whole days read 1/24 of the rows).

    link_id 0 (platform "") holds what belongs to no link: organic activations,
    and clicks on unknown tokens (app_id "" too). Test-device traffic is counted
    apart (test_*) and excluded from every other column."""

    bucket_start = models.DateTimeField(verbose_name=_("bucket start"))
    bucket_minutes = models.PositiveSmallIntegerField(choices=BucketMinutes.choices, verbose_name=_("bucket minutes"))
    app_id = models.CharField(max_length=128, verbose_name=_("app id"))
    platform = models.CharField(max_length=16, blank=True, verbose_name=_("platform"))
    link_id = models.PositiveIntegerField(
        help_text=_("TrackingLink id, 0 for none (kept when the link is deleted)"), verbose_name=_("link id")
    )
    os = models.CharField(_("OS"), max_length=8, blank=True)
    # clicks (Redis counters)
    clicks = models.PositiveIntegerField(default=0, verbose_name=_("clicks"))
    unique_devices = models.PositiveIntegerField(
        null=True, blank=True, help_text=_("HyperLogLog estimate; hours only"), verbose_name=_("unique devices")
    )
    repeated_clicks = models.PositiveIntegerField(default=0, verbose_name=_("repeated clicks"))
    unkeyed_clicks = models.PositiveIntegerField(
        default=0, help_text=_("clicks with no device key nor IP+UA stored"), verbose_name=_("unkeyed clicks")
    )
    rejected_clicks = models.PositiveIntegerField(default=0, verbose_name=_("rejected clicks"))
    rejects = models.JSONField(
        default=dict, blank=True, help_text=_("rejected clicks by reason"), verbose_name=_("rejects")
    )
    # activations (match traces and conversions)
    activations = models.PositiveIntegerField(
        default=0, help_text=_("attributed + organic + reinstalls"), verbose_name=_("activations")
    )
    attributed = models.PositiveIntegerField(default=0, verbose_name=_("attributed"))
    organic = models.PositiveIntegerField(default=0, verbose_name=_("organic"))
    reinstalls = models.PositiveIntegerField(default=0, verbose_name=_("reinstalls"))
    test_clicks = models.PositiveIntegerField(default=0, verbose_name=_("test clicks"))
    test_activations = models.PositiveIntegerField(default=0, verbose_name=_("test activations"))
    # fraud rules at attribution time (alerts.fraud): of `attributed`, how many a rule flagged / rejected
    fraud_flagged = models.PositiveIntegerField(
        default=0, help_text=_("attributed installs a fraud rule flagged"), verbose_name=_("fraud flagged")
    )
    fraud_rejected = models.PositiveIntegerField(
        default=0,
        help_text=_("attributed installs a fraud rule rejected (not posted back; part of attributed)"),
        verbose_name=_("fraud rejected"),
    )
    # click-to-install time of the attributed conversions
    ctit_lt_10s = models.PositiveIntegerField(default=0, verbose_name=_("ctit lt 10s"))
    ctit_10_60s = models.PositiveIntegerField(default=0, verbose_name=_("ctit 10 60s"))
    ctit_1_10m = models.PositiveIntegerField(default=0, verbose_name=_("ctit 1 10m"))
    ctit_10_60m = models.PositiveIntegerField(default=0, verbose_name=_("ctit 10 60m"))
    ctit_1_24h = models.PositiveIntegerField(default=0, verbose_name=_("ctit 1 24h"))
    ctit_gt_24h = models.PositiveIntegerField(default=0, verbose_name=_("ctit gt 24h"))
    ctit_median_seconds = models.PositiveIntegerField(
        null=True, blank=True, help_text=_("5-minute and hourly rows"), verbose_name=_("ctit median seconds")
    )
    clicks_before_conversions = models.PositiveIntegerField(
        default=0,
        help_text=_("sum over the attributed conversions of the device's clicks before converting"),
        verbose_name=_("clicks before conversions"),
    )
    # deep events of attributed conversions (by the event's time)
    registers = models.PositiveIntegerField(default=0, verbose_name=_("registers"))
    pays = models.PositiveIntegerField(default=0, verbose_name=_("pays"))
    pay_amount_fen = models.PositiveBigIntegerField(default=0, verbose_name=_("pay amount fen"))
    # postbacks (by the time of the event they report; status as of the roll-up)
    postbacks_succeeded = models.PositiveIntegerField(default=0, verbose_name=_("postbacks succeeded"))
    postbacks_failed = models.PositiveIntegerField(
        default=0, help_text=_("gave up"), verbose_name=_("postbacks failed")
    )
    postbacks_pending = models.PositiveIntegerField(
        default=0, help_text=_("pending, sending or retrying"), verbose_name=_("postbacks pending")
    )
    postback_attempts_failed = models.PositiveIntegerField(
        default=0, help_text=_("failed attempts made in the bucket"), verbose_name=_("postback attempts failed")
    )
    rolled_at = models.DateTimeField(verbose_name=_("rolled at"))

    class Meta:
        verbose_name = _("link rollup")
        verbose_name_plural = _("link rollups")
        ordering = ["-bucket_start", "link_id", "os"]
        constraints = [
            models.UniqueConstraint(
                fields=["bucket_minutes", "bucket_start", "app_id", "platform", "link_id", "os"],
                name="analytics_linkrollup_group_once",
            ),
        ]
        indexes = [
            models.Index(fields=["bucket_minutes", "bucket_start"]),
            models.Index(fields=["link_id", "bucket_minutes", "bucket_start"]),
        ]

    def __str__(self) -> str:
        return f"{self.bucket_start:%Y-%m-%d %H:%M} /{self.bucket_minutes} link {self.link_id} {self.os}"


class RollupRun(models.Model):
    """One bucket rolled: when, and how many rows it produced. Its row is locked while
    a bucket is rebuilt, so two rebuilds of one bucket run one after the other."""

    kind = models.CharField(max_length=16, verbose_name=_("kind"))  # "links" | "campaigns"
    bucket_minutes = models.PositiveSmallIntegerField(choices=BucketMinutes.choices, verbose_name=_("bucket minutes"))
    bucket_start = models.DateTimeField(verbose_name=_("bucket start"))
    rows = models.PositiveIntegerField(default=0, verbose_name=_("rows"))
    rolled_at = models.DateTimeField(null=True, blank=True, verbose_name=_("rolled at"))
    seconds = models.FloatField(default=0, verbose_name=_("seconds"))

    class Meta:
        verbose_name = _("rollup run")
        verbose_name_plural = _("rollup runs")
        ordering = ["-bucket_start"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "bucket_minutes", "bucket_start"], name="analytics_run_once"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.bucket_start:%Y-%m-%d %H:%M} /{self.bucket_minutes}"


class RollupCursor(models.Model):
    """How far the beat job has read an append-only source table (its last id seen):
    rows after it are new, and their event times name the buckets to re-roll."""

    name = models.CharField(max_length=32, unique=True, verbose_name=_("name"))
    position = models.PositiveBigIntegerField(default=0, verbose_name=_("position"))

    class Meta:
        verbose_name = _("rollup cursor")
        verbose_name_plural = _("rollup cursors")

    def __str__(self) -> str:
        return f"{self.name} @ {self.position}"


class CampaignRollup(models.Model):
    """Campaign figures of one hour per activity and component. component_id 0 holds
    the activity's own figures (page views, unique visitors); component rows hold
    claims, redemptions and orders of that component's coupon pack or product."""

    bucket_start = models.DateTimeField(verbose_name=_("bucket start"))
    bucket_minutes = models.PositiveSmallIntegerField(
        choices=BucketMinutes.choices, default=BucketMinutes.HOUR, verbose_name=_("bucket minutes")
    )
    activity_id = models.PositiveIntegerField(verbose_name=_("activity id"))
    component_id = models.PositiveIntegerField(default=0, verbose_name=_("component id"))
    page_views = models.PositiveIntegerField(
        default=0, help_text=_("server-rendered page + API reads"), verbose_name=_("page views")
    )
    unique_visitors = models.PositiveIntegerField(
        null=True, blank=True, help_text=_("HyperLogLog estimate"), verbose_name=_("unique visitors")
    )
    claims = models.PositiveIntegerField(default=0, verbose_name=_("claims"))
    redemptions = models.PositiveIntegerField(
        default=0, help_text=_("coupons used on an order"), verbose_name=_("redemptions")
    )
    orders_placed = models.PositiveIntegerField(default=0, verbose_name=_("orders placed"))
    orders_paid = models.PositiveIntegerField(default=0, verbose_name=_("orders paid"))
    revenue_fen = models.PositiveBigIntegerField(default=0, verbose_name=_("revenue fen"))
    refunds = models.PositiveIntegerField(default=0, verbose_name=_("refunds"))
    refund_fen = models.PositiveBigIntegerField(default=0, verbose_name=_("refund fen"))
    rolled_at = models.DateTimeField(verbose_name=_("rolled at"))

    class Meta:
        verbose_name = _("campaign rollup")
        verbose_name_plural = _("campaign rollups")
        ordering = ["-bucket_start", "activity_id", "component_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["bucket_minutes", "bucket_start", "activity_id", "component_id"],
                name="analytics_campaignrollup_group_once",
            ),
        ]
        indexes = [models.Index(fields=["bucket_minutes", "bucket_start"], name="analytics_campaign_bucket")]

    def __str__(self) -> str:
        return f"{self.bucket_start:%Y-%m-%d %H:%M} activity {self.activity_id} component {self.component_id}"


class LinkCampaign(models.Model):
    """A tracking link names the activity it advertises: what users attributed to the
    link claim, order and pay on that activity within `window_days` of their install
    rolls up to the link (the closed loop)."""

    link = models.OneToOneField(
        "attribution.TrackingLink", on_delete=models.CASCADE, related_name="campaign", verbose_name=_("link")
    )
    activity = models.ForeignKey(
        "activities.Activity", on_delete=models.CASCADE, related_name="tracking_links", verbose_name=_("activity")
    )
    window_days = models.PositiveSmallIntegerField(
        default=7,
        validators=[MinValueValidator(1), MaxValueValidator(90)],
        help_text=_("days after the install"),
        verbose_name=_("window days"),
    )

    class Meta:
        verbose_name = _("link campaign")
        verbose_name_plural = _("link campaigns")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(window_days__gte=1, window_days__lte=90), name="analytics_linkcampaign_window"
            )
        ]

    def __str__(self) -> str:
        return f"link {self.link_id} -> activity {self.activity_id}"


class LinkOutcomeRollup(models.Model):
    """The closed loop, per hour and link: claims, orders and revenue on the link's
    activity by users attributed to the link within its window."""

    bucket_start = models.DateTimeField(verbose_name=_("bucket start"))
    link_id = models.PositiveIntegerField(verbose_name=_("link id"))
    platform = models.CharField(max_length=16, verbose_name=_("platform"))
    activity_id = models.PositiveIntegerField(verbose_name=_("activity id"))
    claims = models.PositiveIntegerField(default=0, verbose_name=_("claims"))
    orders_paid = models.PositiveIntegerField(default=0, verbose_name=_("orders paid"))
    revenue_fen = models.PositiveBigIntegerField(default=0, verbose_name=_("revenue fen"))
    rolled_at = models.DateTimeField(verbose_name=_("rolled at"))

    class Meta:
        verbose_name = _("link outcome rollup")
        verbose_name_plural = _("link outcome rollups")
        ordering = ["-bucket_start", "link_id"]
        constraints = [
            models.UniqueConstraint(fields=["bucket_start", "link_id"], name="analytics_outcome_group_once"),
        ]
        indexes = [models.Index(fields=["bucket_start"], name="analytics_outcome_bucket")]

    def __str__(self) -> str:
        return f"{self.bucket_start:%Y-%m-%d %H:%M} link {self.link_id}"


class LinkCost(models.Model):
    """What marketing spent on a tracking link on one day (entered or uploaded as CSV)."""

    link = models.ForeignKey(
        "attribution.TrackingLink", on_delete=models.CASCADE, related_name="costs", verbose_name=_("link")
    )
    day = models.DateField(verbose_name=_("day"))
    cost_fen = models.PositiveBigIntegerField(verbose_name=_("cost fen"))
    note = models.CharField(max_length=200, blank=True, verbose_name=_("note"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("link cost")
        verbose_name_plural = _("link costs")
        ordering = ["-day", "link_id"]
        constraints = [models.UniqueConstraint(fields=["link", "day"], name="analytics_cost_once_per_day")]

    def __str__(self) -> str:
        return f"{self.day} link {self.link_id}: {self.cost_fen} fen"


class DailyReportStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed")


class DailyReport(models.Model):
    """The archive of daily marketing reports (contract §8): one row per local day,
    its files in Django's storage, its delivery status. Written by analytics.reports."""

    date = models.DateField(unique=True, help_text=_("the report's local date (TIME_ZONE)"), verbose_name=_("date"))
    status = models.CharField(
        max_length=8, choices=DailyReportStatus.choices, default=DailyReportStatus.PENDING, verbose_name=_("status")
    )
    recipients = models.JSONField(default=list, blank=True, verbose_name=_("recipients"))
    subject = models.CharField(max_length=200, blank=True, verbose_name=_("subject"))
    xlsx_file = models.FileField(upload_to="reports/daily/", blank=True, verbose_name=_("xlsx file"))
    csv_file = models.FileField(upload_to="reports/daily/", blank=True, verbose_name=_("csv file"))
    html_file = models.FileField(upload_to="reports/daily/", blank=True, verbose_name=_("html file"))
    attempts = models.PositiveIntegerField(default=0, verbose_name=_("attempts"))
    error = models.TextField(blank=True, verbose_name=_("error"))
    built_at = models.DateTimeField(null=True, blank=True, verbose_name=_("built at"))
    sent_at = models.DateTimeField(null=True, blank=True, verbose_name=_("sent at"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("daily report")
        verbose_name_plural = _("daily reports")
        ordering = ["-date"]

    def __str__(self) -> str:
        return f"日报 {self.date} ({self.status})"


class ReportSubscription(models.Model):
    """A recipient of the daily report; when none is active, REPORT_RECIPIENTS applies."""

    email = models.EmailField(unique=True, verbose_name=_("email"))
    name = models.CharField(max_length=100, blank=True, verbose_name=_("name"))
    active = models.BooleanField(default=True, verbose_name=_("active"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("report subscription")
        verbose_name_plural = _("report subscriptions")
        ordering = ["email"]

    def __str__(self) -> str:
        return self.email
