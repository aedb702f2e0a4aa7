from __future__ import annotations

import io

import pytest
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from openpyxl import load_workbook

from core.services import groups_sync
from listings.models import ImportJob, ImportStatus, Listing
from tests.factories import StaffUserFactory
from tests.listings.files import row, write_csv

pytestmark = pytest.mark.django_db


def test_the_command_imports_with_a_progress_bar(component, tmp_path, monkeypatch):

    monkeypatch.setattr("listings.importing.write.BATCH_SIZE", 10)
    path = write_csv(tmp_path / "a.csv", [row(n, city=["上海", "北京"][n % 2]) for n in range(25)])
    out = io.StringIO()
    call_command("import_listings", str(component.pk), str(path), stdout=out)
    text = out.getvalue()
    assert "] 10/25 rows" in text and "] 25/25 rows" in text
    assert "created 25, updated 0, unchanged 0, rejected 0 of 25 rows" in text
    assert Listing.objects.filter(component=component).count() == 25


@pytest.mark.django_db(transaction=True)
def test_the_command_can_hand_the_file_to_the_workers_and_follow_it(tmp_path):
    from tests.listings.factories import ListingComponentFactory

    component = ListingComponentFactory()
    path = write_csv(tmp_path / "a.csv", [row(n) for n in range(12)])
    out = io.StringIO()
    call_command("import_listings", str(component.pk), str(path), "--background", stdout=out)  # eager Celery in tests
    assert "] 12/12 rows" in out.getvalue() and "created 12" in out.getvalue()
    job = ImportJob.objects.get()
    assert job.status == ImportStatus.APPLIED and job.started_at is not None
    assert Listing.objects.filter(component=component).count() == 12


def test_the_command_dry_run_and_errors(component, tmp_path):
    path = write_csv(tmp_path / "a.csv", [row(1), row(2, price="-3")])
    out = io.StringIO()
    call_command("import_listings", str(component.pk), str(path), "--dry-run", stdout=out)
    assert "would be created 1" in out.getvalue()
    assert "row 3, column price_yuan (价格（元）): must not be negative (got -3)" in out.getvalue()
    assert not Listing.objects.exists()
    with pytest.raises(CommandError, match="nothing was imported"):
        call_command("import_listings", str(component.pk), str(path), stdout=io.StringIO())
    call_command("import_listings", str(component.pk), str(path), "--skip-bad-rows", stdout=io.StringIO())
    assert Listing.objects.count() == 1


def test_the_command_refuses_bad_files_and_unknown_components(component, tmp_path):
    path = write_csv(tmp_path / "a.csv", [row(1), row(2)])
    out = io.StringIO()
    with pytest.raises(CommandError, match="not UTF-8"):
        bad = tmp_path / "gbk.csv"
        bad.write_bytes("房源编号,城市\n".encode("gbk"))
        call_command("import_listings", str(component.pk), str(bad), stdout=out)
    with pytest.raises(CommandError, match="No component"):
        call_command("import_listings", "999999", str(path), stdout=out)


def test_operator_uploads_a_dry_run_sees_the_preview_and_applies_it(
    operator_client, component, tmp_path, django_capture_on_commit_callbacks
):
    path = write_csv(tmp_path / "a.csv", [row(1), row(2), row(3)])
    with django_capture_on_commit_callbacks(execute=True), open(path, "rb") as handle:
        response = operator_client.post(
            "/admin/listings/importjob/upload/",
            {"component": component.pk, "file": handle, "dry_run": "on", "all_or_nothing": "on"},
        )
    job = ImportJob.objects.get()
    assert response.status_code == 302 and response["Location"].endswith(f"/importjob/{job.pk}/change/")
    page = operator_client.get(response["Location"]).content.decode()
    assert "Would be created" in page and 'id="count-created">3<' in page
    assert "Apply this file now" in page and "Download the rows with their errors" not in page
    progress = operator_client.get(f"/admin/listings/importjob/{job.pk}/progress/").json()
    assert progress == {
        "status": "previewed",
        "status_label": job.get_status_display(),
        "finished": True,
        "processed": 3,
        "total": 3,
    }
    assert not Listing.objects.exists()

    with django_capture_on_commit_callbacks(execute=True):
        applied = operator_client.post(f"/admin/listings/importjob/{job.pk}/apply/")
    new = ImportJob.objects.exclude(pk=job.pk).get()
    assert applied.status_code == 302 and new.status == ImportStatus.APPLIED
    assert Listing.objects.filter(component=component).count() == 3


def test_a_dry_run_with_errors_under_all_or_nothing_offers_no_apply_button(
    operator_client, component, tmp_path, django_capture_on_commit_callbacks
):
    path = write_csv(tmp_path / "a.csv", [row(1), row(2), row(3, area="0")])
    with django_capture_on_commit_callbacks(execute=True), open(path, "rb") as handle:
        operator_client.post(
            "/admin/listings/importjob/upload/",
            {"component": component.pk, "file": handle, "dry_run": "on", "all_or_nothing": "on"},
        )
    job = ImportJob.objects.get()
    page = operator_client.get(f"/admin/listings/importjob/{job.pk}/change/").content.decode()
    assert "<td>4</td><td>area_m2 (面积（㎡）)</td><td>must be greater than 0 (got 0)</td>" in page
    assert "Apply this file now" not in page and 'id="no-apply"' in page
    assert "Download the rows with their errors" in page
    assert "Import the good rows, skip the 1 with errors" in page

    # Applying it all or nothing is refused by the service (it could only be rejected).
    refused = operator_client.post(f"/admin/listings/importjob/{job.pk}/apply/", follow=True)
    assert "applying it all or nothing would import nothing" in refused.content.decode()
    assert ImportJob.objects.count() == 1

    with django_capture_on_commit_callbacks(execute=True):
        operator_client.post(f"/admin/listings/importjob/{job.pk}/apply/", {"skip_bad_rows": "1"})
    new = ImportJob.objects.exclude(pk=job.pk).get()
    assert (new.status, new.created_count, new.rejected_count) == (ImportStatus.APPLIED, 2, 1)
    assert Listing.objects.filter(component=component).count() == 2


def test_a_rejected_import_never_shows_rows_as_created(operator_client, component, run_import, tmp_path):
    job = run_import(component, write_csv(tmp_path / "a.csv", [row(1), row(2), row(3, price="-1")]))
    assert job.status == ImportStatus.ROLLED_BACK
    assert (job.created_count, job.updated_count, job.unchanged_count, job.groups_created) == (0, 0, 0, [])
    assert job.preview == {"created": [], "updated": []}
    page = operator_client.get(f"/admin/listings/importjob/{job.pk}/change/").content.decode()
    assert "Nothing was imported." in page
    assert 'id="count-created"' not in page and "<h3>Created" not in page and 'id="count-rejected">1<' in page
    assert not Listing.objects.exists()


def test_the_preview_shows_zero_and_no_as_values_not_as_blanks_and_prices_in_yuan(
    operator_client, component, run_import, tmp_path
):
    run_import(component, write_csv(tmp_path / "a.csv", [row(1, price="0", active="否", district="")]))
    job = run_import(
        component, write_csv(tmp_path / "b.csv", [row(1, price="12", active="是", district="浦东")]), dry_run=True
    )
    page = operator_client.get(f"/admin/listings/importjob/{job.pk}/change/").content.decode()
    assert "price_yuan (价格（元）): 0.00 → 12.00" in page
    assert "is_active (" in page and ": False → True" in page
    assert "district (区域): — → 浦东" in page


def test_the_admin_refuses_an_oversized_file_before_reading_it(operator_client, component, settings):
    settings.LISTINGS_IMPORT_MAX_BYTES = 2048
    big = io.BytesIO(b"x" * 4096)
    big.name = "big.csv"
    response = operator_client.post("/admin/listings/importjob/upload/", {"component": component.pk, "file": big})
    assert response.status_code == 200
    assert "the limit is 0 MB" in response.content.decode()
    assert not ImportJob.objects.exists()


def test_the_template_downloads_and_imports_as_is(operator_client, component, run_import, tmp_path):
    for kind in ("xlsx", "csv"):
        response = operator_client.get(f"/admin/listings/importjob/template.{kind}")
        assert response.status_code == 200
        path = tmp_path / f"template.{kind}"
        path.write_bytes(response.content)
        job = run_import(component, path, dry_run=True)
        assert job.status == ImportStatus.PREVIEWED and job.created_count == 1, (job.message, job.errors)
    workbook = load_workbook(tmp_path / "template.xlsx")
    assert workbook.sheetnames == ["房源", "说明 Help"]
    assert operator_client.get("/admin/listings/importjob/template.pdf").status_code == 404


def test_listing_export_round_trips_through_the_importer(operator_client, component, run_import, tmp_path):
    run_import(component, write_csv(tmp_path / "a.csv", [row(1), row(2, tags="")]))
    from listings.admin import ListingResource

    columns = {f"listingresource_{name}": "on" for name in ListingResource._meta.fields}
    response = operator_client.post("/admin/listings/listing/export/", {"format": "0", "resource": "0", **columns})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    exported = tmp_path / "export.csv"
    exported.write_bytes(response.content)
    job = run_import(component, exported)
    assert (job.status, job.unchanged_count, job.created_count, job.updated_count) == (ImportStatus.APPLIED, 2, 0, 0)


def test_analysts_cannot_upload(client, component):
    groups_sync()
    user = StaffUserFactory()
    user.groups.add(Group.objects.get(name="analyst"))
    client.force_login(user)
    assert client.get("/admin/listings/importjob/upload/").status_code == 403
    assert client.get("/admin/listings/importjob/").status_code == 200


def test_a_running_job_shows_live_progress(operator_client, component, tmp_path):
    from django.core.files import File

    from listings import importing, progress

    path = write_csv(tmp_path / "a.csv", [row(1)])
    with open(path, "rb") as handle:
        job = importing.listing_import_start(
            component=component, upload=File(handle, name="a.csv"), filename="a.csv", run_async=False
        )
    ImportJob.objects.filter(pk=job.pk).update(status=ImportStatus.RUNNING)
    progress.progress_set(job_id=job.pk, processed=4000, total=10000)
    body = operator_client.get(f"/admin/listings/importjob/{job.pk}/progress/").json()
    assert (body["finished"], body["processed"], body["total"], body["status"]) == (False, 4000, 10000, "running")
    page = operator_client.get(f"/admin/listings/importjob/{job.pk}/change/").content.decode()
    assert '<progress id="import-bar" max="10000" value="4000"' in page and "4000 of 10000 rows" in page


def test_the_listing_form_keeps_a_listing_in_its_own_component(operator_client, component):
    from tests.listings.factories import ListingFactory, ListingGroupFactory

    listing = ListingFactory(group=ListingGroupFactory(component=component, city="上海"))
    foreign = ListingGroupFactory(city="北京")
    response = operator_client.post(
        f"/admin/listings/listing/{listing.pk}/change/",
        {
            "component": component.pk,
            "group": foreign.pk,
            "external_id": listing.external_id,
            "title": "moved",
            "price_fen": "-5",
            "tags": "[]",
            "sort_order": "0",
            "is_active": "on",
        },
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "belongs to another listing component" in page and "must not be negative (got -5)" in page
    listing.refresh_from_db()
    assert listing.title != "moved" and listing.group.city == "上海"


def test_the_listing_form_refuses_formulas_as_the_upload_does(operator_client, component):
    from tests.listings.factories import ListingFactory, ListingGroupFactory

    listing = ListingFactory(group=ListingGroupFactory(component=component, city="上海"))
    response = operator_client.post(
        f"/admin/listings/listing/{listing.pk}/change/",
        {
            "component": component.pk,
            "group": listing.group_id,
            "external_id": listing.external_id,
            "title": '=HYPERLINK("http://evil")',
            "price_fen": "100",
            "tags": '["ok", "@SUM(A1)"]',  # the OWASP list, not only =
            "sort_order": "0",
            "is_active": "on",
        },
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "contains a formula (=HYPERLINK(&quot;http://evil&quot;))" in page
    assert "starts with &#x27;@&#x27; (@SUM(A1))" in page
    listing.refresh_from_db()
    assert not listing.title.startswith("=")


def test_an_import_job_page_with_a_malformed_or_unknown_id_redirects_instead_of_failing(operator_client):
    for object_id in ("abc", "99999999", "1%27"):
        response = operator_client.get(f"/admin/listings/importjob/{object_id}/change/")
        assert response.status_code == 302, object_id
