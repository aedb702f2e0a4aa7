from django.urls import path

from attribution import views

urlpatterns = [
    path("t/<str:platform>/<str:link_token>", views.click, name="attribution-click"),
]
