"""Reads of the listings app."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet

from components.images import image_url
from components.models import Component
from listings.models import Listing, ListingGroup
from listings.services import LISTING_TYPE


@dataclass(frozen=True)
class PublishedListingComponent:
    """A listing component as the public sees it: its id and the display settings
    frozen in the activity's published snapshot (listings themselves are live)."""

    pk: int
    config: dict


def listing_component_public_get(*, component_id: int) -> PublishedListingComponent | None:
    """The listing component the public API may serve: one that is on the published
    page of an activity that is online. None otherwise (the API answers 404), so a
    component added, enabled or re-configured in a draft shows only once published."""
    from activities.cache import public_activity_get  # the cached public view

    row = Component.objects.filter(pk=component_id, type=LISTING_TYPE).values("activity__slug").first()
    if row is None:
        return None
    public = public_activity_get(row["activity__slug"])
    if not public.served or public.body is None:
        return None
    for item in public.body.get("components", []):
        if item.get("id") == component_id and item.get("type") == LISTING_TYPE:
            return PublishedListingComponent(pk=component_id, config=item.get("config") or {})
    return None


def listings_per_city(component: PublishedListingComponent) -> int:
    return int(component.config.get("listings_per_city") or 20)


def listing_cities(*, component: PublishedListingComponent) -> list[dict]:
    """Cities with active listings, in the configured order (cities named in
    `city_order` first, then the rest in creation order). `count` is what the
    listings endpoint serves for the city (capped at `listings_per_city`).
    Reads the database only; the public API reads it through listings.cache."""
    per_city = listings_per_city(component)
    groups = list(
        ListingGroup.objects.filter(component_id=component.pk)
        .annotate(active=Count("listings", filter=Q(listings__is_active=True)))
        .filter(active__gt=0)
        .order_by("position", "id")
        .values("city", "active")
    )
    order = {city: index for index, city in enumerate(component.config.get("city_order") or [])}
    groups.sort(key=lambda g: order.get(g["city"], len(order)))  # stable: rest keep their position
    return [{"city": g["city"], "count": min(g["active"], per_city), "total": g["active"]} for g in groups]


def listing_default_city(*, component: PublishedListingComponent, cities: list[dict]) -> str | None:
    names = [c["city"] for c in cities]
    wanted = component.config.get("default_city") or ""
    if wanted in names:
        return wanted
    return names[0] if names else None


def listings_of_city(*, component: PublishedListingComponent, city: str) -> QuerySet[Listing]:
    """Active listings of one city in display order, at most `listings_per_city`."""
    return (
        Listing.objects.filter(component_id=component.pk, group__city=city, is_active=True)
        .select_related("group")
        .order_by("sort_order", "id")[: listings_per_city(component)]
    )


def listing_group_exists(*, component: PublishedListingComponent, city: str) -> bool:
    return ListingGroup.objects.filter(component_id=component.pk, city=city).exists()


def listing_cover_url(listing: Listing) -> str:
    """The cover pages show: the uploaded image (its storage URL: /media/... served with
    year-long cache headers, or the object store's), else the linked cover image URL,
    else "" (the page draws its placeholder)."""
    if listing.cover_image.name:
        return image_url(listing.cover_image.name)
    return listing.cover_image_url
