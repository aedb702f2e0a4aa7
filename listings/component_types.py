"""The listing component type (房源上传组件): listings grouped by city."""

from __future__ import annotations

from django.utils.translation import gettext_noop

from components.registry import ComponentType, register
from listings.serializers import ListingComponentPublicSerializer
from listings.services import LISTING_TYPE, listings_clone

LISTING = register(
    ComponentType(
        key=LISTING_TYPE,
        label="Listings 房源",
        schema={
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "listings_per_city": {
                    "type": "integer",
                    "title": gettext_noop("Listings shown per city"),
                    "description": gettext_noop(
                        "The listings themselves are managed under Admin › Listings; upload a CSV/XLSX "
                        "at Admin › Listings › Import jobs › Add (/admin/listings/importjob/upload/)."
                    ),
                    "minimum": 1,
                    "maximum": 200,
                    "default": 20,
                },
                "layout": {
                    "type": "string",
                    "title": gettext_noop("Layout"),
                    "enum": ["list", "grid", "carousel"],
                    "default": "list",
                },
                "city_order": {
                    "type": "array",
                    "title": gettext_noop("City order (cities not named follow in creation order)"),
                    "items": {"type": "string", "minLength": 1, "maxLength": 32},
                    "uniqueItems": True,
                    "maxItems": 200,
                    "default": [],
                },
                "default_city": {
                    "type": "string",
                    "title": gettext_noop("Default city (empty: the first)"),
                    "maxLength": 32,
                    "default": "",
                },
            },
        },
        serializer=ListingComponentPublicSerializer,
        template="components/listing.html",
        clone=listings_clone,
    )
)
