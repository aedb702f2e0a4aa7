"""Imports into one component at the same time, from truly concurrent clients
(threads with their own database connections)."""

from __future__ import annotations

import threading

import pytest
from django.core.files import File
from django.db import connection

from listings import services
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
                services.listing_import_start(
                    component=component, upload=File(handle, name=path.name), filename=path.name, run_async=False
                )
            )
    results: dict[int, object] = {}
    barrier = threading.Barrier(len(jobs))

    def work(job_id: int) -> None:
        try:
            barrier.wait()
            results[job_id] = services.listing_import_run(job_id=job_id)
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
    created = sorted(result.created_count for result in results.values())
    assert created == [500, 1500]  # whoever ran second created only the ids the first had not
    assert sum(r.created_count + r.updated_count + r.unchanged_count for r in results.values()) == 3000


@pytest.mark.django_db(transaction=True)
def test_a_city_saved_during_an_import_waits_for_it_instead_of_breaking_it(tmp_path, monkeypatch):
    """listing_save takes no lock of its own: inserting a group or listing checks its
    foreign key to the component row, which the import holds FOR UPDATE (InnoDB), and
    SQLite has one writer at a time."""
    import time

    monkeypatch.setattr(services, "BATCH_SIZE", 5)
    component = ListingComponentFactory()
    path = write_csv(tmp_path / "a.csv", [row(n, city="上海" if n < 5 else "杭州") for n in range(10)])
    with open(path, "rb") as handle:
        job = services.listing_import_start(
            component=component, upload=File(handle, name=path.name), filename=path.name, run_async=False
        )
    first_batch_written = threading.Event()
    results: dict[str, object] = {}

    def pause_after_first_batch(processed: int, total: int | None) -> None:
        if processed == 5 and not first_batch_written.is_set():
            first_batch_written.set()
            time.sleep(1)  # the save below runs now, while the import still has 杭州 ahead of it

    def run(name, fn) -> None:
        try:
            results[name] = fn()
        except Exception as exc:  # surfaced by the assertion below
            results[name] = exc
        finally:
            connection.close()

    def save():
        assert first_batch_written.wait(30)
        return services.listing_save(component=component, city="杭州", external_id="HZ-LIVE", title="t", price_fen=1)

    threads = [
        threading.Thread(
            target=run,
            args=("import", lambda: services.listing_import_run(job_id=job.pk, progress=pause_after_first_batch)),
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
