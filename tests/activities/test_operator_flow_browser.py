"""The operator's whole flow in a real browser (Debian Chromium, headless, the
Chinese admin): from a template, every component type configured on its own
screen, listings uploaded, a banner image uploaded, the preview shows listings
and stock, the checklist passes, publish, the public page; then the read-only
analyst sees the same screens without a control that writes.

With HUODONG_SCREENSHOTS_DIR set (e.g. docs/screenshots), the main screens are
saved there as PNG (the README shows them)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from PIL import Image

from activities import services
from core.management.commands.seed_demo import DEMO_LOGINS
from core.services import groups_sync, staff_user_ensure

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = os.environ.get("HUODONG_SCREENSHOTS_DIR")
CSV = (
    "房源编号,城市,标题,区域,价格（元）,户型\n"
    "sh-1,上海,陆家嘴江景两居,浦东新区,8500000,2室1厅\n"
    "sh-2,上海,徐汇滨江三居,徐汇区,12800000.50,3室2厅\n"
    "bj-1,北京,望京南湖一居,朝阳区,4200000,1室1厅\n"
)


def _shot(page, name: str, *, full_page: bool = True) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=full_page)


@pytest.fixture
def flow_setup(tmp_path, settings):
    """Logins and a template with one component of every type, made before the
    browser starts (Playwright's loop makes the ORM refuse to run)."""
    settings.MEDIA_ROOT = tmp_path / "media"
    groups_sync()
    logins = {}
    for username, password, group in DEMO_LOGINS:
        staff_user_ensure(username=username, password=password, group=group)
        logins[group] = (username, password)
    operator = staff_user_ensure(username="builder", password="builder-pass-2026", group="operator")
    draft = services.activity_create(actor=operator, name="春季模板", slug="spring-template-src")
    for type_key, title, config in (
        ("banner", "头图", {"image": "https://img.example.com/placeholder.png"}),
        ("countdown", "倒计时", {}),
        ("coupon_pack", "新人券包", {}),
        ("paid_sale", "会员月卡", {}),
        ("listing", "精选房源", {}),
        ("rich_text", "活动规则", {"html": "<p>活动规则：每人限领一次。</p>"}),
    ):
        services.component_create(activity=draft, actor=operator, type=type_key, title=title, config=config)
    template = services.activity_save_as_template(activity=draft, actor=operator, name="春季活动模板")
    services.activity_delete(activity=draft, actor=operator)
    banner = tmp_path / "banner.png"
    image = Image.new("RGB", (750, 300), (255, 90, 54))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    banner.write_bytes(buffer.getvalue())
    listings = tmp_path / "listings.csv"
    listings.write_text(CSV, encoding="utf-8")
    return {"logins": logins, "template": template.pk, "banner": banner, "listings": listings}


def _login(page, base, username, password):
    page.goto(f"{base}/admin/login/?next=/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click('input[type="submit"]')
    page.wait_for_selector("#content")


def _settings_of(page, type_key):
    page.locator(f'.hd-components tr.form-row:has-text("{type_key} #") a.hd-edit-settings').click()
    page.wait_for_selector("#component_form")


def _save_back(page):
    page.click('input[name="_save"]')
    page.wait_for_selector(".hd-components")
    assert page.locator(".errornote").count() == 0


def test_operator_builds_previews_and_publishes_then_the_analyst_reads(live_server, flow_setup, browser_page):
    page, base = browser_page, live_server.url
    # the admin's navigation sidebar closed: the screenshots show the screen itself
    page.context.add_init_script("try { localStorage.setItem('django.admin.navSidebarIsOpen', 'false'); } catch (e) {}")
    page.set_viewport_size({"width": 1280, "height": 900})
    _login(page, base, *flow_setup["logins"]["operator"])

    # from the template
    page.goto(f"{base}/admin/activities/activity/{flow_setup['template']}/change/")
    page.click("#hd-from-template")
    page.wait_for_selector(".hd-components")
    page.fill("#id_name", "春季购房节")
    page.fill("#id_slug", "spring-fair")
    page.fill("#id_ends_at_0", "2030-01-01")
    page.fill("#id_ends_at_1", "00:00:00")
    page.click('input[name="_continue"]')
    page.wait_for_selector(".hd-components")
    _shot(page, "01-activity")
    activity_url = page.url

    # coupon pack: stock, limits and its coupons, money in yuan
    _settings_of(page, "coupon_pack")
    page.fill('[name="pack_name"]', "新人购房券包")
    page.fill('[name="pack_total_stock"]', "500")
    page.fill('[name="pack_per_user_limit"]', "1")
    page.fill('[name="coupons-0-name"]', "满100减20")
    page.select_option('[name="coupons-0-kind"]', "threshold")
    page.fill('[name="coupons-0-value"]', "20.00")
    page.fill('[name="coupons-0-min_spend"]', "100.00")
    page.fill('[name="coupons-0-valid_days"]', "30")
    _shot(page, "02-coupon-pack")
    _save_back(page)

    # paid sale: the product, price in yuan
    _settings_of(page, "paid_sale")
    page.fill('[name="product_name"]', "购房会员月卡")
    page.fill('[name="product_price_yuan"]', "19.90")
    page.fill('[name="product_stock"]', "100")
    page.fill('[name="product_entitlement_days"]', "30")
    _shot(page, "03-paid-sale")
    _save_back(page)

    # banner: upload the image
    _settings_of(page, "banner")
    page.set_input_files('[name="banner_upload"]', str(flow_setup["banner"]))
    _shot(page, "04-banner")
    _save_back(page)

    # listings: from the component's own screen to the upload
    _settings_of(page, "listing")
    _shot(page, "05-listing")
    page.click("a.hd-link >> nth=0")
    page.wait_for_selector("#listing-upload")
    page.set_input_files('[name="file"]', str(flow_setup["listings"]))
    page.uncheck('[name="dry_run"]')
    page.click('#listing-upload input[type="submit"]')
    page.wait_for_load_state("networkidle")
    page.goto(activity_url)
    page.wait_for_selector(".hd-components")

    # preview: listings and stock visible before anything is live
    preview = page.get_attribute(".hd-preview-link", "href")
    page.set_viewport_size({"width": 414, "height": 896})
    page.goto(base + preview)
    page.wait_for_selector(".hd-listing__item")
    page.wait_for_function(
        "() => { const r = document.querySelector('[data-component-type=coupon_pack] [data-remaining]');"
        " return r && /\\d/.test(r.textContent); }"
    )
    assert "陆家嘴江景两居" in page.inner_text(".hd-listing")
    assert "/media/banners/" in page.get_attribute(".hd-banner img", "src")
    _shot(page, "06-preview")
    page.set_viewport_size({"width": 1280, "height": 900})

    # the checklist, then publish
    page.goto(activity_url)
    page.click("#hd-publish")
    page.wait_for_selector(".hd-check")
    assert page.locator('.hd-check li[data-level="error"]').count() == 0
    text = page.inner_text(".hd-check")
    assert "3 listings in 2 cities" in text and "500 packs in stock" in text and "¥19.90" in text
    _shot(page, "07-checklist")
    if page.locator("#hd-confirm-warnings").count():
        page.check("#hd-confirm-warnings")
    page.click("#hd-confirm-publish")
    page.wait_for_selector(".messagelist .success")

    # the public page
    page.set_viewport_size({"width": 414, "height": 896})
    page.goto(f"{base}/a/spring-fair/")
    page.wait_for_selector(".hd-listing__item")
    types = page.eval_on_selector_all("[data-component-type]", "els => els.map(e => e.dataset.componentType)")
    assert types == ["banner", "countdown", "coupon_pack", "paid_sale", "listing", "rich_text"]
    _shot(page, "08-public-page")

    # the analyst: the same screens, no control that writes
    page.context.clear_cookies()  # (the sidebar stays closed: localStorage)
    page.set_viewport_size({"width": 1280, "height": 900})
    _login(page, base, *flow_setup["logins"]["analyst"])
    page.goto(activity_url)
    page.wait_for_selector(".hd-components")
    assert page.locator("#hd-publish").count() == 0
    assert page.locator('input[name="_save"], input[name="_continue"], a.hd-add-component').count() == 0
    _settings_of(page, "coupon_pack")
    assert "新人购房券包" in page.inner_text("#content") and "满100减20" in page.inner_text("#content")
    writing = page.locator(
        "#component_form input:not([type=hidden]), #component_form select, #component_form textarea, "
        'input[name="_save"]'
    )
    assert writing.count() == 0
    assert "Pack name" in page.inner_text("#content")  # settings keep their labels read-only
    _shot(page, "09-analyst-coupon-pack")
