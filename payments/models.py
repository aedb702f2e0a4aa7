"""Paid sales: products, orders and their timeline, payment results, entitlements,
reconciliation reports. The sandbox payment service's tables are in
`payments/sandbox/models.py` (same app label, own `payments_sandbox_*` tables)."""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q

from payments.sandbox.models import SandboxPaycode  # noqa: F401  (registers the sandbox's table)


class EntitlementKind(models.TextChoices):
    MEMBERSHIP = "membership", "Membership (days)"
    CREDITS = "credits", "Service credits (quantity)"


class Product(models.Model):
    """What a `paid_sale` component sells. `held` counts the orders holding stock
    (pending or paid); the database refuses more than `stock`."""

    component = models.OneToOneField("components.Component", on_delete=models.PROTECT, related_name="paid_sale_product")
    name = models.CharField(max_length=120)
    description = models.CharField(max_length=500, blank=True)
    price_fen = models.PositiveIntegerField(help_text="Price in fen (1 yuan = 100 fen).")
    stock = models.PositiveIntegerField(help_text="How many can be sold in total.")
    held = models.PositiveIntegerField(default=0, editable=False, help_text="Orders holding stock (pending or paid).")
    per_user_limit = models.PositiveIntegerField(default=1)
    sale_starts_at = models.DateTimeField(null=True, blank=True)
    sale_ends_at = models.DateTimeField(null=True, blank=True)
    entitlement_kind = models.CharField(max_length=16, choices=EntitlementKind.choices)
    entitlement_days = models.PositiveIntegerField(
        null=True, blank=True, help_text="Membership: how many days one purchase adds."
    )
    entitlement_quantity = models.PositiveIntegerField(default=1, help_text="Credits: how many one purchase grants.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(held__lte=F("stock")), name="product_held_within_stock"),
            models.CheckConstraint(condition=Q(price_fen__gt=0), name="product_price_positive"),
            models.CheckConstraint(condition=Q(per_user_limit__gte=1), name="product_per_user_limit_positive"),
            models.CheckConstraint(
                condition=Q(sale_starts_at__isnull=True)
                | Q(sale_ends_at__isnull=True)
                | Q(sale_ends_at__gt=F("sale_starts_at")),
                name="product_sale_ends_after_start",
            ),
            models.CheckConstraint(
                condition=~Q(entitlement_kind="membership") | Q(entitlement_days__gte=1),
                name="product_membership_has_days",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def remaining(self) -> int:
        return max(self.stock - self.held, 0)


class ProductBuyer(models.Model):
    """One user's holdings of one product: the per-user limit is enforced by a
    conditional update of `held` on this row."""

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="buyers")
    user_id = models.CharField(max_length=64)
    held = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["product", "user_id"], name="uniq_product_buyer"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} holds {self.held} of {self.product_id}"


class OrderState(models.TextChoices):
    PENDING = "pending", "Pending payment"
    PAID = "paid", "Paid"
    CLOSED = "closed", "Closed"
    REFUNDED = "refunded", "Refunded"


class Order(models.Model):
    order_no = models.CharField(max_length=32, unique=True)
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="orders")
    user_id = models.CharField(max_length=64, db_index=True)
    idempotency_key = models.CharField(max_length=128)
    amount_fen = models.PositiveIntegerField()
    state = models.CharField(max_length=16, choices=OrderState.choices, default=OrderState.PENDING, db_index=True)
    holds_stock = models.BooleanField(default=True)
    paycode = models.CharField(max_length=64, blank=True, db_index=True)
    cashier_url = models.URLField(max_length=500, blank=True)
    expires_at = models.DateTimeField(db_index=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    paid_amount_fen = models.PositiveIntegerField(null=True, blank=True)
    channel = models.CharField(max_length=16, blank=True)
    transaction_id = models.CharField(max_length=128, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    close_cause = models.CharField(max_length=32, blank=True)
    refunded_at = models.DateTimeField(null=True, blank=True)
    refund_required = models.BooleanField(
        default=False, db_index=True, help_text="Money was taken but the order could not be fulfilled: refund it."
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["user_id", "idempotency_key"], name="uniq_order_idempotency_key"),
            models.CheckConstraint(condition=Q(amount_fen__gt=0), name="order_amount_positive"),
            models.CheckConstraint(condition=~Q(state="paid") | Q(holds_stock=True), name="order_paid_holds_stock"),
            models.CheckConstraint(
                condition=~Q(state__in=["closed", "refunded"]) | Q(holds_stock=False),
                name="order_closed_releases_stock",
            ),
        ]

    def __str__(self) -> str:
        return self.order_no


class OrderEvent(models.Model):
    """The timeline of an order: every state move (or flag) with its cause."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="events")
    from_state = models.CharField(max_length=16, blank=True)
    to_state = models.CharField(max_length=16)
    cause = models.CharField(max_length=40)
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.order_id}: {self.from_state or '-'} -> {self.to_state} ({self.cause})"


class ResultOutcome(models.TextChoices):
    APPLIED = "applied", "Applied"
    NO_CHANGE = "no_change", "No change (duplicate or stale)"
    REFUND_FLAGGED = "refund_flagged", "Paid after close, flagged for refund"
    REFUSED = "refused", "Refused"


class PaymentResult(models.Model):
    """Every payment result we received (the `payment.result` event, or a query
    answer applied by the expiry job or reconciliation), with what we did."""

    source = models.CharField(max_length=16, default="event")  # event | query
    event_id = models.CharField(max_length=64, blank=True, db_index=True)
    order = models.ForeignKey(Order, null=True, blank=True, on_delete=models.SET_NULL, related_name="payment_results")
    merchant_order_no = models.CharField(max_length=64, db_index=True)
    paycode = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=16)
    amount_fen = models.BigIntegerField(null=True)
    channel = models.CharField(max_length=16, blank=True)
    transaction_id = models.CharField(max_length=128, blank=True)
    occurred_at = models.CharField(max_length=40, blank=True)
    outcome = models.CharField(max_length=16, choices=ResultOutcome.choices)
    reason = models.CharField(max_length=255, blank=True)
    flagged = models.BooleanField(default=False, db_index=True)
    payload = models.JSONField(default=dict)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-received_at", "-id"]

    def __str__(self) -> str:
        return f"{self.merchant_order_no} {self.status} ({self.outcome})"


class Entitlement(models.Model):
    """What a user holds because of a paid order (用户权益). One per order, ever."""

    order = models.OneToOneField(Order, on_delete=models.PROTECT, related_name="entitlement")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="entitlements")
    user_id = models.CharField(max_length=64, db_index=True)
    kind = models.CharField(max_length=16, choices=EntitlementKind.choices)
    quantity = models.PositiveIntegerField(default=1)
    granted_at = models.DateTimeField()
    valid_from = models.DateTimeField()
    valid_until = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-granted_at", "-id"]

    def __str__(self) -> str:
        return f"{self.user_id}: {self.kind} ({self.order_id})"


class ReconciliationReport(models.Model):
    """One daily reconciliation (对账) run against the payment service."""

    day = models.DateField(db_index=True)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    orders_checked = models.PositiveIntegerField(default=0)
    differences = models.PositiveIntegerField(default=0)
    repaired = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-day", "-started_at"]

    def __str__(self) -> str:
        return f"对账 {self.day}"


class DifferenceKind(models.TextChoices):
    PAID_UNKNOWN = "paid_unknown", "Service says PAID, we did not know"
    PAID_NOT_PAID = "paid_not_paid", "We say paid, service says not paid"
    REFUNDED_UNKNOWN = "refunded_unknown", "Service says REFUNDED, we say paid"
    AMOUNT_MISMATCH = "amount_mismatch", "Amounts differ"
    CLOSED_STILL_PENDING = "closed_still_pending", "We closed it, service still PENDING"
    QUERY_FAILED = "query_failed", "Could not query the service"


class ReconciliationItem(models.Model):
    report = models.ForeignKey(ReconciliationReport, on_delete=models.CASCADE, related_name="items")
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=24, choices=DifferenceKind.choices)
    our_state = models.CharField(max_length=16)
    service_status = models.CharField(max_length=16, blank=True)
    repaired = models.BooleanField(default=False)
    detail = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.kind}: {self.order_id}"
