"""A user claims the demo coupon pack on the activity page in a real browser."""

import io

import pytest
import requests

from core.auth import user_token_mint

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

BUTTON = ".hd-coupon-pack [data-claim]"


@pytest.fixture
def demo(live_server):
    """Seeded before the browser starts (Playwright's loop makes the ORM refuse to run)."""
    from activities import demo as activities_demo
    from core.services import groups_sync
    from coupons import demo as coupons_demo

    groups_sync()
    out = io.StringIO()
    activities_demo.seed(out)
    coupons_demo.seed(out)
    activities_demo.finalize(out)
    return live_server.url


def _button_says(page, text: str) -> None:
    page.wait_for_function(
        "([sel, text]) => { const b = document.querySelector(sel); return b && b.textContent.includes(text); }",
        arg=[BUTTON, text],
    )


def test_user_claims_the_demo_pack_up_to_the_limit(demo, browser_page):
    page = browser_page
    token = user_token_mint(user_id="browser-claimer")
    page.goto(f"{demo}/a/demo/#token={token}")
    page.wait_for_function(f"() => {{ const b = document.querySelector('{BUTTON}'); return b && !b.disabled; }}")
    assert page.locator(BUTTON).inner_text() == "一键领取"
    assert page.locator(".hd-coupon-pack [data-remaining]").inner_text() == "995"
    assert page.locator(".hd-coupon-pack [data-coupon]").count() == 3

    page.locator(BUTTON).click()
    page.locator(".hd-coupon-pack [data-issued-code]").nth(2).wait_for()
    assert "领取成功" in page.locator(".hd-coupon-pack [data-message]").inner_text()
    _button_says(page, "已领 1 次")
    assert page.locator(".hd-coupon-pack [data-remaining]").inner_text() == "994"

    page.locator(BUTTON).click()
    _button_says(page, "已领取")
    assert page.locator(BUTTON).is_disabled()
    assert page.locator(".hd-coupon-pack [data-issued-code]").count() == 6

    wallet = requests.get(
        f"{demo}/api/v1/me/coupons?status=unused", headers={"Authorization": f"Bearer {token}"}, timeout=10
    ).json()
    assert wallet["count"] == 6
    issued = set(page.eval_on_selector_all("[data-issued-code]", "els => els.map(e => e.dataset.issuedCode)"))
    assert issued == {c["code"] for c in wallet["results"]}


def test_anonymous_visitor_is_asked_to_log_in(demo, browser_page):
    page = browser_page
    page.goto(f"{demo}/a/demo/")
    page.wait_for_function(f"() => {{ const b = document.querySelector('{BUTTON}'); return b && !b.disabled; }}")
    page.locator(BUTTON).click()
    assert "请先登录" in page.locator(".hd-coupon-pack [data-message]").inner_text()


def test_a_claim_whose_answer_was_lost_is_retried_with_the_same_key_and_issued_once(demo, browser_page):
    page = browser_page
    token = user_token_mint(user_id="browser-retry")
    keys = []

    def lose_the_first_answer(route):
        keys.append(route.request.headers.get("idempotency-key"))
        response = route.fetch()  # the claim reaches the server and commits
        if len(keys) == 1:
            route.fulfill(status=502, body="Bad Gateway")  # ...but a gateway loses the answer
        else:
            route.fulfill(response=response)

    page.route("**/api/v1/components/*/claim", lose_the_first_answer)
    page.goto(f"{demo}/a/demo/#token={token}")
    page.wait_for_function(f"() => {{ const b = document.querySelector('{BUTTON}'); return b && !b.disabled; }}")
    page.locator(BUTTON).click()
    page.wait_for_function(
        "() => document.querySelector('.hd-coupon-pack [data-message]').textContent.includes('网络异常')"
    )
    page.locator(BUTTON).click()
    page.locator(".hd-coupon-pack [data-issued-code]").nth(2).wait_for()
    assert len(keys) == 2 and keys[0] == keys[1]
    wallet = requests.get(f"{demo}/api/v1/me/coupons", headers={"Authorization": f"Bearer {token}"}, timeout=10).json()
    assert wallet["count"] == 3  # one pack, though the demo's limit would allow two
