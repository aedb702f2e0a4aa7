"""Public listing API (contracts §6): live data of a listing component."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from core.errors import ApiError
from core.pagination import PageNumberPagination
from listings import cache as listing_cache
from listings import selectors
from listings.models import Listing
from listings.serializers import CitiesResponseSerializer, ListingPublicSerializer


def _component_or_404(component_id: int):
    component = selectors.listing_component_public_get(component_id=component_id)
    if component is None:
        raise ApiError(
            "component_not_found",
            _(
                "No listing component with this id is on a published, online activity page (unknown id, "
                "not a listing component, not published yet, disabled, or the activity is not online)."
            ),
            status.HTTP_404_NOT_FOUND,
        )
    return component


class CitiesView(APIView):
    authentication_classes: list = []
    permission_classes: list = []

    @extend_schema(
        operation_id="listing_component_cities",
        summary="Cities of a listing component with listing counts, in the configured order",
        responses={200: CitiesResponseSerializer},
        tags=["listings"],
    )
    def get(self, request, component_id: int):
        component = _component_or_404(component_id)
        cities = listing_cache.listing_cities_cached(component=component)
        return Response(
            CitiesResponseSerializer(
                {
                    "component_id": component.pk,
                    "layout": component.config.get("layout", "list"),
                    "default_city": selectors.listing_default_city(component=component, cities=cities),
                    "listings_per_city": selectors.listings_per_city(component),
                    "cities": cities,
                }
            ).data
        )


class ListingsView(ListAPIView):
    authentication_classes: list = []
    permission_classes: list = []
    serializer_class = ListingPublicSerializer
    pagination_class = PageNumberPagination

    def get_queryset(self):
        component = _component_or_404(self.kwargs["component_id"])
        city = (self.request.query_params.get("city") or "").strip()
        if not city:
            city = selectors.listing_default_city(
                component=component, cities=listing_cache.listing_cities_cached(component=component)
            )
            if city is None:
                return Listing.objects.none()
        elif not selectors.listing_group_exists(component=component, city=city):
            raise ApiError(
                "city_not_found", _("This component has no listings in %(city)s.") % {"city": repr(city[:32])}, 404
            )
        return selectors.listings_of_city(component=component, city=city)

    @extend_schema(
        operation_id="listing_component_listings",
        summary="Listings of one city, paged; at most the component's listings-per-city in total",
        parameters=[
            OpenApiParameter("city", OpenApiTypes.STR, description="City name; default: the component's default city"),
        ],
        tags=["listings"],
    )
    def get(self, request, *args, **kwargs):
        return self.list(request, *args, **kwargs)
