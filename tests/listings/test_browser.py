"""A visitor browses the demo listings by city on the activity page in a real browser."""

import io

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ROOT = ".hd-listing"


@pytest.fixture
def demo(live_server):
    """Seeded before the browser starts (Playwright's loop makes the ORM refuse to run)."""
    from activities import demo as activities_demo
    from components.models import Component
    from listings import demo as listings_demo
    from listings.services import listing_save

    out = io.StringIO()
    activities_demo.seed(out)
    listings_demo.seed(out)
    activities_demo.finalize(out)
    component = Component.objects.get(activity__slug="demo", type="listing")
    for n in range(30):  # added after publishing: listings are live; 6 shown per city
        listing_save(
            component=component, city="深圳", external_id=f"SZ{n}", title=f"深圳房源 {n}", price_fen=100_00 + n
        )
    return live_server.url


def test_visitor_switches_city_tabs(demo, browser_page):
    page = browser_page
    page.goto(f"{demo}/a/demo/")
    page.locator(f"{ROOT} .hd-listing__tab").nth(3).wait_for()
    tabs = page.locator(f"{ROOT} .hd-listing__tab").all_inner_texts()
    assert tabs == ["上海 (4)", "北京 (3)", "杭州 (3)", "深圳 (6)"]  # configured order, capped count
    assert page.locator(f'{ROOT} .hd-listing__tab[aria-selected="true"]').inner_text() == "上海 (4)"
    page.locator(f"{ROOT} [data-listing]").nth(3).wait_for()
    assert page.locator(f"{ROOT} [data-listing]").count() == 4
    assert "¥" in page.locator(f"{ROOT} .hd-listing__price").first.inner_text()

    page.locator(f"{ROOT} .hd-listing__tab", has_text="北京").click()
    page.wait_for_function(
        "() => document.querySelectorAll('.hd-listing [data-listing]').length === 3"
        " && document.querySelector('.hd-listing [data-listing]').getAttribute('data-listing').startsWith('DEMO-2')"
    )
    page.locator(f"{ROOT} .hd-listing__tab", has_text="深圳").click()
    page.wait_for_function("() => document.querySelectorAll('.hd-listing [data-listing]').length === 6")
    assert page.locator(f"{ROOT} [data-more]").is_hidden()  # 6 per city fit on one page
