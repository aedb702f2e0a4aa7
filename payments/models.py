"""Paid sales: products, orders and their timeline, payment results, entitlements,
reconciliation reports. The sandbox payment service's tables are in
`payments/sandbox/models.py` (same app label, own `payments_sandbox_*` tables)."""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from payments.sandbox.models import SandboxPaycode  # noqa: F401  (registers the sandbox's table)


class EntitlementKind(models.TextChoices):
    MEMBERSHIP = "membership", _("Membership (days)")
    CREDITS = "credits", _("Service credits (quantity)")


class Product(models.Model):
    """What a `paid_sale` component sells. `held` counts the orders holding stock
    (pending or paid); the database refuses more than `stock`."""

    component = models.OneToOneField(
        "components.Component", on_delete=models.PROTECT, related_name="paid_sale_product", verbose_name=_("component")
    )
    name = models.CharField(max_length=120, verbose_name=_("name"))
    description = models.CharField(max_length=500, blank=True, verbose_name=_("description"))
    price_fen = models.PositiveIntegerField(
        help_text=_("Price in fen (1 yuan = 100 fen)."), verbose_name=_("price fen")
    )
    stock = models.PositiveIntegerField(help_text=_("How many can be sold in total."), verbose_name=_("stock"))
    held = models.PositiveIntegerField(
        default=0, editable=False, help_text=_("Orders holding stock (pending or paid)."), verbose_name=_("held")
    )
    per_user_limit = models.PositiveIntegerField(default=1, verbose_name=_("per user limit"))
    sale_starts_at = models.DateTimeField(null=True, blank=True, verbose_name=_("sale starts at"))
    sale_ends_at = models.DateTimeField(null=True, blank=True, verbose_name=_("sale ends at"))
    entitlement_kind = models.CharField(
        max_length=16, choices=EntitlementKind.choices, verbose_name=_("entitlement kind")
    )
    entitlement_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text=_("Membership: how many days one purchase adds."),
        verbose_name=_("entitlement days"),
    )
    entitlement_quantity = models.PositiveIntegerField(
        default=1, help_text=_("Credits: how many one purchase grants."), verbose_name=_("entitlement quantity")
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("product")
        verbose_name_plural = _("products")
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

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="buyers", verbose_name=_("product"))
    user_id = models.CharField(max_length=64, verbose_name=_("user id"))
    held = models.PositiveIntegerField(default=0, verbose_name=_("held"))

    class Meta:
        verbose_name = _("product buyer")
        verbose_name_plural = _("product buyers")
        constraints = [
            models.UniqueConstraint(fields=["product", "user_id"], name="uniq_product_buyer"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} holds {self.held} of {self.product_id}"


class OrderState(models.TextChoices):
    PENDING = "pending", _("Pending payment")
    PAID = "paid", _("Paid")
    CLOSED = "closed", _("Closed")
    REFUNDED = "refunded", _("Refunded")


class CloseCause(models.TextChoices):
    """Why an order was closed (`order_close`'s `cause`, kept on the order)."""

    EXPIRED = "expired", _("Not paid in time")
    PAYMENT_FAILED = "payment_failed", _("Payment failed")
    PAYMENT_CLOSED = "payment_closed", _("Closed by the payment service")
    PAYMENT_UNAVAILABLE = "payment_unavailable", _("Payment service unavailable")
    RECONCILED_NOT_PAID = "reconciled_not_paid", _("Not paid, found by reconciliation")


class Order(models.Model):
    order_no = models.CharField(max_length=32, unique=True, verbose_name=_("order no"))
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="orders", verbose_name=_("product"))
    user_id = models.CharField(max_length=64, db_index=True, verbose_name=_("user id"))
    idempotency_key = models.CharField(max_length=128, verbose_name=_("idempotency key"))
    amount_fen = models.PositiveIntegerField(verbose_name=_("amount fen"))
    state = models.CharField(
        max_length=16, choices=OrderState.choices, default=OrderState.PENDING, db_index=True, verbose_name=_("state")
    )
    holds_stock = models.BooleanField(default=True, verbose_name=_("holds stock"))
    paycode = models.CharField(max_length=64, blank=True, db_index=True, verbose_name=_("paycode"))
    cashier_url = models.URLField(max_length=500, blank=True, verbose_name=_("cashier url"))
    expires_at = models.DateTimeField(db_index=True, verbose_name=_("expires at"))
    paid_at = models.DateTimeField(null=True, blank=True, verbose_name=_("paid at"))
    paid_amount_fen = models.PositiveIntegerField(null=True, blank=True, verbose_name=_("paid amount fen"))
    channel = models.CharField(max_length=16, blank=True, verbose_name=_("channel"))
    transaction_id = models.CharField(max_length=128, blank=True, verbose_name=_("transaction id"))
    closed_at = models.DateTimeField(null=True, blank=True, verbose_name=_("closed at"))
    close_cause = models.CharField(max_length=32, blank=True, choices=CloseCause.choices, verbose_name=_("close cause"))
    refunded_at = models.DateTimeField(null=True, blank=True, verbose_name=_("refunded at"))
    refund_required = models.BooleanField(
        default=False,
        db_index=True,
        help_text=_("Money was taken but the order could not be fulfilled: refund it."),
        verbose_name=_("refund required"),
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("order")
        verbose_name_plural = _("orders")
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

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="events", verbose_name=_("order"))
    from_state = models.CharField(max_length=16, blank=True, choices=OrderState.choices, verbose_name=_("from state"))
    to_state = models.CharField(max_length=16, choices=OrderState.choices, verbose_name=_("to state"))
    cause = models.CharField(max_length=40, verbose_name=_("cause"))
    detail = models.JSONField(default=dict, blank=True, verbose_name=_("detail"))
    created_at = models.DateTimeField(auto_now_add=True, db_index=True, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("order event")
        verbose_name_plural = _("order events")
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.order_id}: {self.from_state or '-'} -> {self.to_state} ({self.cause})"


class ServiceStatus(models.TextChoices):
    """A paycode's status in the payment service's words (contracts §4)."""

    PENDING = "PENDING", _("Pending payment")
    PAID = "PAID", _("Paid")
    FAILED = "FAILED", _("Failed")
    CLOSED = "CLOSED", _("Closed")
    REFUNDED = "REFUNDED", _("Refunded")


class ResultOutcome(models.TextChoices):
    APPLIED = "applied", _("Applied")
    NO_CHANGE = "no_change", _("No change (duplicate or stale)")
    REFUND_FLAGGED = "refund_flagged", _("Paid after close, flagged for refund")
    REFUSED = "refused", _("Refused")


class ResultSource(models.TextChoices):
    EVENT = "event", _("Payment event")
    QUERY = "query", _("Query (expiry or reconciliation)")


class PaymentResult(models.Model):
    """Every payment result we received (the `payment.result` event, or a query
    answer applied by the expiry job or reconciliation), with what we did."""

    source = models.CharField(
        max_length=16, choices=ResultSource.choices, default=ResultSource.EVENT, verbose_name=_("source")
    )
    event_id = models.CharField(max_length=64, blank=True, db_index=True, verbose_name=_("event id"))
    order = models.ForeignKey(
        Order, null=True, blank=True, on_delete=models.SET_NULL, related_name="payment_results", verbose_name=_("order")
    )
    merchant_order_no = models.CharField(max_length=64, db_index=True, verbose_name=_("merchant order no"))
    paycode = models.CharField(max_length=64, blank=True, verbose_name=_("paycode"))
    status = models.CharField(max_length=16, choices=ServiceStatus.choices, verbose_name=_("status"))
    amount_fen = models.BigIntegerField(null=True, verbose_name=_("amount fen"))
    channel = models.CharField(max_length=16, blank=True, verbose_name=_("channel"))
    transaction_id = models.CharField(max_length=128, blank=True, verbose_name=_("transaction id"))
    occurred_at = models.CharField(max_length=40, blank=True, verbose_name=_("occurred at"))
    outcome = models.CharField(max_length=16, choices=ResultOutcome.choices, verbose_name=_("outcome"))
    reason = models.CharField(max_length=255, blank=True, verbose_name=_("reason"))
    flagged = models.BooleanField(default=False, db_index=True, verbose_name=_("flagged"))
    payload = models.JSONField(default=dict, verbose_name=_("payload"))
    received_at = models.DateTimeField(auto_now_add=True, db_index=True, verbose_name=_("received at"))

    class Meta:
        verbose_name = _("payment result")
        verbose_name_plural = _("payment results")
        ordering = ["-received_at", "-id"]

    def __str__(self) -> str:
        return f"{self.merchant_order_no} {self.status} ({self.outcome})"


class Entitlement(models.Model):
    """What a user holds because of a paid order (用户权益). One per order, ever."""

    order = models.OneToOneField(Order, on_delete=models.PROTECT, related_name="entitlement", verbose_name=_("order"))
    product = models.ForeignKey(
        Product, on_delete=models.PROTECT, related_name="entitlements", verbose_name=_("product")
    )
    user_id = models.CharField(max_length=64, db_index=True, verbose_name=_("user id"))
    kind = models.CharField(max_length=16, choices=EntitlementKind.choices, verbose_name=_("kind"))
    quantity = models.PositiveIntegerField(default=1, verbose_name=_("quantity"))
    granted_at = models.DateTimeField(verbose_name=_("granted at"))
    valid_from = models.DateTimeField(verbose_name=_("valid from"))
    valid_until = models.DateTimeField(null=True, blank=True, verbose_name=_("valid until"))
    revoked_at = models.DateTimeField(null=True, blank=True, verbose_name=_("revoked at"))

    class Meta:
        verbose_name = _("entitlement")
        verbose_name_plural = _("entitlements")
        ordering = ["-granted_at", "-id"]

    def __str__(self) -> str:
        return f"{self.user_id}: {self.kind} ({self.order_id})"


class ReconciliationReport(models.Model):
    """One daily reconciliation (对账) run against the payment service."""

    day = models.DateField(db_index=True, verbose_name=_("day"))
    started_at = models.DateTimeField(auto_now_add=True, verbose_name=_("started at"))
    finished_at = models.DateTimeField(null=True, blank=True, verbose_name=_("finished at"))
    orders_checked = models.PositiveIntegerField(default=0, verbose_name=_("orders checked"))
    differences = models.PositiveIntegerField(default=0, verbose_name=_("differences"))
    repaired = models.PositiveIntegerField(default=0, verbose_name=_("repaired"))
    errors = models.PositiveIntegerField(default=0, verbose_name=_("errors"))

    class Meta:
        verbose_name = _("reconciliation report")
        verbose_name_plural = _("reconciliation reports")
        ordering = ["-day", "-started_at"]

    def __str__(self) -> str:
        return f"对账 {self.day}"


class DifferenceKind(models.TextChoices):
    PAID_UNKNOWN = "paid_unknown", _("Service says PAID, we did not know")
    PAID_NOT_PAID = "paid_not_paid", _("We say paid, service says not paid")
    REFUNDED_UNKNOWN = "refunded_unknown", _("Service says REFUNDED, we say paid")
    AMOUNT_MISMATCH = "amount_mismatch", _("Amounts differ")
    CLOSED_STILL_PENDING = "closed_still_pending", _("We closed it, service still PENDING")
    QUERY_FAILED = "query_failed", _("Could not query the service")


class ReconciliationItem(models.Model):
    report = models.ForeignKey(
        ReconciliationReport, on_delete=models.CASCADE, related_name="items", verbose_name=_("report")
    )
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="+", verbose_name=_("order"))
    kind = models.CharField(max_length=24, choices=DifferenceKind.choices, verbose_name=_("kind"))
    our_state = models.CharField(max_length=16, choices=OrderState.choices, verbose_name=_("our state"))
    service_status = models.CharField(
        max_length=16, blank=True, choices=ServiceStatus.choices, verbose_name=_("service status")
    )
    repaired = models.BooleanField(default=False, verbose_name=_("repaired"))
    detail = models.CharField(max_length=255, blank=True, verbose_name=_("detail"))

    class Meta:
        verbose_name = _("reconciliation item")
        verbose_name_plural = _("reconciliation items")
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.kind}: {self.order_id}"
