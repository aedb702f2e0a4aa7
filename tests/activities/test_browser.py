"""An operator builds, publishes and edits an activity in a real browser."""

import pytest

from core.management.commands.seed_demo import DEMO_LOGINS
from core.services import groups_sync, staff_user_ensure

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _public_types(page, url):
    page.goto(url)
    return page.eval_on_selector_all("[data-component-type]", "els => els.map(e => e.dataset.componentType)")


def _add_component(page, type_key, fields):
    page.click(f'a.hd-add-component[data-type="{type_key}"]')
    for name, value in fields.items():
        page.fill(f'[name="{name}"]', value)
    page.click('input[name="_save"]')
    page.wait_for_selector(".hd-components")


def _publish(page):
    """Publish through the checklist: read it, confirm the warnings, publish."""
    page.click("#hd-publish")
    page.wait_for_selector(".hd-check")
    if page.locator("#hd-confirm-warnings").count():
        page.check("#hd-confirm-warnings")
    page.click("#hd-confirm-publish")
    page.wait_for_selector(".messagelist .success")


@pytest.fixture
def demo_operator():
    """Made before the browser starts (Playwright's loop makes the ORM refuse to run)."""
    groups_sync()
    username, password, group = DEMO_LOGINS[0]
    staff_user_ensure(username=username, password=password, group=group)
    return username, password


def test_operator_builds_publishes_and_edits_an_activity(live_server, demo_operator, browser_page):
    username, password = demo_operator
    page = browser_page
    base = live_server.url

    page.goto(f"{base}/admin/login/?next=/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click('input[type="submit"]')
    page.wait_for_selector("#content")

    page.goto(f"{base}/admin/activities/activity/add/")
    page.fill("#id_name", "Browser sale")
    page.fill("#id_slug", "browser-sale")
    page.fill("#id_ends_at_0", "2030-01-01")
    page.fill("#id_ends_at_1", "00:00:00")
    page.click('input[name="_continue"]')
    page.wait_for_selector("a.hd-add-component")

    _add_component(page, "banner", {"title": "Top banner", "cfg_image": "https://img.example.com/top.png"})
    _add_component(page, "rich_text", {"title": "Rules", "cfg_html": "<p>Rules here</p><script>alert(1)</script>"})
    _add_component(page, "countdown", {})

    # move the rules (second row) to the top, then save the order
    rows = page.locator(".hd-components tr.form-row.has_original")
    assert rows.count() == 3
    rows.nth(1).locator("button.hd-up").click()
    assert page.input_value(".hd-components tr.form-row.has_original >> nth=0 >> input.hd-position") == "1"
    page.click('input[name="_continue"]')
    page.wait_for_selector("#hd-publish")
    _publish(page)

    public = f"{base}/a/browser-sale/"
    assert _public_types(page, public) == ["rich_text", "banner", "countdown"]
    assert "Rules here" in page.inner_text(".hd-rich-text")
    assert "天" in page.inner_text(".hd-countdown__value")  # the countdown script ticks
    assert page.evaluate("typeof window.Huodong.refresh") == "function"

    # edit the rules and disable nothing: users keep seeing the published page
    page.goto(f"{base}/admin/activities/activity/")
    page.click("text=Browser sale")
    page.locator(".hd-components tr.form-row.has_original >> nth=0").locator("a.hd-edit-settings").click()
    page.fill('[name="cfg_html"]', "<p>New rules</p>")
    page.click('input[name="_save"]')
    page.wait_for_selector("#hd-publish")
    page.goto(public)
    assert "Rules here" in page.inner_text(".hd-rich-text")

    page.go_back()
    _publish(page)
    assert _public_types(page, public) == ["rich_text", "banner", "countdown"]
    assert "New rules" in page.inner_text(".hd-rich-text")
