"""Thin HTTP doors of the paid-sale API (contracts §6)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import IDEMPOTENCY_KEY, REPLAYED_HEADER, idempotent_response
from core.errors import NotFound
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
        reserved = idempotent_response(
            request,
            scope="payments.order",
            fingerprint=f"component:{component_id}",
            compute=lambda: Response(
                {
                    "order_no": services.order_reserve(
                        product=product, user_id=user_id, idempotency_key=request.idempotency_key
                    ).order_no
                },
                status=status.HTTP_201_CREATED,
            ),
        )
        if reserved.status_code != status.HTTP_201_CREATED:
            return reserved  # the refusal, as first answered
        order = services.order_checkout(order_no=reserved.data["order_no"])
        response = Response(OrderSerializer(order).data, status=status.HTTP_201_CREATED)
        if reserved.has_header(REPLAYED_HEADER):
            response[REPLAYED_HEADER] = "true"
        return response


class MyOrderView(APIView):
    permission_classes = [IsEndUser]

    @extend_schema(operation_id="me_order_get", responses={200: OrderSerializer, 401: ERROR, 404: ERROR})
    def get(self, request, order_no: str):
        order = selectors.order_for_user(user_id=request.user.id, order_no=order_no[:32])
        if order is None:
            raise NotFound(_("No such order."), code="order_not_found")
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
