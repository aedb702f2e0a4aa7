"""The listing component's settings screen (components/admin_extensions.py): its
cities, listings and uploads are reached from the component itself."""

from __future__ import annotations

from django.urls import reverse
from django.utils.translation import gettext

from components.admin_extensions import CheckItem, ComponentAdminExtension, register_admin
from listings.models import Listing, ListingGroup
from listings.services import LISTING_TYPE


class ListingComponentAdmin(ComponentAdminExtension):
    def readonly_summary(self, component) -> list[tuple[str, str]]:
        cities = ListingGroup.objects.filter(component=component).count()
        active = Listing.objects.filter(component=component, is_active=True).count()
        return [(gettext("Cities"), str(cities)), (gettext("Listings shown"), str(active))]

    def links(self, component) -> list[tuple[str, ...]]:
        query = f"?component__id__exact={component.pk}"
        return [
            (
                gettext("Upload listings (CSV/XLSX)"),
                reverse("admin:listings_importjob_upload") + f"?component={component.pk}",
                "listings.add_importjob",
            ),
            (gettext("Listings"), reverse("admin:listings_listing_changelist") + query),
            (gettext("Cities"), reverse("admin:listings_listinggroup_changelist") + query),
            (gettext("Uploads"), reverse("admin:listings_importjob_changelist") + query),
        ]

    def checklist(self, component) -> list[CheckItem]:
        name = component.title or gettext("Listings")
        active = Listing.objects.filter(component=component, is_active=True).count()
        if not active:
            return [CheckItem("error", gettext("%s: no listings uploaded yet.") % name)]
        cities = ListingGroup.objects.filter(component=component).count()
        return [
            CheckItem(
                "ok", gettext("%(name)s: %(n)s listings in %(c)s cities.") % {"name": name, "n": active, "c": cities}
            )
        ]


register_admin(LISTING_TYPE, ListingComponentAdmin())
