"""API output of paid sales: each serializer renders the response and documents it
(contracts §6 shapes)."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from payments.models import Entitlement, EntitlementKind, Order, OrderState
from payments.selectors import product_of_component


class LocalDateTimeField(serializers.DateTimeField):
    """ISO 8601 in the project's time zone (Asia/Shanghai, +08:00), as the API answers times."""

    def to_representation(self, value):
        return timezone.localtime(value).isoformat() if value else None


class BlankAsNullCharField(serializers.CharField):
    """An empty column is answered as null."""

    def to_representation(self, value):
        return str(value) if value else None


class BlankAsNullURLField(serializers.URLField):
    def to_representation(self, value):
        return str(value) if value else None


class EntitlementSerializer(serializers.Serializer):
    """An entitlement; `active` is judged at context["now"] (default: now)."""

    kind = serializers.ChoiceField(choices=EntitlementKind.choices)
    product = serializers.CharField(source="product.name")
    quantity = serializers.IntegerField()
    granted_at = LocalDateTimeField()
    valid_from = LocalDateTimeField()
    valid_until = LocalDateTimeField(allow_null=True)
    active = serializers.SerializerMethodField()
    order_no = serializers.CharField(source="order.order_no")

    @extend_schema_field(serializers.BooleanField())
    def get_active(self, entitlement: Entitlement) -> bool:
        now = self.context.get("now") or timezone.now()
        return entitlement.valid_until is None or entitlement.valid_until > now


class OrderProductSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class OrderSerializer(serializers.Serializer):
    """Contracts §6 order shape. Read with selectors' order queries (one query per page)."""

    order_no = serializers.CharField()
    status = serializers.ChoiceField(source="state", choices=OrderState.choices)
    amount_fen = serializers.IntegerField()
    product = OrderProductSerializer()
    paycode = BlankAsNullCharField(allow_null=True)
    cashier_url = BlankAsNullURLField(allow_null=True)
    expires_at = LocalDateTimeField()
    paid_at = serializers.SerializerMethodField()
    closed_at = LocalDateTimeField(allow_null=True)
    close_cause = BlankAsNullCharField(allow_null=True)
    refund_required = serializers.BooleanField()
    created_at = LocalDateTimeField()
    entitlement = serializers.SerializerMethodField()

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_paid_at(self, order: Order) -> str | None:
        """Only a paid order shows when it was paid."""
        return (
            timezone.localtime(order.paid_at).isoformat() if order.paid_at and order.state == OrderState.PAID else None
        )

    @extend_schema_field(EntitlementSerializer(allow_null=True))
    def get_entitlement(self, order: Order) -> dict | None:
        try:
            entitlement = order.entitlement  # OneToOne: at most one, ever
        except Entitlement.DoesNotExist:
            return None
        if entitlement.revoked_at is not None:
            return None
        return EntitlementSerializer(entitlement, context=self.context).data


class PaidSalePublicSerializer(serializers.Serializer):
    """Component -> public dict (frozen in the published snapshot). Live figures
    (remaining stock, the user's state) come from live_state."""

    def to_representation(self, instance) -> dict:
        product = product_of_component(instance.pk)
        out = dict(instance.config)
        out["product"] = (
            {
                "name": product.name,
                "description": product.description,
                "price_fen": product.price_fen,
                "stock": product.stock,
                "per_user_limit": product.per_user_limit,
                "sale_starts_at": timezone.localtime(product.sale_starts_at).isoformat()
                if product.sale_starts_at
                else None,
                "sale_ends_at": timezone.localtime(product.sale_ends_at).isoformat() if product.sale_ends_at else None,
                "entitlement_kind": product.entitlement_kind,
                "entitlement_days": product.entitlement_days,
                "entitlement_quantity": product.entitlement_quantity,
            }
            if product
            else None
        )
        return out
