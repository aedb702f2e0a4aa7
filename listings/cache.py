"""The cache of a listing component's public cities (Django's cache, Redis): the one
place that reads and writes it. `listings.selectors.listing_cities` only reads the
database; the public API reads through `listing_cities_cached`, a read-through cache
of CITIES_CACHE_SECONDS. A per-component generation number is part of every key;
`listing_cities_invalidate` (called by the listing services and the importer) bumps it
after the change commits, so the next request recomputes."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from django.core.cache import cache
from django.db import transaction

if TYPE_CHECKING:
    from listings.selectors import PublishedListingComponent

CITIES_CACHE_SECONDS = 30


def _generation_key(component_id: int) -> str:
    return f"listings:gen:{component_id}"


def _cities_key(component: PublishedListingComponent, *, per_city: int) -> str:
    generation = cache.get(_generation_key(component.pk), 0)
    order = "|".join(component.config.get("city_order") or [])
    signature = hashlib.sha1(f"{per_city}:{order}".encode()).hexdigest()[:12]
    return f"listings:cities:{component.pk}:{generation}:{signature}"


def listing_cities_cached(*, component: PublishedListingComponent) -> list[dict]:
    """`selectors.listing_cities`, cached for CITIES_CACHE_SECONDS."""
    from listings import selectors  # here: listings.services imports this module

    key = _cities_key(component, per_city=selectors.listings_per_city(component))
    cities = cache.get(key)
    if cities is None:
        cities = selectors.listing_cities(component=component)
        cache.set(key, cities, CITIES_CACHE_SECONDS)
    return cities


def listing_cities_invalidate(*, component_id: int) -> None:
    """After a change to a component's listings commits, its public cities are
    recomputed on the next request."""

    def bump() -> None:
        key = _generation_key(component_id)
        cache.add(key, 0, None)
        cache.incr(key)

    transaction.on_commit(bump)
