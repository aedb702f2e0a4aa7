"""The API docs work in a real browser under our Content-Security-Policy: Swagger UI
comes from our own origin (no CDN) and runs without inline script or eval."""

import pytest


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_swagger_ui_renders_the_operations_under_the_csp(live_server, browser_page):
    violations, outside = [], []
    browser_page.on("console", lambda msg: "Content Security Policy" in msg.text and violations.append(msg.text))
    browser_page.on("request", lambda request: request.url.startswith(live_server.url) or outside.append(request.url))
    browser_page.goto(live_server.url + "/api/docs/")
    browser_page.wait_for_selector(".opblock-summary-path")
    assert "/api/v1/activities/{slug}" in browser_page.content()
    assert violations == [] and outside == []
