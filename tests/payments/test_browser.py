"""A user buys the demo product in a real browser: the activity page, the
sandbox cashier, back to the page showing the entitlement."""

import io

import pytest
import requests

from core.auth import user_token_mint

pytestmark = [pytest.mark.browser, pytest.mark.broker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def demo(settings, live_server):
    """Seeded before the browser starts (Playwright's loop makes the ORM refuse to run)."""
    from activities import demo as activities_demo
    from core.services import groups_sync
    from payments import demo as payments_demo

    groups_sync()
    out = io.StringIO()
    activities_demo.seed(out)
    payments_demo.seed(out)
    activities_demo.finalize(out)
    settings.PAYMENT_SERVICE_URL = live_server.url + "/sandbox/pay"
    return live_server.url


def test_user_buys_the_demo_product_through_the_sandbox_cashier(demo, events, browser_page):
    page = browser_page
    token = user_token_mint(user_id="browser-buyer")
    page.goto(f"{demo}/a/demo/#token={token}")
    buy = page.locator(".hd-paid-sale [data-buy]")
    page.wait_for_function(
        "() => { const b = document.querySelector('.hd-paid-sale [data-buy]'); return b && !b.disabled; }"
    )
    assert buy.inner_text() == "立即购买"
    assert page.locator(".hd-paid-sale [data-remaining]").inner_text() == "500"

    buy.click()
    page.wait_for_url("**/sandbox/pay/cashier/**")
    assert page.locator("[data-amount]").inner_text() == "9.90"
    page.get_by_role("button", name="pay with Alipay (sandbox)").click()

    page.wait_for_url("**/a/demo/**")
    entitlement = page.locator(".hd-paid-sale [data-entitlement]")
    entitlement.first.wait_for(timeout=20000)
    assert "VIP 月卡" in entitlement.first.inner_text() and "有效期至" in entitlement.first.inner_text()
    page.wait_for_function(
        "() => document.querySelector('.hd-paid-sale [data-buy]').textContent.includes('已达限购数量')"
    )

    held = requests.get(
        f"{demo}/api/v1/me/entitlements", headers={"Authorization": f"Bearer {token}"}, timeout=10
    ).json()
    assert held["count"] == 1 and held["results"][0]["kind"] == "membership"


def test_a_retry_after_a_lost_answer_reuses_the_idempotency_key_and_gets_the_same_order(demo, browser_page):
    page = browser_page
    token = user_token_mint(user_id="browser-retrier")
    keys: list[str] = []

    def lose_the_first_answer(route):
        keys.append(route.request.headers["idempotency-key"])
        if len(keys) == 1:
            route.fetch()  # the order is placed on the server...
            route.abort()  # ...and its answer never reaches the page
        else:
            route.continue_()

    page.route("**/api/v1/components/*/orders", lose_the_first_answer)
    page.goto(f"{demo}/a/demo/#token={token}")
    page.wait_for_function(
        "() => { const b = document.querySelector('.hd-paid-sale [data-buy]'); return b && !b.disabled; }"
    )
    buy = page.locator(".hd-paid-sale [data-buy]")
    buy.click()
    page.wait_for_function(
        "() => document.querySelector('.hd-paid-sale [data-message]').textContent.includes('网络异常')"
    )
    buy.click()
    page.wait_for_url("**/sandbox/pay/cashier/**")
    assert len(keys) == 2 and keys[0] == keys[1]
    orders = requests.get(f"{demo}/api/v1/me/orders", headers={"Authorization": f"Bearer {token}"}, timeout=10).json()
    assert orders["count"] == 1 and page.url.startswith(orders["results"][0]["cashier_url"])
