"""The listing component type (房源上传组件): listings grouped by city."""

from __future__ import annotations

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
                    "title": "Listings shown per city",
                    "description": "The listings themselves are managed under Admin › Listings; upload a CSV/XLSX "
                    "at Admin › Listings › Import jobs › Add (/admin/listings/importjob/upload/).",
                    "minimum": 1,
                    "maximum": 200,
                    "default": 20,
                },
                "layout": {
                    "type": "string",
                    "title": "Layout",
                    "enum": ["list", "grid", "carousel"],
                    "default": "list",
                },
                "city_order": {
                    "type": "array",
                    "title": "City order (cities not named follow in creation order)",
                    "items": {"type": "string", "minLength": 1, "maxLength": 32},
                    "uniqueItems": True,
                    "maxItems": 200,
                    "default": [],
                },
                "default_city": {
                    "type": "string",
                    "title": "Default city (empty: the first)",
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
