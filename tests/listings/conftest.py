from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files import File

from listings import importing
from tests.listings.factories import ListingComponentFactory


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture
def component(db):
    return ListingComponentFactory()


@pytest.fixture
def run_import():
    """Upload a file through the service and run its job in this process."""

    def run(component, path: Path, **options):
        with open(path, "rb") as handle:
            job = importing.listing_import_start(
                component=component, upload=File(handle, name=path.name), filename=path.name, run_async=False, **options
            )
        return importing.listing_import_run(job_id=job.pk)

    return run
