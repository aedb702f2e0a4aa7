"""The analytics dashboard: figures are sums of the hourly rollups, rates come from the
sums, filters narrow them, tables export safely, analysts read, nobody else."""

import csv
import io
from datetime import timedelta

import openpyxl
import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.utils import timezone

from analytics import dashboard
from core.services import ANALYST_GROUP, OPERATOR_GROUP, groups_sync
from tests.analytics.dashboard_data import seed_dashboard
from tests.factories import ActivityFactory, StaffUserFactory

pytestmark = pytest.mark.django_db

URL = "/admin/analytics/linkrollup/dashboard/"


def _client(group: str | None) -> Client:
    groups_sync()
    user = StaffUserFactory(username=f"dash-{group}")
    if group:
        user.groups.add(Group.objects.get(name=group))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def seeded():
    activity = ActivityFactory()
    ios, android = seed_dashboard(activity=activity)
    return activity, ios, android


def _params(**extra):
    today = timezone.localdate()
    return {"from": str(today - timedelta(days=1)), "to": str(today), "granularity": "day", **extra}


def test_figures_are_sums_of_the_hourly_rows_and_rates_come_from_sums(seeded):
    activity, ios, android = seeded
    data = dashboard.dashboard_data(filters=dashboard.filters_parse(_params()))
    # 2 hours x (100 + 50) clicks yesterday, twice that today
    assert data["totals"]["clicks"] == 2 * 150 + 2 * 300
    assert data["totals"]["attributed"] == 2 * 12 + 2 * 24
    assert data["totals"]["attribution_rate"] == round(72 / 900, 4)
    # of the attributed: flagged 2 an iOS hour (x2 today), rejected 1 (x2 today); none on Android
    assert (data["totals"]["fraud_flagged"], data["totals"]["fraud_rejected"]) == (2 * 2 + 2 * 4, 2 * 1 + 2 * 2)
    assert data["totals"]["fraud_rate"] == round(18 / 72, 4)
    assert [(lk["fraud_flagged"], lk["fraud_rejected"]) for lk in data["links"]] == [(12, 6), (0, 0)]
    assert [s["value"] for s in data["funnel"]] == [900, 2 * 14 + 2 * 28, 4 * 12, 8]
    assert data["ctit"][0]["value"] == 2 * 2 + 2 * 4
    assert [p["clicks"] for p in data["series"]] == [300, 600]
    assert {o["os"]: o["clicks"] for o in data["os"]} == {"ios": 600, "android": 300}
    assert [link["link_id"] for link in data["links"]] == [ios.id, android.id]
    assert data["campaigns"] == [
        {
            "activity_id": activity.id,
            "name": activity.name,
            "page_views": 40,
            "unique_visitors": 30,
            "claims": 7,
            "redemptions": 0,
            "orders_placed": 3,
            "orders_paid": 2,
            "revenue_fen": 3980,
        }
    ]


def test_filters_narrow_the_figures(seeded):
    activity, _ios, android = seeded
    by_os = dashboard.dashboard_data(filters=dashboard.filters_parse(_params(os="android")))
    assert by_os["totals"]["clicks"] == 300 and [lk["link_id"] for lk in by_os["links"]] == [android.id]
    by_activity = dashboard.dashboard_data(filters=dashboard.filters_parse(_params(activity=str(activity.id))))
    assert by_activity["totals"]["clicks"] == 600
    today_only = dashboard.dashboard_data(
        filters=dashboard.filters_parse({**_params(), "from": str(timezone.localdate()), "granularity": "hour"})
    )
    assert today_only["totals"]["clicks"] == 600 and len(today_only["series"]) == 24
    assert today_only["series"][9]["clicks"] == 300 and today_only["series"][9]["at"].endswith("09:00")
    platform = dashboard.dashboard_data(filters=dashboard.filters_parse(_params(platform="oceanengine", link="x")))
    assert platform["totals"]["clicks"] == 600


def test_bad_filters_fall_back_and_say_so():
    filters = dashboard.filters_parse({"from": "2026-13-01", "to": "nope", "granularity": "minute", "link": "-1"})
    assert filters.end == timezone.localdate() and filters.granularity == "day" and filters.link_id is None
    assert len(filters.errors) == 2
    wide = dashboard.filters_parse({"from": "2020-01-01", "to": "2026-01-01"})
    assert (wide.end - wide.start).days == 13 and wide.errors


def test_operator_page_json_and_index_figures(seeded):
    client = _client(OPERATOR_GROUP)
    page = client.get(URL, _params())
    assert page.status_code == 200
    body = page.content.decode()
    assert 'id="dashboard-data"' in body and "echarts.min.js" in body and "<script>" not in body
    assert 'data-figure="fraud">12 / 6 <small>(25&thinsp;%)</small>' in body  # of 72 attributed
    assert (
        client.get(URL.replace("dashboard/", "dashboard/data.json"), _params(os="ios")).json()["totals"]["clicks"]
        == 600
    )
    index = client.get("/admin/").content.decode()
    assert 'id="analytics-today"' in index and URL in index
    assert '<td data-figure="clicks">600</td>' in index


def test_exports_are_csv_and_xlsx_with_formulas_neutralised(seeded):
    client = _client(ANALYST_GROUP)
    answer = client.get(URL + "export/links.csv", _params())
    assert answer.status_code == 200 and answer["Content-Disposition"].startswith("attachment")
    rows = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))
    assert rows[0][:4] == ["link", "campaign", "platform", "clicks"]
    assert rows[0][7:9] == ["fraud flagged", "fraud rejected"] and rows[1][7:9] == ["12", "6"]
    assert rows[2][1] == "'=Dash Android" and rows[1][3] == "600"
    book = openpyxl.load_workbook(io.BytesIO(client.get(URL + "export/campaigns.xlsx", _params()).content))
    sheet = book.active
    assert [c.value for c in sheet[2]][-1] == 3980
    assert client.get(URL + "export/users.csv").status_code == 404


def test_analyst_reads_without_write_controls_and_others_are_refused(seeded):
    analyst = _client(ANALYST_GROUP)
    page = analyst.get(URL, _params()).content.decode()
    content = page.split('id="content"', 1)[1]
    assert 'method="post"' not in content.lower() and "Analytics dashboard" in content
    nobody = _client(None)
    assert nobody.get(URL).status_code == 403
    assert nobody.get(URL + "export/links.csv").status_code == 403
    assert 'id="analytics-today"' not in nobody.get("/admin/").content.decode()
