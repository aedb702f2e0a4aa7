"""The partitions list in the admin (read-only, failures shown) and `export_raw`."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from core.services import ANALYST_GROUP, OPERATOR_GROUP, TECHNICAL_GROUP
from exports import services
from exports.models import Partition, PartitionStatus

pytestmark = pytest.mark.django_db


def test_a_failed_export_is_recorded_shown_in_the_admin_and_retried_to_done(settings, tmp_path, staff_client):
    hour = services.hour_floor(timezone.now() - timedelta(hours=3))
    settings.EXPORT_URL = str(tmp_path / "a-file")
    (tmp_path / "a-file").write_text("not a folder")  # the destination is broken
    with pytest.raises(Exception):  # noqa: B017 - whatever the filesystem raises
        services.partition_export(dataset="orders", hour=hour)
    failed = Partition.objects.get(dataset="orders", hour=hour)
    assert failed.status == PartitionStatus.FAILED and failed.error and failed.attempts == 1

    # Partitions are technical records: the technical group (on-call, data engineers)
    # sees the failure; it cannot add, change or delete one.
    technical = staff_client(TECHNICAL_GROUP)
    page = technical.get("/admin/exports/partition/?status=failed")
    assert page.status_code == 200 and b"orders" in page.content and failed.error[:30].encode() in page.content
    assert technical.get(f"/admin/exports/partition/{failed.pk}/change/").status_code == 200  # a read-only view
    assert technical.post(f"/admin/exports/partition/{failed.pk}/change/", {"rows": 5}).status_code == 403
    assert technical.get("/admin/exports/partition/add/").status_code == 403
    assert technical.post(f"/admin/exports/partition/{failed.pk}/delete/", {"post": "yes"}).status_code == 403
    # Campaign staff do not see them.
    assert staff_client(ANALYST_GROUP).get("/admin/exports/partition/").status_code == 403
    assert staff_client(OPERATOR_GROUP).get("/admin/exports/partition/").status_code == 403

    settings.EXPORT_URL = str(tmp_path / "export")  # fixed: the retry completes it
    from exports.tasks import partition_export_task

    partition_export_task.delay("orders", f"{hour:%Y-%m-%dT%H}")
    done = Partition.objects.get(pk=failed.pk)
    assert done.status == PartitionStatus.DONE and done.error == "" and done.attempts == 2


def test_export_raw_exports_every_dataset_of_an_hour_and_refuses_bad_input(settings, tmp_path):
    settings.EXPORT_URL = str(tmp_path)
    hour = services.hour_floor(timezone.now() - timedelta(hours=2))
    out = StringIO()
    call_command("export_raw", "--hour", f"{hour:%Y-%m-%dT%H}", stdout=out)
    assert Partition.objects.filter(hour=hour, status=PartitionStatus.DONE).count() == 9
    assert f"orders/dt={hour:%Y-%m-%d}/hour={hour:%H}: 0 rows" in out.getvalue()
    with pytest.raises(CommandError, match="YYYY-MM-DDTHH"):
        call_command("export_raw", "--hour", "2026-13-01 08")
    now = timezone.now()
    with pytest.raises(CommandError, match="not exported: clicks"):
        call_command("export_raw", "--hour", f"{now:%Y-%m-%dT%H}", "--dataset", "clicks", stderr=StringIO())
    call_command("export_raw", "--hour", f"{now:%Y-%m-%dT%H}", "--dataset", "clicks", "--force", stdout=out)
    assert Partition.objects.get(dataset="clicks", hour=services.hour_floor(now)).status == PartitionStatus.DONE
