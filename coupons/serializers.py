"""Request parsing and response shapes of the coupon API (also the OpenAPI schema)."""

from __future__ import annotations

from rest_framework import serializers

from coupons.models import CouponKind, CouponStatus
from coupons.selectors import claim_payload, coupon_payload


class CouponSerializer(serializers.Serializer):
    """contracts §6 coupon: {code, name, kind, value, min_spend_fen, status, valid_from, valid_until, ...}."""

    code = serializers.CharField()
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=CouponKind.choices)
    value = serializers.IntegerField(help_text="Fen off (fixed, threshold) or percent off (percent).")
    min_spend_fen = serializers.IntegerField()
    max_discount_fen = serializers.IntegerField(allow_null=True)
    status = serializers.ChoiceField(choices=CouponStatus.choices)
    valid_from = serializers.DateTimeField()
    valid_until = serializers.DateTimeField()
    usage_notes = serializers.CharField()
    pack_id = serializers.IntegerField()
    order_id = serializers.CharField(allow_null=True)
    used_at = serializers.DateTimeField(allow_null=True)
    claimed_at = serializers.DateTimeField()

    def to_representation(self, instance) -> dict:
        return coupon_payload(instance)


class ClaimSerializer(serializers.Serializer):
    claim_id = serializers.IntegerField()
    pack_id = serializers.IntegerField()
    pack_name = serializers.CharField()
    # Named like DRF's Field.source attribute; the serializer metaclass moves it into _declared_fields.
    source = serializers.ChoiceField(choices=["page", "code"])  # type: ignore[assignment]
    sequence = serializers.IntegerField(allow_null=True, help_text="Nth claim of this pack by the user (page claims).")
    claimed_at = serializers.DateTimeField()
    coupons = CouponSerializer(many=True)

    def to_representation(self, instance) -> dict:
        return claim_payload(instance)  # a claim just made carries its coupons: nothing read back


class RedeemCodeInputSerializer(serializers.Serializer):
    code = serializers.CharField(max_length=64, trim_whitespace=True)


class ServiceRedeemInputSerializer(serializers.Serializer):
    code = serializers.CharField(max_length=64)
    order_id = serializers.CharField(max_length=64)
    user_id = serializers.CharField(max_length=64, help_text="The user placing the order (user-center id).")
    order_amount_fen = serializers.IntegerField(
        min_value=0, required=False, allow_null=True, help_text="When given, the minimum spend is checked."
    )


class ServiceReleaseInputSerializer(serializers.Serializer):
    code = serializers.CharField(max_length=64)
    order_id = serializers.CharField(max_length=64)
    user_id = serializers.CharField(max_length=64)


class ServiceRedeemOutputSerializer(serializers.Serializer):
    coupon = CouponSerializer()
    user_id = serializers.CharField()
    changed = serializers.BooleanField(help_text="False when this call repeated an earlier one.")
    discount_fen = serializers.IntegerField(allow_null=True, help_text="Fen off the order, when its amount was given.")
