"""Rollups: the one source of reports, the dashboard and alerts (docs/analytics.md).

A rollup row is a bucket of time (an hour, or 5 minutes) and a group; rebuilding a
bucket replaces all its rows in one transaction, so any bucket can be re-rolled."""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models


class BucketMinutes(models.IntegerChoices):
    HOUR = 60, "hour"
    FIVE = 5, "5 minutes"
    DAY = 1440, "local day"  # bucket_start = local midnight (TIME_ZONE), summed from the hourly rows


class LinkRollup(models.Model):
    """Ad traffic of one bucket per app, platform, tracking link and OS.

    Buckets: 5 minutes and hours (UTC, rolled from the sources), and local days
    (bucket_start = local midnight, the sums of that day's hourly rows; rebuilt with
    every hour of the day, so readers of whole days read 1/24 of the rows).

    link_id 0 (platform "") holds what belongs to no link: organic activations,
    and clicks on unknown tokens (app_id "" too). Test-device traffic is counted
    apart (test_*) and excluded from every other column."""

    bucket_start = models.DateTimeField()
    bucket_minutes = models.PositiveSmallIntegerField(choices=BucketMinutes.choices)
    app_id = models.CharField(max_length=128)
    platform = models.CharField(max_length=16, blank=True)
    link_id = models.PositiveIntegerField(help_text="TrackingLink id, 0 for none (kept when the link is deleted)")
    os = models.CharField("OS", max_length=8, blank=True)
    # clicks (Redis counters)
    clicks = models.PositiveIntegerField(default=0)
    unique_devices = models.PositiveIntegerField(null=True, blank=True, help_text="HyperLogLog estimate; hours only")
    repeated_clicks = models.PositiveIntegerField(default=0)
    unkeyed_clicks = models.PositiveIntegerField(default=0, help_text="clicks with no device key nor IP+UA stored")
    rejected_clicks = models.PositiveIntegerField(default=0)
    rejects = models.JSONField(default=dict, blank=True, help_text="rejected clicks by reason")
    # activations (match traces and conversions)
    activations = models.PositiveIntegerField(default=0, help_text="attributed + organic + reinstalls")
    attributed = models.PositiveIntegerField(default=0)
    organic = models.PositiveIntegerField(default=0)
    reinstalls = models.PositiveIntegerField(default=0)
    test_clicks = models.PositiveIntegerField(default=0)
    test_activations = models.PositiveIntegerField(default=0)
    # fraud rules at attribution time (alerts.fraud): of `attributed`, how many a rule flagged / rejected
    fraud_flagged = models.PositiveIntegerField(default=0, help_text="attributed installs a fraud rule flagged")
    fraud_rejected = models.PositiveIntegerField(
        default=0, help_text="attributed installs a fraud rule rejected (not posted back; part of attributed)"
    )
    # click-to-install time of the attributed conversions
    ctit_lt_10s = models.PositiveIntegerField(default=0)
    ctit_10_60s = models.PositiveIntegerField(default=0)
    ctit_1_10m = models.PositiveIntegerField(default=0)
    ctit_10_60m = models.PositiveIntegerField(default=0)
    ctit_1_24h = models.PositiveIntegerField(default=0)
    ctit_gt_24h = models.PositiveIntegerField(default=0)
    ctit_median_seconds = models.PositiveIntegerField(null=True, blank=True, help_text="5-minute and hourly rows")
    clicks_before_conversions = models.PositiveIntegerField(
        default=0, help_text="sum over the attributed conversions of the device's clicks before converting"
    )
    # deep events of attributed conversions (by the event's time)
    registers = models.PositiveIntegerField(default=0)
    pays = models.PositiveIntegerField(default=0)
    pay_amount_fen = models.PositiveBigIntegerField(default=0)
    # postbacks (by the time of the event they report; status as of the roll-up)
    postbacks_succeeded = models.PositiveIntegerField(default=0)
    postbacks_failed = models.PositiveIntegerField(default=0, help_text="gave up")
    postbacks_pending = models.PositiveIntegerField(default=0, help_text="pending, sending or retrying")
    postback_attempts_failed = models.PositiveIntegerField(default=0, help_text="failed attempts made in the bucket")
    rolled_at = models.DateTimeField()

    class Meta:
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

    kind = models.CharField(max_length=16)  # "links" | "campaigns"
    bucket_minutes = models.PositiveSmallIntegerField(choices=BucketMinutes.choices)
    bucket_start = models.DateTimeField()
    rows = models.PositiveIntegerField(default=0)
    rolled_at = models.DateTimeField(null=True, blank=True)
    seconds = models.FloatField(default=0)

    class Meta:
        ordering = ["-bucket_start"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "bucket_minutes", "bucket_start"], name="analytics_run_once"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.bucket_start:%Y-%m-%d %H:%M} /{self.bucket_minutes}"


class RollupCursor(models.Model):
    """How far the beat job has read an append-only source table (its last id seen):
    rows after it are new, and their event times name the buckets to re-roll."""

    name = models.CharField(max_length=32, unique=True)
    position = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name} @ {self.position}"


class CampaignRollup(models.Model):
    """Campaign figures of one hour per activity and component. component_id 0 holds
    the activity's own figures (page views, unique visitors); component rows hold
    claims, redemptions and orders of that component's coupon pack or product."""

    bucket_start = models.DateTimeField()
    bucket_minutes = models.PositiveSmallIntegerField(choices=BucketMinutes.choices, default=BucketMinutes.HOUR)
    activity_id = models.PositiveIntegerField()
    component_id = models.PositiveIntegerField(default=0)
    page_views = models.PositiveIntegerField(default=0, help_text="server-rendered page + API reads")
    unique_visitors = models.PositiveIntegerField(null=True, blank=True, help_text="HyperLogLog estimate")
    claims = models.PositiveIntegerField(default=0)
    redemptions = models.PositiveIntegerField(default=0, help_text="coupons used on an order")
    orders_placed = models.PositiveIntegerField(default=0)
    orders_paid = models.PositiveIntegerField(default=0)
    revenue_fen = models.PositiveBigIntegerField(default=0)
    refunds = models.PositiveIntegerField(default=0)
    refund_fen = models.PositiveBigIntegerField(default=0)
    rolled_at = models.DateTimeField()

    class Meta:
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

    link = models.OneToOneField("attribution.TrackingLink", on_delete=models.CASCADE, related_name="campaign")
    activity = models.ForeignKey("activities.Activity", on_delete=models.CASCADE, related_name="tracking_links")
    window_days = models.PositiveSmallIntegerField(
        default=7, validators=[MinValueValidator(1), MaxValueValidator(90)], help_text="days after the install"
    )

    class Meta:
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

    bucket_start = models.DateTimeField()
    link_id = models.PositiveIntegerField()
    platform = models.CharField(max_length=16)
    activity_id = models.PositiveIntegerField()
    claims = models.PositiveIntegerField(default=0)
    orders_paid = models.PositiveIntegerField(default=0)
    revenue_fen = models.PositiveBigIntegerField(default=0)
    rolled_at = models.DateTimeField()

    class Meta:
        ordering = ["-bucket_start", "link_id"]
        constraints = [
            models.UniqueConstraint(fields=["bucket_start", "link_id"], name="analytics_outcome_group_once"),
        ]
        indexes = [models.Index(fields=["bucket_start"], name="analytics_outcome_bucket")]

    def __str__(self) -> str:
        return f"{self.bucket_start:%Y-%m-%d %H:%M} link {self.link_id}"


class LinkCost(models.Model):
    """What marketing spent on a tracking link on one day (entered or uploaded as CSV)."""

    link = models.ForeignKey("attribution.TrackingLink", on_delete=models.CASCADE, related_name="costs")
    day = models.DateField()
    cost_fen = models.PositiveBigIntegerField()
    note = models.CharField(max_length=200, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-day", "link_id"]
        constraints = [models.UniqueConstraint(fields=["link", "day"], name="analytics_cost_once_per_day")]

    def __str__(self) -> str:
        return f"{self.day} link {self.link_id}: {self.cost_fen} fen"


class DailyReportStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class DailyReport(models.Model):
    """The archive of daily marketing reports (contract §8): one row per local day,
    its files in Django's storage, its delivery status. Written by analytics.reports."""

    date = models.DateField(unique=True, help_text="the report's local date (TIME_ZONE)")
    status = models.CharField(max_length=8, choices=DailyReportStatus.choices, default=DailyReportStatus.PENDING)
    recipients = models.JSONField(default=list, blank=True)
    subject = models.CharField(max_length=200, blank=True)
    xlsx_file = models.FileField(upload_to="reports/daily/", blank=True)
    csv_file = models.FileField(upload_to="reports/daily/", blank=True)
    html_file = models.FileField(upload_to="reports/daily/", blank=True)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    built_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-date"]

    def __str__(self) -> str:
        return f"日报 {self.date} ({self.status})"


class ReportSubscription(models.Model):
    """A recipient of the daily report; when none is active, REPORT_RECIPIENTS applies."""

    email = models.EmailField(unique=True)
    name = models.CharField(max_length=100, blank=True)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["email"]

    def __str__(self) -> str:
        return self.email
