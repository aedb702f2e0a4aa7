"""CSV/XLSX formula injection: every export neutralises formula-like text, every
django-import-export resource goes through the one safe base (core.spreadsheets)."""

import csv
import io

import openpyxl
import pytest
from django.contrib import admin
from django.urls import reverse
from import_export.admin import ExportMixin
from import_export.formats.base_formats import CSV, XLSX

from core.spreadsheets import FORMULA_TRIGGERS, SafeExportResource, formula_neutralise
from coupons.services import coupon_pack_claim
from tests.coupons.factories import coupon_pack_make
from tests.factories import StaffUserFactory

pytestmark = pytest.mark.django_db

HOSTILE = ['=HYPERLINK("http://evil.example","x")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\t=1", "\r=1", " =1"]


def test_every_admin_export_goes_through_the_safe_resource(rf):
    """Walks every registered ModelAdmin, so an export added later is covered too."""
    request = rf.get("/")
    request.user = StaffUserFactory(is_superuser=True)
    exports = {
        model._meta.label: model_admin.get_export_resource_classes(request)
        for model, model_admin in admin.site._registry.items()
        if isinstance(model_admin, ExportMixin)
    }
    assert exports  # listings, coupon claims, redeem codes at least
    unsafe = {
        label: [c.__name__ for c in classes if not issubclass(c, SafeExportResource)]
        for label, classes in exports.items()
    }
    assert not any(unsafe.values()), unsafe


def test_formula_neutralise_marks_text_only():
    for text in HOSTILE:
        assert formula_neutralise(text) == "'" + text
    assert {formula_neutralise(v) for v in ("ok", "上海", "a=b", "")} == {"ok", "上海", "a=b", ""}
    assert [formula_neutralise(v) for v in (-3, 2.5, None)] == [-3, 2.5, None]  # numbers stay numbers
    assert [formula_neutralise(v) for v in ("-3", "+1.5", "-2e3")] == ["-3", "+1.5", "-2e3"]  # also as text
    assert set(FORMULA_TRIGGERS) == {"=", "+", "-", "@", "\t", "\r"}  # OWASP's list


def _export(operator_client, url_name: str, prefix: str, file_format) -> list[list]:
    url = reverse(url_name)
    page = operator_client.get(url)
    choices = dict(page.context["form"].fields["format"].choices)
    index = next(k for k, v in choices.items() if v.lower() == file_format().get_title().lower())
    fields = [f for f in page.context["form"].fields if f.startswith(prefix)]
    response = operator_client.post(url, {"format": index, **{f: "on" for f in fields}})
    assert response.status_code == 200
    if file_format is CSV:
        return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    sheet = openpyxl.load_workbook(io.BytesIO(response.content)).active
    for row in sheet.iter_rows():
        assert all(cell.data_type != "f" for cell in row)  # no formula cell at all
    return [[cell.value for cell in row] for row in sheet.iter_rows()]


@pytest.mark.parametrize("file_format", [CSV, XLSX])
def test_claims_export_neutralises_formula_like_user_ids(operator_client, file_format):
    pack = coupon_pack_make(total_stock=len(HOSTILE))
    for user_id in HOSTILE:  # as stored before user ids were bounded, or from any other source
        coupon_pack_claim(component_id=pack.component_id, user_id=user_id)
    rows = _export(operator_client, "admin:coupons_claim_export", "claimresource_", file_format)
    column = rows[0].index("user_id")
    exported = sorted(str(row[column]).replace("\r", "\n") for row in rows[1:])  # XML reads \r as \n
    assert exported == sorted("'" + text.replace("\r", "\n") for text in HOSTILE)


@pytest.mark.parametrize("file_format", [CSV, XLSX])
def test_listings_export_neutralises_text_and_keeps_negative_numbers(operator_client, file_format):
    from listings.importing import COLUMN_BY_KEY
    from tests.listings.factories import ListingFactory, ListingGroupFactory

    # Written past the rules (listing_save refuses such text): the export must be safe whatever the data.
    ListingFactory(
        group=ListingGroupFactory(city="@上海"), external_id="-X1", title="=1+1", price_fen=100, sort_order=-3
    )
    rows = _export(operator_client, "admin:listings_listing_export", "listingresource_", file_format)
    header, (values,) = rows[0], rows[1:]
    cell = {
        key: values[header.index(COLUMN_BY_KEY[key].label)] for key in ("external_id", "city", "title", "sort_order")
    }
    assert cell["external_id"] == "'-X1" and cell["city"] == "'@上海" and cell["title"] == "'=1+1"
    assert str(cell["sort_order"]) == "-3"  # a number column keeps its sign
