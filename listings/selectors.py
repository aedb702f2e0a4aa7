"""Reads of the listings app."""

from __future__ import annotations

import hashlib

from django.core.cache import cache
from django.db.models import Count, Q, QuerySet

from components.models import Component
from listings.models import ImportJob, Listing, ListingGroup
from listings.services import LISTING_TYPE

ONLINE = "online"  # activities.models.ActivityStatus.ONLINE


def listing_component_public_get(*, component_id: int) -> Component | None:
    """The listing component the public API may serve: enabled, of an activity
    that is online. None otherwise (the API answers 404)."""
    return (
        Component.objects.select_related("activity")
        .filter(pk=component_id, type=LISTING_TYPE, enabled=True, activity__status=ONLINE)
        .first()
    )


def _per_city(component: Component) -> int:
    return int(component.config.get("listings_per_city") or 20)


CITIES_CACHE_SECONDS = 30


def _cities_key(component: Component) -> str:
    generation = cache.get(f"listings:gen:{component.pk}", 0)
    order = "|".join(component.config.get("city_order") or [])
    signature = hashlib.sha1(f"{_per_city(component)}:{order}".encode()).hexdigest()[:12]
    return f"listings:cities:{component.pk}:{generation}:{signature}"


def listing_cities(*, component: Component) -> list[dict]:
    """Cities with active listings, in the configured order (cities named in
    `city_order` first, then the rest in creation order). `count` is what the
    listings endpoint serves for the city (capped at `listings_per_city`).
    Cached for CITIES_CACHE_SECONDS; imports and saves invalidate at once."""
    key = _cities_key(component)
    cities = cache.get(key)
    if cities is None:
        cities = _cities_query(component)
        cache.set(key, cities, CITIES_CACHE_SECONDS)
    return cities


def _cities_query(component: Component) -> list[dict]:
    per_city = _per_city(component)
    groups = list(
        ListingGroup.objects.filter(component=component)
        .annotate(active=Count("listings", filter=Q(listings__is_active=True)))
        .filter(active__gt=0)
        .order_by("position", "id")
        .values("city", "active")
    )
    order = {city: index for index, city in enumerate(component.config.get("city_order") or [])}
    groups.sort(key=lambda g: order.get(g["city"], len(order)))  # stable: rest keep their position
    return [{"city": g["city"], "count": min(g["active"], per_city), "total": g["active"]} for g in groups]


def listing_default_city(*, component: Component, cities: list[dict]) -> str | None:
    names = [c["city"] for c in cities]
    wanted = component.config.get("default_city") or ""
    if wanted in names:
        return wanted
    return names[0] if names else None


def listings_of_city(*, component: Component, city: str) -> QuerySet[Listing]:
    """Active listings of one city in display order, at most `listings_per_city`."""
    return (
        Listing.objects.filter(component=component, group__city=city, is_active=True)
        .select_related("group")
        .order_by("sort_order", "id")[: _per_city(component)]
    )


def listing_group_exists(*, component: Component, city: str) -> bool:
    return ListingGroup.objects.filter(component=component, city=city).exists()


def import_job_get(*, job_id: int) -> ImportJob | None:
    return ImportJob.objects.select_related("component").filter(pk=job_id).first()
