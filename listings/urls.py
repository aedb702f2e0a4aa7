from django.urls import path

from listings import views

urlpatterns = [
    path("api/v1/components/<int:component_id>/cities", views.CitiesView.as_view(), name="listing-cities"),
    path("api/v1/components/<int:component_id>/listings", views.ListingsView.as_view(), name="listing-listings"),
]
