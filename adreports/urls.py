from django.urls import path

from adreports import views
from adreports.sandbox import views as sandbox

urlpatterns = [
    path("adreports/oauth/<int:pk>/start", views.oauth_start, name="adreports-oauth-start"),
    path("adreports/oauth/<str:platform>/callback", views.oauth_callback, name="adreports-oauth-callback"),
    # The sandbox reporting APIs (contracts §10): AD_API_*_URL default here outside production.
    path("sandbox/adapi/<str:platform>/<path:path>", sandbox.sandbox_api, name="adreports-sandbox"),
]
