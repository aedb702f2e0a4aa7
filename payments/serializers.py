from __future__ import annotations

from django.utils import timezone
from rest_framework import serializers

from payments.selectors import product_of_component


class OrderSerializer(serializers.Serializer):
    """Contracts §6 order shape (documentation of the dict from selectors.order_public)."""

    order_no = serializers.CharField()
    status = serializers.ChoiceField(choices=["pending", "paid", "closed", "refunded"])
    amount_fen = serializers.IntegerField()
    product = serializers.DictField()
    paycode = serializers.CharField(allow_null=True)
    cashier_url = serializers.URLField(allow_null=True)
    expires_at = serializers.DateTimeField()
    paid_at = serializers.DateTimeField(allow_null=True)
    closed_at = serializers.DateTimeField(allow_null=True)
    close_cause = serializers.CharField(allow_null=True)
    refund_required = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    entitlement = serializers.DictField(allow_null=True)


class EntitlementSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["membership", "credits"])
    product = serializers.CharField()
    quantity = serializers.IntegerField()
    granted_at = serializers.DateTimeField()
    valid_from = serializers.DateTimeField()
    valid_until = serializers.DateTimeField(allow_null=True)
    active = serializers.BooleanField()
    order_no = serializers.CharField()


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
