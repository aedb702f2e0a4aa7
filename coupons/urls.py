from django.urls import path

from coupons import views

urlpatterns = [
    path("api/v1/components/<int:component_id>/claim", views.ClaimView.as_view(), name="coupon-pack-claim"),
    path("api/v1/me/coupons", views.WalletView.as_view(), name="me-coupons"),
    path("api/v1/me/coupons/redeem-code", views.RedeemCodeView.as_view(), name="me-coupons-redeem-code"),
    path("api/v1/service/coupons/redeem", views.ServiceRedeemView.as_view(), name="service-coupon-redeem"),
    path("api/v1/service/coupons/release", views.ServiceReleaseView.as_view(), name="service-coupon-release"),
]
