"""Coupon packs (券包): templates, packs, claims, coupons and offline codes.

The guarantees live in the schema: the stock counter can never go below zero
(CheckConstraint), a user's claims of a pack are numbered 1..limit and unique on
(pack, user, sequence), a coupon code and an offline code are unique, and an
offline code is turned into at most one claim (OneToOne). All writes go through
coupons.services.
"""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _


class CouponKind(models.TextChoices):
    FIXED = "fixed", _("Fixed amount off (立减)")
    PERCENT = "percent", _("Percentage off (折扣)")
    THRESHOLD = "threshold", _("Amount off above a threshold (满减)")


class ValidityKind(models.TextChoices):
    ABSOLUTE = "absolute", _("Absolute dates (from, to)")
    RELATIVE = "relative", _("N days from the claim")


class CouponTemplate(models.Model):
    """What a coupon is worth and how long it lasts. `value` is fen off for
    fixed and threshold coupons and the percentage off (1-99) for percent coupons;
    `min_spend_fen` is the order amount the coupon needs (the threshold of 满减)."""

    name = models.CharField(max_length=100, verbose_name=_("name"))
    kind = models.CharField(max_length=16, choices=CouponKind.choices, verbose_name=_("kind"))
    value = models.PositiveIntegerField(
        help_text=_("Fen off (fixed, threshold) or percent off 1-99 (percent)."), verbose_name=_("value")
    )
    min_spend_fen = models.PositiveIntegerField(
        default=0, help_text=_("Minimum order amount in fen (0: none)."), verbose_name=_("min spend fen")
    )
    max_discount_fen = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text=_("Percent coupons: cap on the amount off, in fen (empty: no cap)."),
        verbose_name=_("max discount fen"),
    )
    validity_kind = models.CharField(
        max_length=16, choices=ValidityKind.choices, default=ValidityKind.RELATIVE, verbose_name=_("validity kind")
    )
    valid_from = models.DateTimeField(null=True, blank=True, verbose_name=_("valid from"))
    valid_until = models.DateTimeField(null=True, blank=True, verbose_name=_("valid until"))
    valid_days = models.PositiveIntegerField(
        null=True, blank=True, help_text=_("Relative validity: days after claim."), verbose_name=_("valid days")
    )
    usage_notes = models.TextField(blank=True, verbose_name=_("usage notes"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("coupon template")
        verbose_name_plural = _("coupon templates")
        ordering = ["name", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(value__gt=0), name="coupon_template_value_positive"),
            models.CheckConstraint(
                condition=~Q(kind="percent") | Q(value__lte=99), name="coupon_template_percent_at_most_99"
            ),
            models.CheckConstraint(
                condition=Q(kind="threshold", min_spend_fen__gt=F("value")) | ~Q(kind="threshold"),
                name="coupon_template_threshold_above_value",
            ),
            models.CheckConstraint(
                condition=(
                    Q(
                        validity_kind="absolute",
                        valid_from__isnull=False,
                        valid_until__isnull=False,
                        valid_until__gt=F("valid_from"),
                    )
                    | Q(validity_kind="relative", valid_days__isnull=False, valid_days__gte=1)
                ),
                name="coupon_template_validity_complete",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class CouponPack(models.Model):
    """A bundle of coupon templates that a user claims at once. `remaining` is
    the stock counter, decremented conditionally by each claim and by each
    offline code generated."""

    component = models.OneToOneField(
        "components.Component",
        null=True,
        blank=True,
        # A deleted component leaves its pack (and the users' coupons) in place, detached.
        on_delete=models.SET_NULL,
        related_name="coupon_pack",
        limit_choices_to={"type": "coupon_pack"},
        help_text=_("The coupon_pack component of an activity page that shows this pack."),
        verbose_name=_("component"),
    )
    name = models.CharField(max_length=100, verbose_name=_("name"))
    description = models.CharField(max_length=300, blank=True, verbose_name=_("description"))
    total_stock = models.PositiveIntegerField(
        help_text=_("How many packs can be claimed in total."), verbose_name=_("total stock")
    )
    remaining = models.PositiveIntegerField(
        help_text=_("Packs left to claim (maintained by the platform)."), verbose_name=_("remaining")
    )
    per_user_limit = models.PositiveSmallIntegerField(
        default=1, help_text=_("Claims per user."), verbose_name=_("per user limit")
    )
    claim_starts_at = models.DateTimeField(null=True, blank=True, verbose_name=_("claim starts at"))
    claim_ends_at = models.DateTimeField(null=True, blank=True, verbose_name=_("claim ends at"))
    enabled = models.BooleanField(
        default=True, help_text=_("Untick to stop claims at once."), verbose_name=_("enabled")
    )
    redis_gate = models.BooleanField(
        default=False,
        help_text=_("Hot pack: a Redis counter refuses claims once sold out before they reach the database."),
        verbose_name=_("redis gate"),
    )
    stock_shards = models.PositiveSmallIntegerField(
        default=1,
        help_text=_(
            "Hot pack: spread the stock over this many counter rows so concurrent claims do not all "
            "wait for one row lock (1: one counter, the pack's own)."
        ),
        verbose_name=_("stock shards"),
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("coupon pack")
        verbose_name_plural = _("coupon packs")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(remaining__gte=0), name="coupon_pack_remaining_not_negative"),
            models.CheckConstraint(
                condition=Q(remaining__lte=F("total_stock")), name="coupon_pack_remaining_within_stock"
            ),
            models.CheckConstraint(condition=Q(per_user_limit__gte=1), name="coupon_pack_per_user_limit_positive"),
            models.CheckConstraint(
                condition=Q(stock_shards__gte=1, stock_shards__lte=64), name="coupon_pack_stock_shards_in_range"
            ),
            models.CheckConstraint(
                condition=Q(claim_starts_at__isnull=True)
                | Q(claim_ends_at__isnull=True)
                | Q(claim_ends_at__gt=F("claim_starts_at")),
                name="coupon_pack_window_ordered",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class CouponStockShard(models.Model):
    """One of a hot pack's stock counters (see `CouponPack.stock_shards`). The
    pack's `remaining` is then the reservoir not yet handed to a shard; claims
    take from a shard, and a shard found empty is refilled from the reservoir in
    chunks. Stock left = pack.remaining + the shards' remaining."""

    pack = models.ForeignKey(
        CouponPack, on_delete=models.CASCADE, related_name="stock_shards_rows", verbose_name=_("pack")
    )
    slot = models.PositiveSmallIntegerField(verbose_name=_("slot"))
    remaining = models.PositiveIntegerField(default=0, verbose_name=_("remaining"))

    class Meta:
        verbose_name = _("coupon stock shard")
        verbose_name_plural = _("coupon stock shards")
        constraints = [
            models.UniqueConstraint(fields=["pack", "slot"], name="coupon_stock_shard_unique_slot"),
            models.CheckConstraint(condition=Q(remaining__gte=0), name="coupon_stock_shard_remaining_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.pack_id}/{self.slot}: {self.remaining}"


class CouponPackItem(models.Model):
    pack = models.ForeignKey(CouponPack, on_delete=models.CASCADE, related_name="items", verbose_name=_("pack"))
    template = models.ForeignKey(
        CouponTemplate, on_delete=models.PROTECT, related_name="pack_items", verbose_name=_("template")
    )
    quantity = models.PositiveSmallIntegerField(default=1, verbose_name=_("quantity"))

    class Meta:
        verbose_name = _("coupon pack item")
        verbose_name_plural = _("coupon pack items")
        ordering = ["pack_id", "id"]
        constraints = [
            models.UniqueConstraint(fields=["pack", "template"], name="uniq_coupon_pack_item"),
            models.CheckConstraint(condition=Q(quantity__gte=1), name="coupon_pack_item_quantity_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.template}"


class ClaimSource(models.TextChoices):
    PAGE = "page", _("Activity page")
    CODE = "code", _("Offline code")


class Claim(models.Model):
    """One pack issued to one user. Page claims are numbered 1..per_user_limit
    per (pack, user); the unique constraint is what makes the limit hold under
    concurrency. Code claims carry no sequence (they do not count against the
    limit) and point at the offline code they consumed."""

    pack = models.ForeignKey(CouponPack, on_delete=models.PROTECT, related_name="claims", verbose_name=_("pack"))
    user_id = models.CharField(max_length=64, verbose_name=_("user id"))
    sequence = models.PositiveSmallIntegerField(null=True, blank=True, verbose_name=_("sequence"))
    source = models.CharField(
        max_length=8, choices=ClaimSource.choices, default=ClaimSource.PAGE, verbose_name=_("source")
    )
    redeem_code = models.OneToOneField(
        "RedeemCode",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="claim",
        verbose_name=_("redeem code"),
    )
    claimed_at = models.DateTimeField(verbose_name=_("claimed at"))

    # Not a column: the coupons a claim was just issued with, in insertion order,
    # set by the service that made it (claim_payload answers from them without
    # reading the rows back). None on a claim read from the database.
    issued: list[Coupon] | None = None

    class Meta:
        verbose_name = _("claim")
        verbose_name_plural = _("claims")
        ordering = ["-claimed_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["pack", "user_id", "sequence"], name="uniq_claim_pack_user_sequence"),
            models.CheckConstraint(
                condition=Q(source="page", sequence__gte=1, redeem_code__isnull=True)
                | Q(source="code", sequence__isnull=True, redeem_code__isnull=False),
                name="claim_source_consistent",
            ),
        ]
        indexes = [models.Index(fields=["user_id", "claimed_at"]), models.Index(fields=["pack", "claimed_at"])]

    def __str__(self) -> str:
        return f"{self.pack} -> {self.user_id}"


class CouponStatus(models.TextChoices):
    UNUSED = "unused", _("Unused")
    USED = "used", _("Used")
    EXPIRED = "expired", _("Expired")


class Coupon(models.Model):
    """One coupon in a user's wallet. Validity is computed at claim time; the
    code is random (secrets) and unique."""

    code = models.CharField(max_length=32, unique=True, verbose_name=_("code"))
    template = models.ForeignKey(
        CouponTemplate, on_delete=models.PROTECT, related_name="coupons", verbose_name=_("template")
    )
    claim = models.ForeignKey(Claim, on_delete=models.PROTECT, related_name="coupons", verbose_name=_("claim"))
    user_id = models.CharField(max_length=64, verbose_name=_("user id"))
    status = models.CharField(
        max_length=8, choices=CouponStatus.choices, default=CouponStatus.UNUSED, verbose_name=_("status")
    )
    valid_from = models.DateTimeField(verbose_name=_("valid from"))
    valid_until = models.DateTimeField(verbose_name=_("valid until"))
    order_id = models.CharField(max_length=64, blank=True, verbose_name=_("order id"))
    used_at = models.DateTimeField(null=True, blank=True, verbose_name=_("used at"))
    created_at = models.DateTimeField(verbose_name=_("created at"))

    class Meta:
        verbose_name = _("coupon")
        verbose_name_plural = _("coupons")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(valid_until__gt=F("valid_from")), name="coupon_validity_ordered"),
            models.CheckConstraint(
                condition=Q(status="used", used_at__isnull=False) & ~Q(order_id="")
                | (~Q(status="used") & Q(order_id="")),
                name="coupon_used_has_order",
            ),
        ]
        indexes = [
            models.Index(fields=["user_id", "status", "valid_until"]),
            models.Index(fields=["status", "valid_until"]),
        ]

    def __str__(self) -> str:
        return self.code


class RedeemCode(models.Model):
    """An offline code for one pack (printed, sent by SMS...). Generating codes
    takes their packs from the pack's stock; a user redeems a code once."""

    code = models.CharField(max_length=32, unique=True, verbose_name=_("code"))
    pack = models.ForeignKey(CouponPack, on_delete=models.PROTECT, related_name="redeem_codes", verbose_name=_("pack"))
    batch = models.CharField(max_length=64, blank=True, verbose_name=_("batch"))
    expires_at = models.DateTimeField(null=True, blank=True, verbose_name=_("expires at"))
    redeemed_by = models.CharField(max_length=64, blank=True, verbose_name=_("redeemed by"))
    redeemed_at = models.DateTimeField(null=True, blank=True, verbose_name=_("redeemed at"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("redeem code")
        verbose_name_plural = _("redeem codes")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(redeemed_at__isnull=True, redeemed_by="")
                | (Q(redeemed_at__isnull=False) & ~Q(redeemed_by="")),
                name="redeem_code_redeemed_consistent",
            ),
        ]
        indexes = [models.Index(fields=["pack", "batch"])]

    def __str__(self) -> str:
        return self.code
