"""What the signed preview link's page reads: the draft in the activity API's shape
with live state (stock figures), and the draft's listings. Everything here is
reached only through an unexpired signed preview token of that activity: without
the link, drafts stay invisible (the public APIs serve published pages only)."""

from __future__ import annotations

from django.conf import settings
from django.core import signing
from django.utils.translation import gettext_lazy as _
from rest_framework import status
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from activities import selectors
from activities.models import Activity
from activities.views import PREVIEW_SALT
from components.models import Component
from core.errors import ApiError
from core.pagination import PageNumberPagination
from listings import selectors as listing_selectors
from listings.models import Listing
from listings.selectors import PublishedListingComponent
from listings.serializers import CitiesResponseSerializer, ListingPublicSerializer
from listings.services import LISTING_TYPE


def preview_activity(token: str) -> Activity:
    """The activity a preview token was made for, or a 403/404 ApiError."""
    try:
        data = signing.loads(token, salt=PREVIEW_SALT, max_age=settings.ACTIVITY_PREVIEW_TTL_SECONDS)
    except signing.SignatureExpired:
        raise ApiError("preview_expired", "This preview link has expired; ask for a new one.", 403) from None
    except signing.BadSignature:
        raise ApiError("preview_invalid", "This preview link is not valid.", 403) from None
    activity = Activity.objects.filter(pk=data.get("activity")).first()
    if activity is None:
        raise ApiError("activity_not_found", "This activity no longer exists.", 404)
    return activity


def _draft_listing_component(token: str, component_id: int) -> PublishedListingComponent:
    """A listing component of the previewed activity, with its draft settings."""
    activity = preview_activity(token)
    component = Component.objects.filter(pk=component_id, activity=activity, type=LISTING_TYPE).first()
    if component is None:
        raise ApiError("component_not_found", "No listing component with this id in this preview.", 404)
    return PublishedListingComponent(pk=component.pk, config=dict(component.config))


def _no_store(response):
    response["Cache-Control"] = "private, no-store"
    response["X-Robots-Tag"] = "noindex"
    return response


class PreviewActivityApi(APIView):
    """The draft as the activity API would serve it once published, with each
    component's live state as an anonymous visitor sees it (stock left...)."""

    authentication_classes: list = []
    permission_classes: list = []
    schema = None

    def get(self, request, token: str):
        activity = preview_activity(token)
        body = selectors.preview_body(activity)
        body = {**body, "components": selectors.components_live_state(body["components"], None)}
        return _no_store(Response(body))


class PreviewCitiesApi(APIView):
    authentication_classes: list = []
    permission_classes: list = []
    schema = None

    def get(self, request, token: str, component_id: int):
        component = _draft_listing_component(token, component_id)
        cities = listing_selectors.listing_cities(component=component)  # live: a preview is never cached
        return _no_store(
            Response(
                CitiesResponseSerializer(
                    {
                        "component_id": component.pk,
                        "layout": component.config.get("layout", "list"),
                        "default_city": listing_selectors.listing_default_city(component=component, cities=cities),
                        "listings_per_city": listing_selectors.listings_per_city(component),
                        "cities": cities,
                    }
                ).data
            )
        )


class PreviewListingsApi(ListAPIView):
    authentication_classes: list = []
    permission_classes: list = []
    serializer_class = ListingPublicSerializer
    pagination_class = PageNumberPagination
    schema = None

    def get_queryset(self):
        component = _draft_listing_component(self.kwargs["token"], self.kwargs["component_id"])
        city = (self.request.query_params.get("city") or "").strip()
        if not city:
            cities = listing_selectors._cities_query(component)
            city = listing_selectors.listing_default_city(component=component, cities=cities)
            if city is None:
                return Listing.objects.none()
        elif not listing_selectors.listing_group_exists(component=component, city=city):
            raise ApiError(
                "city_not_found",
                _("This component has no listings in %(city)s.") % {"city": repr(city[:32])},
                status.HTTP_404_NOT_FOUND,
            )
        return listing_selectors.listings_of_city(component=component, city=city)

    def get(self, request, *args, **kwargs):
        return _no_store(self.list(request, *args, **kwargs))
