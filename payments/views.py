"""Thin HTTP doors of the paid-sale API (contracts §6)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from core.errors import ApiError
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
        order, _replayed = services.order_place(
            component_id=component_id,
            user_id=request.user.id,
            idempotency_key=request.headers.get("Idempotency-Key"),
        )
        return Response(selectors.order_public(order), status=status.HTTP_201_CREATED)


class MyOrderView(APIView):
    permission_classes = [IsEndUser]

    @extend_schema(operation_id="me_order_get", responses={200: OrderSerializer, 401: ERROR, 404: ERROR})
    def get(self, request, order_no: str):
        order = selectors.order_for_user(user_id=request.user.id, order_no=order_no[:32])
        if order is None:
            raise ApiError("order_not_found", "No such order.", 404)
        return Response(selectors.order_public(order))


class MyOrderListView(generics.ListAPIView):
    permission_classes = [IsEndUser]
    serializer_class = OrderSerializer

    def get_queryset(self):
        return selectors.orders_for_user(user_id=self.request.user.id)

    @extend_schema(operation_id="me_orders_list")
    def get(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response([selectors.order_public(o) for o in page])


class MyEntitlementListView(generics.ListAPIView):
    permission_classes = [IsEndUser]
    serializer_class = EntitlementSerializer

    def get_queryset(self):
        return selectors.entitlements_for_user(user_id=self.request.user.id)

    @extend_schema(operation_id="me_entitlements_list")
    def get(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response([selectors.entitlement_public(e) for e in page])
