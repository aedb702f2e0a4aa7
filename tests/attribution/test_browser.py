"""An operator copies a demo click URL from the admin, the ad platform calls it, and
the operator traces the device in a real browser."""

import io
from urllib.parse import urlsplit

import pytest
import requests

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

IDFA = "6D92078A-8246-4BA4-AE5B-76104861E7DC"


@pytest.fixture
def operator_site(live_server):
    """Seeded before the browser starts (Playwright's loop makes the ORM refuse to run)."""
    from attribution import demo
    from tests.factories import StaffUserFactory

    demo.seed(io.StringIO())
    StaffUserFactory(username="att-operator", is_superuser=True)
    return live_server.url


def test_operator_pastes_click_url_and_traces_the_device(operator_site, browser_page):
    page = browser_page
    page.goto(f"{operator_site}/admin/login/")
    page.fill("#id_username", "att-operator")
    page.fill("#id_password", "pw-for-tests-2026")
    page.click("input[type=submit]")
    page.goto(f"{operator_site}/admin/attribution/trackinglink/?platform__exact=oceanengine")
    page.locator("#result_list tbody tr th a").first.click()
    template = page.locator("textarea[readonly]").input_value()
    assert "idfa=__IDFA__" in template and "callback=__CALLBACK_PARAM__" in template

    # the ad platform replaces its macros and calls the URL
    parts = urlsplit(template)
    url = operator_site + parts.path + "?" + parts.query
    for macro, value in {
        "__IDFA__": IDFA,
        "__OS__": "1",
        "__IP__": "203.0.113.7",
        "__UA__": "Mozilla%2F5.0",
        "__CALLBACK_PARAM__": "EJiw267wvfQCGKf2g74ZIPD89",
        "__TS__": "1764210902123",
    }.items():
        url = url.replace(macro, value)
    answer = requests.get(url, timeout=10)
    assert answer.status_code == 200 and answer.json() == {"code": 0}

    page.goto(f"{operator_site}/admin/attribution/matchtrace/")
    page.click("text=Trace a device")
    page.fill("#id_app_id", "com.kuaipao.app")
    page.fill("#id_idfa", IDFA.lower())
    page.click("input[value=Trace]")
    assert page.locator("#verdict").inner_text() == "matched by idfa"
    assert "last click before the activation" in page.locator("#content table").last.inner_text()
