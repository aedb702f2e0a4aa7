from django.urls import path

from attribution import views
from attribution.sandbox import views as sandbox

urlpatterns = [
    path("t/<str:platform>/<str:link_token>", views.click, name="attribution-click"),
    # The sandbox ad platform (outside production the postback URLs default here).
    path("sandbox/ads/<str:platform>/", sandbox.postback, name="sandbox-ads-postback"),
    path("sandbox/ads/<str:platform>/<path:rest>", sandbox.postback, name="sandbox-ads-postback-path"),
]
