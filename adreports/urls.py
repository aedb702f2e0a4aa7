from django.urls import path

from adreports import views

urlpatterns = [
    path("adreports/oauth/<int:pk>/start", views.oauth_start, name="adreports-oauth-start"),
    path("adreports/oauth/<str:platform>/callback", views.oauth_callback, name="adreports-oauth-callback"),
]
