"""Thin doors of the coupon API: parse, call a service, answer."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core import metrics
from core.api import IDEMPOTENCY_KEY, idempotent, idempotent_response
from core.db import db_retry
from core.errors import ApiError
from core.idempotency import idempotent_call_once
from core.permissions import HasServiceToken, IsEndUser
from coupons import services
from coupons.selectors import WALLET_STATUSES, wallet_coupons
from coupons.serializers import (
    ClaimSerializer,
    CouponSerializer,
    RedeemCodeInputSerializer,
    ServiceRedeemInputSerializer,
    ServiceRedeemOutputSerializer,
    ServiceReleaseInputSerializer,
)

SERVICE_AUTH = OpenApiParameter(
    "Authorization",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=True,
    description="`Service <SERVICE_TOKEN>`: the token shared with the order system.",
)
ERROR = OpenApiResponse(description='`{"error": {"code", "message"}}`')


T = TypeVar("T")


class ClaimView(APIView):
    permission_classes = [IsEndUser]

    @extend_schema(
        operation_id="coupon_pack_claim",
        summary="Claim the coupon pack of a coupon_pack component",
        parameters=[IDEMPOTENCY_KEY],
        request=None,
        responses={
            201: ClaimSerializer,
            400: OpenApiResponse(description="idempotency_key_required, idempotency_key_invalid"),
            401: ERROR,
            404: OpenApiResponse(description="component_not_found, not_a_coupon_pack"),
            409: OpenApiResponse(
                description=(
                    "sold_out, limit_reached, pack_disabled, not_started, ended, activity_not_online, pack_empty"
                )
            ),
            422: OpenApiResponse(description="idempotency_key_reused: the key was used for another component"),
        },
        tags=["coupons"],
    )
    @idempotent(
        scope="coupons.claim",
        fingerprint=lambda request, component_id: f"component:{component_id}",
        # A claim writes only rows of its own transaction: its answer is stored once, at the end.
        call=idempotent_call_once,
        # Its lock-free refusals (sold out…) before the transaction: one read and the answer.
        check=lambda request, component_id: _counted(
            lambda: services.coupon_pack_claim_check(component_id=component_id, user_id=str(request.user.id)),
            success=None,
        ),
    )
    def post(self, request: Request, component_id: int, checked: services.ClaimRead | None = None) -> Response:
        claim = _counted(
            lambda: services.coupon_pack_claim(component_id=component_id, user_id=str(request.user.id), checked=checked)
        )
        return Response(ClaimSerializer(claim).data, status=status.HTTP_201_CREATED)


def _counted(run: Callable[[], T], *, success: str | None = "claimed") -> T:
    """A claim (or its check), counted by result (huodong_coupon_claims_total:
    claimed, sold_out, ...); a check that passes counts nothing."""
    try:
        result = run()
    except Exception as exc:
        metrics.COUPON_CLAIMS.labels(getattr(exc, "code", None) or getattr(exc, "error_code", None) or "error").inc()
        raise
    if success is not None:
        metrics.COUPON_CLAIMS.labels(success).inc()
    return result


class WalletView(generics.ListAPIView):
    permission_classes = [IsEndUser]
    serializer_class = CouponSerializer

    def get_queryset(self):
        raw = self.request.query_params.get("status") or None
        if raw is not None and raw not in WALLET_STATUSES:
            raise ApiError("invalid_status", f"status must be one of {', '.join(WALLET_STATUSES)}.")
        return wallet_coupons(user_id=self.request.user.id, status=raw)

    @extend_schema(
        operation_id="me_coupons_list",
        summary="The user's coupons",
        parameters=[
            OpenApiParameter("status", OpenApiTypes.STR, enum=list(WALLET_STATUSES), required=False),
        ],
        tags=["coupons"],
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class RedeemCodeView(APIView):
    permission_classes = [IsEndUser]

    @extend_schema(
        operation_id="me_coupons_redeem_code",
        summary="Redeem an offline code into the wallet (once per code)",
        parameters=[IDEMPOTENCY_KEY],
        request=RedeemCodeInputSerializer,
        responses={201: ClaimSerializer, 400: ERROR, 404: ERROR, 409: ERROR, 429: ERROR},
        tags=["coupons"],
    )
    def post(self, request: Request) -> Response:
        data = RedeemCodeInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        code, user_id = data.validated_data["code"], str(request.user.id)
        services.redeem_code_attempts_check(user_id=user_id)
        return idempotent_response(
            request,
            scope="coupons.redeem_code",
            fingerprint=f"code:{code}",
            compute=lambda: Response(
                ClaimSerializer(services.redeem_code_redeem(code=code, user_id=user_id)).data,
                status=status.HTTP_201_CREATED,
            ),
        )


class ServiceRedeemView(APIView):
    authentication_classes: list = []
    permission_classes = [HasServiceToken]

    @extend_schema(
        operation_id="service_coupon_redeem",
        summary="Order system: redeem a coupon for an order (idempotent per coupon and order)",
        description=(
            "Marks the coupon used by `order_id`. Repeating the call for the same order answers 200 with "
            "`changed: false`; another order gets 409 `coupon_used`. Refusals: 404 `coupon_not_found`, "
            "403 `coupon_not_owned`, 409 `coupon_expired`, `coupon_not_yet_valid`, `min_spend_not_met`."
        ),
        parameters=[SERVICE_AUTH],
        request=ServiceRedeemInputSerializer,
        responses={200: ServiceRedeemOutputSerializer, 400: ERROR, 403: ERROR, 404: ERROR, 409: ERROR},
        tags=["service"],
    )
    def post(self, request: Request) -> Response:
        data = ServiceRedeemInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        coupon, changed = db_retry(
            lambda: services.coupon_redeem(
                code=v["code"], order_id=v["order_id"], user_id=v["user_id"], order_amount_fen=v.get("order_amount_fen")
            )
        )
        amount = v.get("order_amount_fen")
        discount = (
            None
            if amount is None
            else services.coupon_discount_compute(template=coupon.template, order_amount_fen=amount)
        )
        return Response(
            ServiceRedeemOutputSerializer(
                {"coupon": coupon, "user_id": coupon.user_id, "changed": changed, "discount_fen": discount}
            ).data
        )


class ServiceReleaseView(APIView):
    authentication_classes: list = []
    permission_classes = [HasServiceToken]

    @extend_schema(
        operation_id="service_coupon_release",
        summary="Order system: give a coupon back when its order was cancelled (idempotent)",
        parameters=[SERVICE_AUTH],
        request=ServiceReleaseInputSerializer,
        responses={200: ServiceRedeemOutputSerializer, 400: ERROR, 403: ERROR, 404: ERROR, 409: ERROR},
        tags=["service"],
    )
    def post(self, request: Request) -> Response:
        data = ServiceReleaseInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        coupon, changed = db_retry(
            lambda: services.coupon_release(code=v["code"], order_id=v["order_id"], user_id=v["user_id"])
        )
        return Response(
            ServiceRedeemOutputSerializer(
                {"coupon": coupon, "user_id": coupon.user_id, "changed": changed, "discount_fen": None}
            ).data,
            status=status.HTTP_200_OK,
        )
