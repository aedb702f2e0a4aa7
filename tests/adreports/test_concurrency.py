"""The pull job pulls accounts concurrently, never more than AD_REPORTS_CONCURRENCY at once."""

from __future__ import annotations

from datetime import date

import pytest

from adreports import services
from adreports.models import AdReportRow, PullStatus
from tests.adreports.conftest import account_for
from tests.adreports.fakes import FakeAdPlatform, InFlight, wire_row

DAY = date(2026, 11, 20)


@pytest.mark.parametrize("concurrency", [1, 2])
def test_accounts_are_pulled_at_most_n_at_once(ad_settings, transactional_db, concurrency):
    ad_settings.AD_REPORTS_CONCURRENCY = concurrency
    # each report request waits (bounded) for one more request than allowed to arrive
    inflight = InFlight(overlap=concurrency + 1, wait=0.3)
    fake = FakeAdPlatform("tencent", inflight=inflight)
    ad_settings.AD_API_TENCENT_URL = fake.url
    try:
        fake.set_day(DAY, [wire_row("tencent", DAY, "1", "100", 500)])
        for n in range(4):
            account_for(fake, account_id=str(25610 + n))
        pulls = services.ad_reports_pull(start=DAY, end=DAY)
    finally:
        fake.stop()
    assert [p.status for p in pulls] == [PullStatus.SUCCEEDED] * 4, [p.error for p in pulls]
    assert AdReportRow.objects.count() == 4
    assert inflight.peak == concurrency
