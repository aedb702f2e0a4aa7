"""An operator opens the analytics dashboard in a real browser: charts render from our
own static files under the CSP, a filter changes the figures, a table exports as CSV;
an analyst sees the same page without write controls."""

from datetime import timedelta

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHARTS = ("series", "funnel", "ctit", "os", "links", "campaigns")


@pytest.fixture
def dashboard_site(live_server):
    """Seeded before the browser starts (Playwright's loop makes the ORM refuse to run)."""
    from django.contrib.auth.models import Group
    from django.utils import timezone

    from core.services import ANALYST_GROUP, OPERATOR_GROUP, groups_sync
    from tests.analytics.dashboard_data import seed_dashboard
    from tests.factories import ActivityFactory, StaffUserFactory

    groups_sync()
    seed_dashboard(activity=ActivityFactory())
    for name, group in (("dash-operator", OPERATOR_GROUP), ("dash-analyst", ANALYST_GROUP)):
        StaffUserFactory(username=name).groups.add(Group.objects.get(name=group))
    today = timezone.localdate()
    return live_server.url, f"from={today - timedelta(days=1)}&to={today}&granularity=day"


def _log_in(page, site: str, username: str) -> None:
    page.goto(f"{site}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "pw-for-tests-2026")
    page.click("input[type=submit]")
    page.wait_for_selector("#analytics-today")


def _watch(page, site: str):
    problems = []
    # the browser's own favicon request is the only 404 allowed; every other failure counts
    page.on("console", lambda msg: msg.type == "error" and "404" not in msg.text and problems.append(msg.text))
    page.on(
        "response",
        lambda r: r.status >= 400 and not r.url.endswith("/favicon.ico") and problems.append(f"{r.status} {r.url}"),
    )
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("request", lambda request: request.url.startswith(site) or problems.append("outside: " + request.url))
    return problems


def _charts_render(page) -> None:
    for name in CHARTS:
        page.wait_for_selector(f"#chart-{name} canvas")


def test_operator_filters_the_dashboard_and_exports_csv(dashboard_site, browser_page):
    site, query = dashboard_site
    page = browser_page
    page.set_viewport_size({"width": 1400, "height": 1000})
    problems = _watch(page, site)
    _log_in(page, site, "dash-operator")
    assert page.locator('#analytics-today [data-figure="clicks"]').inner_text() == "600"
    page.click("#analytics-today a.section")
    page.wait_for_selector("#dashboard-filters")
    page.goto(f"{site}/admin/analytics/linkrollup/dashboard/?{query}")
    _charts_render(page)
    assert page.locator('#dashboard-totals [data-figure="clicks"]').inner_text() == "900"

    page.select_option("select[name=os]", "android")
    page.click("#dashboard-filters input[type=submit]")
    page.wait_for_url("**os=android**")
    _charts_render(page)
    assert page.locator('#dashboard-totals [data-figure="clicks"]').inner_text() == "300"
    assert page.locator("#table-links tbody tr").count() == 1

    page.locator("#table-series th", has_text="clicks").click()
    assert page.locator("#table-series tbody tr").first.locator("td").nth(1).inner_text() == "200"

    with page.expect_download() as download:
        page.click("[data-export=links-csv]")
    with open(download.value.path(), encoding="utf-8-sig") as file:
        text = file.read()
    assert text.splitlines()[0].startswith("link,campaign,platform,clicks") and ",300," in text
    assert problems == []


def test_analyst_sees_the_dashboard_without_write_controls(dashboard_site, browser_page):
    site, query = dashboard_site
    page = browser_page
    problems = _watch(page, site)
    _log_in(page, site, "dash-analyst")
    page.goto(f"{site}/admin/analytics/linkrollup/dashboard/?{query}")
    _charts_render(page)
    assert page.locator('#dashboard-totals [data-figure="clicks"]').inner_text() == "900"
    assert page.locator("#content form[method=post], #content input[type=submit][value=Save]").count() == 0
    assert page.locator("#content a.addlink").count() == 0
    assert problems == []
