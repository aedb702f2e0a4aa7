from django.urls import path

from activities import views

urlpatterns = [
    path("a/<slug:slug>/", views.activity_page, name="activity-page"),
    path("a/preview/<str:token>/", views.activity_preview, name="activity-preview"),
    path("api/v1/activities/<slug:slug>", views.ActivityDetailApi.as_view(), name="activity-api"),
]
