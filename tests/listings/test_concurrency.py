"""Imports into one component at the same time, from truly concurrent clients
(threads with their own database connections)."""

from __future__ import annotations

import threading

import pytest
from django.core.files import File
from django.db import connection

from listings import importing, services
from listings.models import ImportStatus, Listing, ListingGroup
from tests.listings.factories import ListingComponentFactory
from tests.listings.files import row, write_csv


@pytest.mark.django_db(transaction=True)
def test_concurrent_imports_into_one_component_serialize_cleanly(tmp_path):
    component = ListingComponentFactory()
    # Overlapping ids and the same new cities in both files.
    files = [
        write_csv(tmp_path / "a.csv", [row(n, city=["上海", "北京", "深圳"][n % 3]) for n in range(0, 1500)]),
        write_csv(
            tmp_path / "b.csv", [row(n, city=["上海", "北京", "深圳"][n % 3], title=f"B{n}") for n in range(500, 2000)]
        ),
    ]
    jobs = []
    for path in files:
        with open(path, "rb") as handle:
            jobs.append(
                importing.listing_import_start(
                    component=component, upload=File(handle, name=path.name), filename=path.name, run_async=False
                )
            )
    results: dict[int, object] = {}
    barrier = threading.Barrier(len(jobs))

    def work(job_id: int) -> None:
        try:
            barrier.wait()
            results[job_id] = importing.listing_import_run(job_id=job_id)
        except Exception as exc:  # surfaced by the assertion below
            results[job_id] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(job.pk,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)

    statuses = {job_id: getattr(result, "status", result) for job_id, result in results.items()}
    assert set(statuses.values()) == {ImportStatus.APPLIED}, statuses
    assert Listing.objects.filter(component=component).count() == 2000
    assert sorted(ListingGroup.objects.filter(component=component).values_list("city", flat=True)) == [
        "上海",
        "北京",
        "深圳",
    ]
    # batches of the two imports interleave (each under the component's lock): every id
    # is created exactly once, by whichever batch came first
    assert sum(result.created_count for result in results.values()) == 2000
    assert sum(r.created_count + r.updated_count + r.unchanged_count for r in results.values()) == 3000


@pytest.mark.django_db(transaction=True)
def test_a_city_saved_during_an_import_proceeds_and_the_import_uses_its_group(tmp_path, monkeypatch):
    """An applying import commits batch by batch: a listing_save between two batches
    does not wait for the whole import, and the next batch sees the group it created
    (under the component's row lock) instead of creating a second one."""
    monkeypatch.setattr("listings.importing.write.BATCH_SIZE", 5)
    monkeypatch.setattr("listings.importing.write.WRITE_BATCH_SIZE", 5)
    component = ListingComponentFactory()
    path = write_csv(tmp_path / "a.csv", [row(n, city="上海" if n < 5 else "杭州") for n in range(10)])
    with open(path, "rb") as handle:
        job = importing.listing_import_start(
            component=component, upload=File(handle, name=path.name), filename=path.name, run_async=False
        )
    first_batch_written = threading.Event()
    saved = threading.Event()
    passes = []
    results: dict[str, object] = {}

    def pause_after_first_batch(processed: int, total: int | None) -> None:
        if processed == 5:
            passes.append(processed)
            if len(passes) == 2:  # the writing pass (the first pass only reads), first batch committed
                first_batch_written.set()
                saved.wait(30)  # the save below runs now, while the import still has 杭州 ahead of it

    def run(name, fn) -> None:
        try:
            results[name] = fn()
        except Exception as exc:  # surfaced by the assertion below
            results[name] = exc
        finally:
            connection.close()

    def save():
        assert first_batch_written.wait(30)
        try:
            return services.listing_save(
                component=component, city="杭州", external_id="HZ-LIVE", title="t", price_fen=1
            )
        finally:
            saved.set()

    threads = [
        threading.Thread(
            target=run,
            args=("import", lambda: importing.listing_import_run(job_id=job.pk, progress=pause_after_first_batch)),
        ),
        threading.Thread(target=run, args=("save", save)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert getattr(results["import"], "status", results["import"]) == ImportStatus.APPLIED, results
    assert not isinstance(results["save"], Exception), results
    assert list(ListingGroup.objects.filter(component=component).values_list("city", flat=True)) == ["上海", "杭州"]
    assert Listing.objects.filter(component=component, group__city="杭州").count() == 6


def _import_in_thread(job_id: int, progress) -> tuple[threading.Thread, dict]:
    result: dict[str, object] = {}

    def work() -> None:
        try:
            result["job"] = importing.listing_import_run(job_id=job_id, progress=progress)
        except Exception as exc:  # surfaced by the assertions of the test
            result["job"] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=work)
    thread.start()
    return thread, result


def _start(component, path, **options):
    with open(path, "rb") as handle:
        return importing.listing_import_start(
            component=component, upload=File(handle, name=path.name), filename=path.name, run_async=False, **options
        )


@pytest.mark.django_db(transaction=True)
def test_a_coupon_claim_during_an_import_of_100k_rows_succeeds(tmp_path):
    """The import commits batch by batch, so a claim (another writer; on SQLite the
    only writer at a time) goes through in the middle of a 100,000-row import."""
    from coupons.services import coupon_pack_claim
    from tests.coupons.factories import coupon_pack_make

    pack = coupon_pack_make()
    component = ListingComponentFactory()
    total = 100_000
    # Partial mode writes in its one pass (all-or-nothing reads the file once first, the
    # pass test_a_dry_run_takes_no_write_lock covers): the suite reads 100k rows once.
    rows = [row(n, city=f"城{n % 7}") for n in range(total)]
    job = _start(component, write_csv(tmp_path / "big.csv", rows), all_or_nothing=False)
    importing, claimed = threading.Event(), threading.Event()
    seen = []

    def progress(processed: int, _total: int | None) -> None:
        if processed == total // 2:  # half-way: the batches before this point are committed
            seen.append(connection.in_atomic_block)
            importing.set()
            claimed.wait(60)

    thread, result = _import_in_thread(job.pk, progress)
    try:
        assert importing.wait(300), result
        claim = coupon_pack_claim(component_id=pack.component_id, user_id="claims-during-import")
        assert Listing.objects.filter(component=component).count() == total // 2  # committed so far
    finally:
        claimed.set()
        thread.join(300)
    assert claim.pk and claim.user_id == "claims-during-import"
    assert seen == [False]  # no transaction is held between batches
    assert getattr(result["job"], "status", result["job"]) == ImportStatus.APPLIED, result
    assert result["job"].created_count == total == Listing.objects.filter(component=component).count()


@pytest.mark.django_db(transaction=True)
def test_a_dry_run_takes_no_write_lock(tmp_path, monkeypatch):
    from coupons.services import coupon_pack_claim
    from tests.coupons.factories import coupon_pack_make

    monkeypatch.setattr("listings.importing.write.BATCH_SIZE", 5)
    pack = coupon_pack_make()
    component = ListingComponentFactory()
    job = _start(component, write_csv(tmp_path / "a.csv", [row(n) for n in range(20)]), dry_run=True)
    previewing, claimed = threading.Event(), threading.Event()
    seen = []

    def progress(processed: int, _total: int | None) -> None:
        if processed == 10:
            seen.append(connection.in_atomic_block)
            previewing.set()
            claimed.wait(60)

    thread, result = _import_in_thread(job.pk, progress)
    try:
        assert previewing.wait(60)
        claim = coupon_pack_claim(component_id=pack.component_id, user_id="claims-during-dry-run")
    finally:
        claimed.set()
        thread.join(60)
    assert claim.pk and seen == [False]
    assert (result["job"].status, result["job"].created_count) == (ImportStatus.PREVIEWED, 20)
    assert not Listing.objects.filter(component=component).exists()
    if connection.vendor == "sqlite":  # WAL: readers and the one writer never wait for each other
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA journal_mode")
            assert cursor.fetchone()[0] == "wal"
