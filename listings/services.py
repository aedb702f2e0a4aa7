"""Writes of the listings app: single listings, groups, cloning (the bulk upload is
listings.importing). Every write that changes what the public sees (a listing saved,
switched off, moved or deleted; a city renamed or deleted) invalidates the cached
cities when it commits."""

from __future__ import annotations

from typing import Any

from django.core.files import File
from django.db import transaction
from django.db.models import Max
from django.utils.translation import gettext_lazy as _

from components.images import image_save
from components.models import Component
from listings.cache import listing_cities_invalidate
from listings.errors import ImportRefused, ListingInvalid, NotListingComponent
from listings.importing.check import listing_values_check
from listings.importing.write import BATCH_SIZE, CONTENT_FIELDS
from listings.models import ImportJob, Listing, ListingGroup

__all__ = ["ImportRefused", "listing_cities_invalidate"]  # re-exported: callers use them from here too

LISTING_TYPE = "listing"


def listing_component_check(component: Component) -> None:
    if component.type != LISTING_TYPE:
        raise NotListingComponent(
            _("Component #%(id)s is a %(type)s component, not a listing component.")
            % {"id": component.pk, "type": repr(component.type)}
        )


# --- groups -------------------------------------------------------------------


@transaction.atomic
def listing_group_ensure(*, component: Component, city: str) -> tuple[ListingGroup, bool]:
    """The component's group of that city, created (at the end) when new."""
    group = ListingGroup.objects.filter(component=component, city=city).first()
    if group is not None:
        return group, False
    last = ListingGroup.objects.filter(component=component).aggregate(p=Max("position"))["p"]
    group, created = ListingGroup.objects.get_or_create(
        component=component, city=city, defaults={"position": 0 if last is None else last + 1}
    )
    return group, created


# --- cloning ------------------------------------------------------------------


def listings_clone(*, source: Component, target: Component) -> None:
    """Clone hook of the listing type: copy the groups and their listings."""
    with transaction.atomic():
        group_map: dict[int, int] = {}
        for group in ListingGroup.objects.filter(component=source).order_by("position", "id"):
            copy = ListingGroup.objects.create(component=target, city=group.city, position=group.position)
            group_map[group.pk] = copy.pk
        batch: list[Listing] = []
        for listing in Listing.objects.filter(component=source).order_by("id").iterator(chunk_size=BATCH_SIZE):
            batch.append(
                Listing(
                    component=target,
                    group_id=group_map[listing.group_id],
                    external_id=listing.external_id,
                    **{f: getattr(listing, f) for f in CONTENT_FIELDS},
                )
            )
            if len(batch) >= BATCH_SIZE:
                Listing.objects.bulk_create(batch)
                batch = []
        if batch:
            Listing.objects.bulk_create(batch)


# --- single listings (admin, demo data, scripts) -------------------------------


def _values_check(values: dict[str, Any]) -> None:
    problems = listing_values_check(values)
    if problems:
        raise ListingInvalid("; ".join(f"{field}: {message}" for field, message in problems.items()), details=problems)


@transaction.atomic
def listing_save(
    *, component: Component, city: str, external_id: str, title: str, price_fen: int, **fields: Any
) -> Listing:
    """Create or update one listing by external id (its group created when new)."""
    listing_component_check(component)
    unknown = set(fields) - set(CONTENT_FIELDS)
    if unknown:
        raise TypeError(f"unknown listing fields: {', '.join(sorted(unknown))}")
    _values_check({"city": city, "external_id": external_id, "title": title, "price_fen": price_fen, **fields})
    group, _ = listing_group_ensure(component=component, city=city)
    listing, _ = Listing.objects.update_or_create(
        component=component,
        external_id=external_id,
        defaults={"group": group, "title": title, "price_fen": price_fen, **fields},
    )
    listing_cities_invalidate(component_id=component.pk)
    return listing


EDITABLE_FIELDS = frozenset({"component", "group", "external_id", *CONTENT_FIELDS})


def listing_write_check(*, listing: Listing, fields: dict[str, Any]) -> dict[str, str]:
    """{field: message} of what is wrong with `listing` (a saved one, or a new
    `Listing()`) once `fields` are applied (reads only; the admin form shows these
    beside its fields). The content rules are the upload's own
    (listings.importing.check); the city must belong to the listing's component, and
    the external id be unused in it."""
    unknown = set(fields) - EDITABLE_FIELDS
    if unknown:
        raise TypeError(f"unknown listing fields: {', '.join(sorted(unknown))}")
    problems = listing_values_check({k: v for k, v in fields.items() if k not in ("component", "group")})
    component = fields.get("component") or (listing.component if listing.component_id else None)
    group = fields.get("group") or (listing.group if listing.group_id else None)
    if component is not None and component.type != LISTING_TYPE:
        problems.setdefault("component", f"Component #{component.pk} is not a listing component.")
    if component is not None and group is not None and group.component_id != component.pk:
        problems.setdefault(
            "group", f"The city {group.city!r} belongs to another listing component (#{group.component_id})."
        )
    external_id = fields.get("external_id", listing.external_id)
    if component is not None and "external_id" not in problems:
        taken = Listing.objects.filter(component=component, external_id=external_id).exclude(pk=listing.pk)
        if taken.exists():
            problems["external_id"] = f"This component already has a listing {external_id!r}."
    return problems


def _write(listing: Listing, fields: dict[str, Any]) -> Listing:
    problems = listing_write_check(listing=listing, fields=fields)
    if problems:
        raise ListingInvalid("; ".join(f"{f}: {m}" for f, m in problems.items()), details=problems)
    before = listing.component_id
    for name, value in fields.items():
        setattr(listing, name, value)
    listing.save()
    for component_id in {before, listing.component_id} - {None}:
        listing_cities_invalidate(component_id=component_id)
    return listing


@transaction.atomic
def listing_create(*, fields: dict[str, Any]) -> Listing:
    """Create one listing (admin): `fields` holds component, group, external_id and
    content fields; refused with ListingInvalid when a rule is broken."""
    return _write(Listing(), fields)


@transaction.atomic
def listing_update(*, listing_id: int, fields: dict[str, Any]) -> Listing:
    """Change one listing (admin form and list_editable): only `fields` change. The
    public cities of the components touched are recounted when it commits (a listing
    switched off disappears from the counts at once)."""
    listing = Listing.objects.select_for_update().select_related("component", "group").get(pk=listing_id)
    return _write(listing, fields)


@transaction.atomic
def listing_cover_image_set(*, listing_id: int, upload: File | None) -> Listing:
    """Give a listing an uploaded cover (`upload`), or take it away (None: pages show
    the linked cover image URL again, or the placeholder). The image is checked and
    stored by the banner's code (components.images: size, real format, one copy per
    content); refused with DomainError image_too_large / image_invalid / image_type."""
    listing = Listing.objects.select_for_update().get(pk=listing_id)
    listing.cover_image.name = image_save(upload, folder="listings") if upload is not None else ""
    listing.save(update_fields=["cover_image", "updated_at"])
    return listing


@transaction.atomic
def listings_delete(*, listing_ids: list[int]) -> int:
    """Delete listings; the cities of their components are recounted."""
    component_ids = set(Listing.objects.filter(pk__in=listing_ids).values_list("component_id", flat=True))
    deleted, _ = Listing.objects.filter(pk__in=listing_ids).delete()
    for component_id in component_ids:
        listing_cities_invalidate(component_id=component_id)
    return deleted


def listing_group_update_check(*, group: ListingGroup, city: str, position: int) -> dict[str, str]:
    """{field: message} of what is wrong with renaming/moving `group` (reads only)."""
    problems = listing_values_check({"city": city})
    if "city" not in problems:
        taken = ListingGroup.objects.filter(component_id=group.component_id, city=city).exclude(pk=group.pk)
        if taken.exists():
            problems["city"] = f"This component already has a city {city!r}."
    if position < 0:
        problems["position"] = "A position cannot be negative."
    return problems


@transaction.atomic
def listing_group_update(*, group: ListingGroup, city: str, position: int) -> ListingGroup:
    """Rename or move one city of a listing component."""
    problems = listing_group_update_check(group=group, city=city, position=position)
    if problems:
        raise ListingInvalid("; ".join(f"{f}: {m}" for f, m in problems.items()), details=problems)
    group.city = city
    group.position = position
    group.save(update_fields=["city", "position", "updated_at"])
    listing_cities_invalidate(component_id=group.component_id)
    return group


@transaction.atomic
def listing_groups_delete(*, group_ids: list[int]) -> int:
    """Delete cities with their listings; the components' cities are recounted."""
    component_ids = set(ListingGroup.objects.filter(pk__in=group_ids).values_list("component_id", flat=True))
    deleted, _ = ListingGroup.objects.filter(pk__in=group_ids).delete()
    for component_id in component_ids:
        listing_cities_invalidate(component_id=component_id)
    return deleted


@transaction.atomic
def import_jobs_delete(*, job_ids: list[int]) -> int:
    """Delete import job records (the listings they imported stay; a stored file no
    other job uses is purged nightly by import_files_purge)."""
    deleted, _ = ImportJob.objects.filter(pk__in=job_ids).delete()
    return deleted
