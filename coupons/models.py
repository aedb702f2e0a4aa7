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


class CouponKind(models.TextChoices):
    FIXED = "fixed", "Fixed amount off (立减)"
    PERCENT = "percent", "Percentage off (折扣)"
    THRESHOLD = "threshold", "Amount off above a threshold (满减)"


class ValidityKind(models.TextChoices):
    ABSOLUTE = "absolute", "Absolute dates (from, to)"
    RELATIVE = "relative", "N days from the claim"


class CouponTemplate(models.Model):
    """What a coupon is worth and how long it lasts. `value` is fen off for
    fixed and threshold coupons and the percentage off (1-99) for percent coupons;
    `min_spend_fen` is the order amount the coupon needs (the threshold of 满减)."""

    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=16, choices=CouponKind.choices)
    value = models.PositiveIntegerField(help_text="Fen off (fixed, threshold) or percent off 1-99 (percent).")
    min_spend_fen = models.PositiveIntegerField(default=0, help_text="Minimum order amount in fen (0: none).")
    max_discount_fen = models.PositiveIntegerField(
        null=True, blank=True, help_text="Percent coupons: cap on the amount off, in fen (empty: no cap)."
    )
    validity_kind = models.CharField(max_length=16, choices=ValidityKind.choices, default=ValidityKind.RELATIVE)
    valid_from = models.DateTimeField(null=True, blank=True)
    valid_until = models.DateTimeField(null=True, blank=True)
    valid_days = models.PositiveIntegerField(null=True, blank=True, help_text="Relative validity: days after claim.")
    usage_notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
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
        help_text="The coupon_pack component of an activity page that shows this pack.",
    )
    name = models.CharField(max_length=100)
    description = models.CharField(max_length=300, blank=True)
    total_stock = models.PositiveIntegerField(help_text="How many packs can be claimed in total.")
    remaining = models.PositiveIntegerField(help_text="Packs left to claim (maintained by the platform).")
    per_user_limit = models.PositiveSmallIntegerField(default=1, help_text="Claims per user.")
    claim_starts_at = models.DateTimeField(null=True, blank=True)
    claim_ends_at = models.DateTimeField(null=True, blank=True)
    enabled = models.BooleanField(default=True, help_text="Untick to stop claims at once.")
    redis_gate = models.BooleanField(
        default=False,
        help_text="Hot pack: a Redis counter refuses claims once sold out before they reach the database.",
    )
    stock_shards = models.PositiveSmallIntegerField(
        default=1,
        help_text="Hot pack: spread the stock over this many counter rows so concurrent claims do not all "
        "wait for one row lock (1: one counter, the pack's own).",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
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

    pack = models.ForeignKey(CouponPack, on_delete=models.CASCADE, related_name="stock_shards_rows")
    slot = models.PositiveSmallIntegerField()
    remaining = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["pack", "slot"], name="coupon_stock_shard_unique_slot"),
            models.CheckConstraint(condition=Q(remaining__gte=0), name="coupon_stock_shard_remaining_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.pack_id}/{self.slot}: {self.remaining}"


class CouponPackItem(models.Model):
    pack = models.ForeignKey(CouponPack, on_delete=models.CASCADE, related_name="items")
    template = models.ForeignKey(CouponTemplate, on_delete=models.PROTECT, related_name="pack_items")
    quantity = models.PositiveSmallIntegerField(default=1)

    class Meta:
        ordering = ["pack_id", "id"]
        constraints = [
            models.UniqueConstraint(fields=["pack", "template"], name="uniq_coupon_pack_item"),
            models.CheckConstraint(condition=Q(quantity__gte=1), name="coupon_pack_item_quantity_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.template}"


class ClaimSource(models.TextChoices):
    PAGE = "page", "Activity page"
    CODE = "code", "Offline code"


class Claim(models.Model):
    """One pack issued to one user. Page claims are numbered 1..per_user_limit
    per (pack, user); the unique constraint is what makes the limit hold under
    concurrency. Code claims carry no sequence (they do not count against the
    limit) and point at the offline code they consumed."""

    pack = models.ForeignKey(CouponPack, on_delete=models.PROTECT, related_name="claims")
    user_id = models.CharField(max_length=64)
    sequence = models.PositiveSmallIntegerField(null=True, blank=True)
    source = models.CharField(max_length=8, choices=ClaimSource.choices, default=ClaimSource.PAGE)
    redeem_code = models.OneToOneField(
        "RedeemCode", null=True, blank=True, on_delete=models.PROTECT, related_name="claim"
    )
    claimed_at = models.DateTimeField()

    class Meta:
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
    UNUSED = "unused", "Unused"
    USED = "used", "Used"
    EXPIRED = "expired", "Expired"


class Coupon(models.Model):
    """One coupon in a user's wallet. Validity is computed at claim time; the
    code is random (secrets) and unique."""

    code = models.CharField(max_length=32, unique=True)
    template = models.ForeignKey(CouponTemplate, on_delete=models.PROTECT, related_name="coupons")
    claim = models.ForeignKey(Claim, on_delete=models.PROTECT, related_name="coupons")
    user_id = models.CharField(max_length=64)
    status = models.CharField(max_length=8, choices=CouponStatus.choices, default=CouponStatus.UNUSED)
    valid_from = models.DateTimeField()
    valid_until = models.DateTimeField()
    order_id = models.CharField(max_length=64, blank=True)
    used_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
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

    code = models.CharField(max_length=32, unique=True)
    pack = models.ForeignKey(CouponPack, on_delete=models.PROTECT, related_name="redeem_codes")
    batch = models.CharField(max_length=64, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    redeemed_by = models.CharField(max_length=64, blank=True)
    redeemed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
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
