"""Ad accounts, their daily report rows pulled from the platforms (contracts §10),
the record of every pull, discrepancies against our own figures, and the warnings
raised about them (docs/adreports.md)."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class Platform(models.TextChoices):
    OCEANENGINE = "oceanengine", _("巨量引擎 (Ocean Engine)")
    TENCENT = "tencent", _("广点通 (Tencent Ads)")
    KUAISHOU = "kuaishou", _("磁力引擎 (Kuaishou)")


class AdAccount(models.Model):
    """One advertiser account on one platform. Secrets (`*_enc`) are Fernet tokens
    (adreports.crypto); only services encrypt and decrypt them."""

    platform = models.CharField(max_length=16, choices=Platform.choices, verbose_name=_("platform"))
    account_id = models.CharField(
        _("account id"), max_length=64, help_text=_("advertiser_id (Ocean Engine, Kuaishou) or account_id (Tencent)")
    )
    name = models.CharField(max_length=200, blank=True, verbose_name=_("name"))
    app_id = models.CharField(_("app id"), max_length=64, help_text=_("The developer app: app_id / client_id"))
    app_secret_enc = models.TextField(blank=True, editable=False, verbose_name=_("app secret enc"))
    access_token_enc = models.TextField(blank=True, editable=False, verbose_name=_("access token enc"))
    refresh_token_enc = models.TextField(blank=True, editable=False, verbose_name=_("refresh token enc"))
    access_token_expires_at = models.DateTimeField(null=True, blank=True, verbose_name=_("access token expires at"))
    refresh_token_expires_at = models.DateTimeField(null=True, blank=True, verbose_name=_("refresh token expires at"))
    active = models.BooleanField(default=True, help_text=_("Pulled by the daily job."), verbose_name=_("active"))
    last_pull_at = models.DateTimeField(null=True, blank=True, editable=False, verbose_name=_("last pull at"))
    last_error = models.CharField(max_length=500, blank=True, editable=False, verbose_name=_("last error"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("ad account")
        verbose_name_plural = _("ad accounts")
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

    account = models.ForeignKey(AdAccount, on_delete=models.CASCADE, related_name="rows", verbose_name=_("account"))
    platform = models.CharField(max_length=16, choices=Platform.choices, verbose_name=_("platform"))
    day = models.DateField(verbose_name=_("day"))
    campaign_id = models.CharField(max_length=64, verbose_name=_("campaign id"))
    ad_id = models.CharField(max_length=64, verbose_name=_("ad id"))
    cost_fen = models.BigIntegerField(verbose_name=_("cost fen"))
    impressions = models.BigIntegerField(default=0, verbose_name=_("impressions"))
    clicks = models.BigIntegerField(default=0, verbose_name=_("clicks"))
    conversions = models.BigIntegerField(default=0, verbose_name=_("conversions"))
    pulled_at = models.DateTimeField(verbose_name=_("pulled at"))

    class Meta:
        verbose_name = _("ad report row")
        verbose_name_plural = _("ad report rows")
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
    SUCCEEDED = "succeeded", _("succeeded")
    FAILED = "failed", _("failed")


class AdPull(models.Model):
    """One pull of one account's day: what it found and changed, or why it failed
    (a failed pull changed nothing)."""

    account = models.ForeignKey(AdAccount, on_delete=models.CASCADE, related_name="pulls", verbose_name=_("account"))
    day = models.DateField(verbose_name=_("day"))
    status = models.CharField(max_length=16, choices=PullStatus.choices, verbose_name=_("status"))
    pages = models.PositiveIntegerField(default=0, verbose_name=_("pages"))
    requests = models.PositiveIntegerField(default=0, verbose_name=_("requests"))
    rows = models.PositiveIntegerField(default=0, verbose_name=_("rows"))
    created = models.PositiveIntegerField(default=0, verbose_name=_("created"))
    updated = models.PositiveIntegerField(default=0, verbose_name=_("updated"))
    deleted = models.PositiveIntegerField(default=0, verbose_name=_("deleted"))
    cost_fen_before = models.BigIntegerField(default=0, verbose_name=_("cost fen before"))
    cost_fen_after = models.BigIntegerField(default=0, verbose_name=_("cost fen after"))
    error_kind = models.CharField(max_length=32, blank=True, verbose_name=_("error kind"))
    error = models.CharField(max_length=500, blank=True, verbose_name=_("error"))
    started_at = models.DateTimeField(verbose_name=_("started at"))
    finished_at = models.DateTimeField(verbose_name=_("finished at"))

    class Meta:
        verbose_name = _("ad pull")
        verbose_name_plural = _("ad pulls")
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["account", "day", "started_at"])]

    def __str__(self) -> str:
        return f"pull {self.account} {self.day}: {self.status}"

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.deleted)


class Metric(models.TextChoices):
    CLICKS = "clicks", _("their clicks vs our clicks")
    CONVERSIONS = "conversions", _("their conversions vs our successful postbacks")


class AdDiscrepancy(models.Model):
    """Their figure vs ours for one account, day and metric, beyond the tolerance
    (rewritten by each check of the day)."""

    account = models.ForeignKey(
        AdAccount, on_delete=models.CASCADE, related_name="discrepancies", verbose_name=_("account")
    )
    day = models.DateField(verbose_name=_("day"))
    metric = models.CharField(max_length=16, choices=Metric.choices, verbose_name=_("metric"))
    theirs = models.BigIntegerField(verbose_name=_("theirs"))
    ours = models.BigIntegerField(verbose_name=_("ours"))
    difference_percent = models.DecimalField(max_digits=9, decimal_places=1, verbose_name=_("difference percent"))
    large = models.BooleanField(default=False, help_text=_("Beyond the alert threshold."), verbose_name=_("large"))
    checked_at = models.DateTimeField(verbose_name=_("checked at"))

    class Meta:
        verbose_name = _("ad discrepancy")
        verbose_name_plural = _("ad discrepancies")
        ordering = ["-day", "account", "metric"]
        constraints = [
            models.UniqueConstraint(fields=["account", "day", "metric"], name="adr_discrepancy_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.account} {self.day} {self.metric}: {self.theirs} vs {self.ours}"


class WarningKind(models.TextChoices):
    REFRESH_TOKEN_EXPIRING = "refresh_token_expiring", _("refresh token about to expire")
    REFRESH_FAILED = "refresh_failed", _("token refresh failed")
    PULL_FAILED = "pull_failed", _("pull failed")
    DISCREPANCY = "discrepancy", _("large discrepancy")


class AdWarning(models.Model):
    """An alert raised by the ad-report jobs (adreports.alerting.ad_alert_raise), shown
    in the admin until resolved. One open warning per key; raising it again bumps it."""

    key = models.CharField(max_length=200, unique=True, verbose_name=_("key"))
    kind = models.CharField(max_length=32, choices=WarningKind.choices, verbose_name=_("kind"))
    account = models.ForeignKey(
        AdAccount, null=True, blank=True, on_delete=models.CASCADE, related_name="warnings", verbose_name=_("account")
    )
    title = models.CharField(max_length=200, verbose_name=_("title"))
    text = models.TextField(blank=True, verbose_name=_("text"))
    times = models.PositiveIntegerField(default=1, verbose_name=_("times"))
    first_at = models.DateTimeField(verbose_name=_("first at"))
    last_at = models.DateTimeField(verbose_name=_("last at"))
    resolved_at = models.DateTimeField(null=True, blank=True, verbose_name=_("resolved at"))

    class Meta:
        verbose_name = _("ad warning")
        verbose_name_plural = _("ad warnings")
        ordering = ["resolved_at", "-last_at"]

    def __str__(self) -> str:
        return self.title


class AdManualCost(models.Model):
    """Spend typed in by hand for a tracking link and day, for platforms (or
    accounts) without a reporting API; added to the link's spend."""

    link = models.ForeignKey(
        "attribution.TrackingLink", on_delete=models.CASCADE, related_name="manual_costs", verbose_name=_("link")
    )
    day = models.DateField(verbose_name=_("day"))
    cost_fen = models.BigIntegerField(verbose_name=_("cost fen"))
    note = models.CharField(max_length=200, blank=True, verbose_name=_("note"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("ad manual cost")
        verbose_name_plural = _("ad manual costs")
        ordering = ["-day", "link"]
        constraints = [
            models.UniqueConstraint(fields=["link", "day"], name="adr_manual_cost_unique"),
            models.CheckConstraint(condition=Q(cost_fen__gte=0), name="adr_manual_cost_non_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.link} {self.day}: {self.cost_fen} fen"
