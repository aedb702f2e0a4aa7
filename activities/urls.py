from django.urls import path

from activities import preview, views

urlpatterns = [
    path("a/<slug:slug>/", views.activity_page, name="activity-page"),
    path("a/preview/<str:token>/", views.activity_preview, name="activity-preview"),
    # What the preview page's scripts read (the draft's state and listings), behind the same token.
    path("a/preview/<str:token>/api/", preview.PreviewActivityApi.as_view(), name="activity-preview-api"),
    path(
        "a/preview/<str:token>/components/<int:component_id>/cities",
        preview.PreviewCitiesApi.as_view(),
        name="activity-preview-cities",
    ),
    path(
        "a/preview/<str:token>/components/<int:component_id>/listings",
        preview.PreviewListingsApi.as_view(),
        name="activity-preview-listings",
    ),
    path("api/v1/activities/<slug:slug>", views.ActivityDetailApi.as_view(), name="activity-api"),
]
