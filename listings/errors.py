"""Domain errors of the listings app (the DomainError family: no HTTP here; the API
maps codes to statuses, the admin shows the message)."""

from __future__ import annotations

from core.errors import DomainError


class ImportRefused(DomainError):
    """An upload refused before any work (size, component type, a dry run that cannot
    be applied); the message is for the operator."""

    code = "import_refused"


class NotListingComponent(ImportRefused):
    code = "not_listing_component"


class ListingInvalid(DomainError):
    """A listing saved on its own breaks a rule of listings.importing.check;
    `details` maps each field to its message."""

    code = "listing_invalid"
