from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from listings.models import Listing
from listings.selectors import listing_cover_url


class ListingPublicSerializer(serializers.ModelSerializer):
    city = serializers.CharField(source="group.city", read_only=True)
    cover_image_url = serializers.SerializerMethodField(
        help_text="The cover to show: the uploaded image's URL, else the linked one; empty: draw a placeholder."
    )
    area_m2 = serializers.DecimalField(max_digits=9, decimal_places=2, coerce_to_string=False, allow_null=True)

    class Meta:
        model = Listing
        fields = [
            "id",
            "external_id",
            "city",
            "title",
            "district",
            "address",
            "price_fen",
            "area_m2",
            "layout",
            "cover_image_url",
            "detail_url",
            "tags",
            "sort_order",
        ]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.STR)
    def get_cover_image_url(self, listing: Listing) -> str:
        return listing_cover_url(listing)


class CitySerializer(serializers.Serializer):
    city = serializers.CharField()
    count = serializers.IntegerField(help_text="Listings the listings endpoint serves for this city.")
    total = serializers.IntegerField(help_text="Active listings of the city (before the display cap).")


class CitiesResponseSerializer(serializers.Serializer):
    component_id = serializers.IntegerField()
    layout = serializers.CharField()
    default_city = serializers.CharField(allow_null=True)
    listings_per_city = serializers.IntegerField()
    cities = CitySerializer(many=True)


class ListingComponentPublicSerializer(serializers.Serializer):
    """The listing component's public dict, frozen in the activity snapshot: its
    display settings and where to fetch the live cities and listings."""

    def to_representation(self, instance) -> dict:
        config = instance.config
        return {
            "listings_per_city": config.get("listings_per_city", 20),
            "layout": config.get("layout", "list"),
            "city_order": list(config.get("city_order") or []),
            "default_city": config.get("default_city", ""),
            "cities_url": f"/api/v1/components/{instance.pk}/cities",
            "listings_url": f"/api/v1/components/{instance.pk}/listings",
        }
