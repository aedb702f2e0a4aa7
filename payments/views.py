"""Thin HTTP doors of the paid-sale API (contracts §6)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from core.errors import NotFound
from core.idempotency import idempotency_key_parse, idempotent_call
from core.permissions import IsEndUser
from payments import selectors, services
from payments.serializers import EntitlementSerializer, OrderSerializer

ERROR = inline_serializer(
    "PaymentsError",
    {
        "error": inline_serializer(
            "PaymentsErrorBody", {"code": serializers.CharField(), "message": serializers.CharField()}
        )
    },
)
IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key", str, OpenApiParameter.HEADER, required=True, description="A unique id per purchase attempt."
)


class OrderCreateView(APIView):
    permission_classes = [IsEndUser]

    @extend_schema(
        operation_id="paid_sale_order_create",
        request=None,
        parameters=[IDEMPOTENCY_KEY],
        responses={
            201: OrderSerializer,
            400: ERROR,
            401: ERROR,
            404: ERROR,
            409: OpenApiResponse(ERROR, description="sold_out, limit_reached, sale_not_started, sale_ended"),
            422: ERROR,
            503: OpenApiResponse(ERROR, description="payment_unavailable: nothing charged, stock released"),
        },
        summary="Place an order on a paid-sale component",
    )
    def post(self, request, component_id: int):
        """Check the sale, reserve under the Idempotency-Key (a repeat replays the
        reservation or its refusal), then get the paycode with no lock held."""
        user_id = request.user.id
        product = services.product_for_sale(component_id=component_id)
        key = idempotency_key_parse(request.headers.get("Idempotency-Key"))
        status_code, body, _replayed = idempotent_call(
            scope="payments.order",
            user_id=user_id,
            key=key,
            fingerprint=f"component:{component_id}",
            compute=lambda: (
                status.HTTP_201_CREATED,
                {"order_no": services.order_reserve(product=product, user_id=user_id, idempotency_key=key).order_no},
            ),
        )
        if "error" in body:
            return Response(body, status=status_code)  # the refusal, as first answered
        order = services.order_checkout(order_no=body["order_no"])
        return Response(OrderSerializer(order).data, status=status.HTTP_201_CREATED)


class MyOrderView(APIView):
    permission_classes = [IsEndUser]

    @extend_schema(operation_id="me_order_get", responses={200: OrderSerializer, 401: ERROR, 404: ERROR})
    def get(self, request, order_no: str):
        order = selectors.order_for_user(user_id=request.user.id, order_no=order_no[:32])
        if order is None:
            raise NotFound("No such order.", code="order_not_found")
        return Response(OrderSerializer(order).data)


class MyOrderListView(generics.ListAPIView):
    permission_classes = [IsEndUser]
    serializer_class = OrderSerializer

    def get_queryset(self):
        return selectors.orders_for_user(user_id=self.request.user.id)

    @extend_schema(operation_id="me_orders_list")
    def get(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(OrderSerializer(page, many=True).data)


class MyEntitlementListView(generics.ListAPIView):
    permission_classes = [IsEndUser]
    serializer_class = EntitlementSerializer

    def get_queryset(self):
        return selectors.entitlements_for_user(user_id=self.request.user.id)

    @extend_schema(operation_id="me_entitlements_list")
    def get(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(EntitlementSerializer(page, many=True).data)
