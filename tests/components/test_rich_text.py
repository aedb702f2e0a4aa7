import pytest

from activities import services
from components.html import html_sanitize
from tests.factories import StaffUserFactory

pytestmark = pytest.mark.django_db

EVIL = (
    '<p onclick="alert(11)">Hi <b>there</b></p><script>alert(12)</script>'
    '<img src="https://img.example.com/x.png" onerror="alert(13)">'
    '<a href="javascript:alert(14)">link</a><iframe src="https://evil.example.com"></iframe>'
    '<style>body{display:none}</style><svg onload="alert(15)"></svg>'
)


def test_sanitiser_keeps_formatting_and_drops_everything_active():
    clean = html_sanitize(EVIL)
    assert "<b>there</b>" in clean and 'src="https://img.example.com/x.png"' in clean
    for bad in ("alert(", "<script", "onclick", "onerror", "javascript:", "<iframe", "<style", "onload"):
        assert bad not in clean


def test_a_script_in_rich_text_never_reaches_the_page_or_the_api(
    client, api_client, django_capture_on_commit_callbacks
):
    operator = StaffUserFactory()
    activity = services.activity_create(actor=operator, name="XSS", slug="xss")
    services.component_create(activity=activity, actor=operator, type="rich_text", config={"html": EVIL})
    with django_capture_on_commit_callbacks(execute=True):
        services.activity_publish(activity=activity, actor=operator)
    page = client.get("/a/xss/").content.decode()
    body = api_client.get("/api/v1/activities/xss").json()
    assert "Hi <b>there</b>" in page
    for text in (page, body["components"][0]["config"]["html"]):
        for n in range(11, 16):
            assert f"alert({n})" not in text
    assert "javascript:" not in page


def test_preview_of_a_draft_is_sanitised_too(client):
    from activities.views import preview_token_make

    operator = StaffUserFactory()
    activity = services.activity_create(actor=operator, name="XSS", slug="xss-draft")
    services.component_create(activity=activity, actor=operator, type="rich_text", config={"html": EVIL})
    page = client.get(f"/a/preview/{preview_token_make(activity)}/").content.decode()
    assert "Hi <b>there</b>" in page and "alert(12)" not in page and "onerror" not in page
