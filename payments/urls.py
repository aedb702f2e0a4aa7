from django.urls import path

from payments import views
from payments.sandbox import views as sandbox

urlpatterns = [
    path("api/v1/components/<int:component_id>/orders", views.OrderCreateView.as_view(), name="payments-order-create"),
    path("api/v1/me/orders", views.MyOrderListView.as_view(), name="payments-my-orders"),
    path("api/v1/me/orders/<str:order_no>", views.MyOrderView.as_view(), name="payments-my-order"),
    path("api/v1/me/entitlements", views.MyEntitlementListView.as_view(), name="payments-my-entitlements"),
    # The sandbox payment service (contracts §4): PAYMENT_SERVICE_URL defaults here.
    path("sandbox/pay/v1/paycodes", sandbox.paycode_create, name="sandbox-paycode-create"),
    path("sandbox/pay/v1/paycodes/<str:paycode>/close", sandbox.paycode_close, name="sandbox-paycode-close"),
    path("sandbox/pay/v1/paycodes/<str:paycode>", sandbox.paycode_query, name="sandbox-paycode-query"),
    path("sandbox/pay/cashier/<str:paycode>", sandbox.cashier, name="sandbox-cashier"),
]
