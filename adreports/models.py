"""Ad accounts, their daily report rows pulled from the platforms (contracts §10),
the record of every pull, discrepancies against our own figures, and the warnings
raised about them (docs/adreports.md)."""

from __future__ import annotations

from django.db import models
from django.db.models import Q


class Platform(models.TextChoices):
    OCEANENGINE = "oceanengine", "巨量引擎 (Ocean Engine)"
    TENCENT = "tencent", "广点通 (Tencent Ads)"
    KUAISHOU = "kuaishou", "磁力引擎 (Kuaishou)"


class AdAccount(models.Model):
    """One advertiser account on one platform. Secrets (`*_enc`) are Fernet tokens
    (adreports.crypto); only services encrypt and decrypt them."""

    platform = models.CharField(max_length=16, choices=Platform.choices)
    account_id = models.CharField(
        "account id", max_length=64, help_text="advertiser_id (Ocean Engine, Kuaishou) or account_id (Tencent)"
    )
    name = models.CharField(max_length=200, blank=True)
    app_id = models.CharField("app id", max_length=64, help_text="The developer app: app_id / client_id")
    app_secret_enc = models.TextField(blank=True, editable=False)
    access_token_enc = models.TextField(blank=True, editable=False)
    refresh_token_enc = models.TextField(blank=True, editable=False)
    access_token_expires_at = models.DateTimeField(null=True, blank=True)
    refresh_token_expires_at = models.DateTimeField(null=True, blank=True)
    active = models.BooleanField(default=True, help_text="Pulled by the daily job.")
    last_pull_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_error = models.CharField(max_length=500, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["platform", "account_id"]
        constraints = [
            models.UniqueConstraint(fields=["platform", "account_id"], name="adr_account_unique"),
            models.CheckConstraint(condition=Q(platform__in=Platform.values), name="adr_account_platform_known"),
        ]

    def __str__(self) -> str:
        return f"{self.get_platform_display()} {self.account_id}" + (f" ({self.name})" if self.name else "")


class AdReportRow(models.Model):
    """Their figures for one (account, day, campaign, ad), money in fen. A day's rows
    are replaced whole by each successful pull of that day."""

    account = models.ForeignKey(AdAccount, on_delete=models.CASCADE, related_name="rows")
    platform = models.CharField(max_length=16, choices=Platform.choices)
    day = models.DateField()
    campaign_id = models.CharField(max_length=64)
    ad_id = models.CharField(max_length=64)
    cost_fen = models.BigIntegerField()
    impressions = models.BigIntegerField(default=0)
    clicks = models.BigIntegerField(default=0)
    conversions = models.BigIntegerField(default=0)
    pulled_at = models.DateTimeField()

    class Meta:
        ordering = ["-day", "account", "campaign_id", "ad_id"]
        constraints = [
            models.UniqueConstraint(fields=["account", "day", "campaign_id", "ad_id"], name="adr_row_unique"),
            models.CheckConstraint(
                condition=Q(cost_fen__gte=0, impressions__gte=0, clicks__gte=0, conversions__gte=0),
                name="adr_row_non_negative",
            ),
        ]
        indexes = [models.Index(fields=["day", "platform"])]

    def __str__(self) -> str:
        return f"{self.account} {self.day} {self.campaign_id}/{self.ad_id}"


class PullStatus(models.TextChoices):
    SUCCEEDED = "succeeded", "succeeded"
    FAILED = "failed", "failed"


class AdPull(models.Model):
    """One pull of one account's day: what it found and changed, or why it failed
    (a failed pull changed nothing)."""

    account = models.ForeignKey(AdAccount, on_delete=models.CASCADE, related_name="pulls")
    day = models.DateField()
    status = models.CharField(max_length=16, choices=PullStatus.choices)
    pages = models.PositiveIntegerField(default=0)
    requests = models.PositiveIntegerField(default=0)
    rows = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    deleted = models.PositiveIntegerField(default=0)
    cost_fen_before = models.BigIntegerField(default=0)
    cost_fen_after = models.BigIntegerField(default=0)
    error_kind = models.CharField(max_length=32, blank=True)
    error = models.CharField(max_length=500, blank=True)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["account", "day", "started_at"])]

    def __str__(self) -> str:
        return f"pull {self.account} {self.day}: {self.status}"

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.deleted)


class Metric(models.TextChoices):
    CLICKS = "clicks", "their clicks vs our clicks"
    CONVERSIONS = "conversions", "their conversions vs our successful postbacks"


class AdDiscrepancy(models.Model):
    """Their figure vs ours for one account, day and metric, beyond the tolerance
    (rewritten by each check of the day)."""

    account = models.ForeignKey(AdAccount, on_delete=models.CASCADE, related_name="discrepancies")
    day = models.DateField()
    metric = models.CharField(max_length=16, choices=Metric.choices)
    theirs = models.BigIntegerField()
    ours = models.BigIntegerField()
    difference_percent = models.DecimalField(max_digits=9, decimal_places=1)
    large = models.BooleanField(default=False, help_text="Beyond the alert threshold.")
    checked_at = models.DateTimeField()

    class Meta:
        ordering = ["-day", "account", "metric"]
        constraints = [
            models.UniqueConstraint(fields=["account", "day", "metric"], name="adr_discrepancy_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.account} {self.day} {self.metric}: {self.theirs} vs {self.ours}"


class WarningKind(models.TextChoices):
    REFRESH_TOKEN_EXPIRING = "refresh_token_expiring", "refresh token about to expire"
    REFRESH_FAILED = "refresh_failed", "token refresh failed"
    PULL_FAILED = "pull_failed", "pull failed"
    DISCREPANCY = "discrepancy", "large discrepancy"


class AdWarning(models.Model):
    """An alert raised by the ad-report jobs (adreports.alerting.ad_alert_raise), shown
    in the admin until resolved. One open warning per key; raising it again bumps it."""

    key = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=32, choices=WarningKind.choices)
    account = models.ForeignKey(AdAccount, null=True, blank=True, on_delete=models.CASCADE, related_name="warnings")
    title = models.CharField(max_length=200)
    text = models.TextField(blank=True)
    times = models.PositiveIntegerField(default=1)
    first_at = models.DateTimeField()
    last_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["resolved_at", "-last_at"]

    def __str__(self) -> str:
        return self.title


class AdManualCost(models.Model):
    """Spend typed in by hand for a tracking link and day, for platforms (or
    accounts) without a reporting API; added to the link's spend."""

    link = models.ForeignKey("attribution.TrackingLink", on_delete=models.CASCADE, related_name="manual_costs")
    day = models.DateField()
    cost_fen = models.BigIntegerField()
    note = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-day", "link"]
        constraints = [
            models.UniqueConstraint(fields=["link", "day"], name="adr_manual_cost_unique"),
            models.CheckConstraint(condition=Q(cost_fen__gte=0), name="adr_manual_cost_non_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.link} {self.day}: {self.cost_fen} fen"
