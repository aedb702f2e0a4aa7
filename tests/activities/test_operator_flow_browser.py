"""The operator's whole flow in a real browser (Debian Chromium, headless) in the
Chinese admin: from a template, every component type configured on its own screen,
listings uploaded with one bad row, the error file downloaded, fixed and uploaded
again, then applied; a banner image uploaded; the preview shows listings and stock;
the checklist passes; publish; the public page. Then the read-only analyst walks the
same screens and finds no control that writes.

Elements are found by ids, names, hrefs and data-* attributes; texts are compared
with the Chinese of the .po file (through gettext), never with English words.

With HUODONG_SCREENSHOTS_DIR set, the main screens are saved there as PNG: the
README shows docs/screenshots/ (see "Screenshots" there to regenerate them)."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import pytest
from django.utils import translation
from django.utils.translation import gettext
from PIL import Image

from activities import services
from core.management.commands.seed_demo import DEMO_LOGINS
from core.services import groups_sync, staff_user_ensure
from listings.importing import ERROR_COLUMN

pytestmark = [pytest.mark.browser, pytest.mark.chinese, pytest.mark.django_db(transaction=True)]

SHOTS = os.environ.get("HUODONG_SCREENSHOTS_DIR")
PRICE = "价格（元）"
GOOD_PRICE = "5600000"
CSV = (
    f"房源编号,城市,标题,区域,{PRICE},户型\n"
    "sh-1,上海,陆家嘴江景两居,浦东新区,8500000,2室1厅\n"
    "sh-2,上海,徐汇滨江三居,徐汇区,12800000.50,3室2厅\n"
    "bj-1,北京,望京南湖一居,朝阳区,4200000,1室1厅\n"
    "bj-2,北京,望京南湖二居,朝阳区,五百六十万,2室1厅\n"  # the bad row: a price in words
)
COMPONENTS = (
    ("banner", "头图", {"image": "https://img.example.com/placeholder.png"}),
    ("countdown", "倒计时", {}),
    ("coupon_pack", "新人券包", {}),
    ("paid_sale", "会员月卡", {}),
    ("listing", "精选房源", {}),
    ("rich_text", "活动规则", {"html": "<p>活动规则：每人限领一次。</p>"}),
)

# What an analyst must not be offered, anywhere in the page's content: buttons and
# submit inputs, file inputs, editable fields of a POST form, the list's action
# select, add/delete/upload/generate/publish links, shown on the page. Search and
# filter forms (GET) only read.
WRITING_CONTROLS_JS = """() => {
  const root = document.querySelector('#content') || document.body;
  const selector = [
    'button', 'input[type=submit]', 'input[type=image]', 'input[type=file]', 'select[name=action]',
    'form[method=post i] input:not([type=hidden])', 'form[method=post i] select', 'form[method=post i] textarea',
    'a.addlink', 'a.deletelink', 'a[href*="/add/"]', 'a[href*="/delete/"]', 'a[href*="/upload/"]',
    'a[href*="/generate-codes/"]', 'a[href*="/publish/"]', 'a[href*="/rollback/"]', '#hd-publish',
  ].join(',');
  return [...root.querySelectorAll(selector)]
    .filter(e => e.getClientRects().length > 0)  // shown (Django's inline script adds a hidden "add" link)
    .filter(e => !e.closest('form[method=get i], #changelist-search, #changelist-filter'))
    .map(e => e.outerHTML.slice(0, 160));
}"""


def _zh(message: str, **values) -> str:
    with translation.override("zh-hans"):
        return gettext(message) % values


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
    for type_key, title, config in COMPONENTS:
        services.component_create(activity=draft, actor=operator, type=type_key, title=title, config=config)
    template = services.activity_save_as_template(activity=draft, actor=operator, name="春季活动模板")
    services.activity_delete(activity=draft, actor=operator)
    banner = tmp_path / "banner.png"
    image = Image.new("RGB", (750, 300), (255, 90, 54))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    banner.write_bytes(buffer.getvalue())
    listings = tmp_path / "房源.csv"
    listings.write_text(CSV, encoding="utf-8")
    with translation.override("zh-hans"):
        texts = {  # the checklist's lines as the .po file words them
            "listings": _zh("%(name)s: %(n)s listings in %(c)s cities.", name="精选房源", n=4, c=2),
            "packs": _zh("%(name)s: %(left)s packs in stock.", name="新人券包", left=500),
            "sale": _zh("%(name)s: ¥%(price)s, %(left)s in stock.", name="会员月卡", price="19.90", left=100),
        }
    return {
        "logins": logins,
        "template": template.pk,
        "banner": banner,
        "listings": listings,
        "tmp": tmp_path,
        "texts": texts,
    }


def _login(page, base, username, password):
    page.goto(f"{base}/admin/login/?next=/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click('#login-form [type="submit"]')
    page.wait_for_selector("#content")


def _settings_of(page, type_key):
    page.click(f'.hd-components a.hd-edit-settings[data-type="{type_key}"]')
    page.wait_for_selector("#component_form")


def _save_back(page):
    page.click('input[name="_save"]')
    page.wait_for_selector(".hd-components")
    assert page.locator(".errornote").count() == 0


def _upload(page, path: Path) -> None:
    """A dry run, all or nothing (the form's defaults), to its result page."""
    page.set_input_files('#listing-upload [name="file"]', str(path))
    assert page.is_checked('[name="dry_run"]') and page.is_checked('[name="all_or_nothing"]')
    page.click('#listing-upload [type="submit"]')
    page.wait_for_selector("#count-rejected")


def _error_file_fixed(page, tmp: Path) -> Path:
    """Download the rows with their errors, fix the bad row's price in that very file."""
    with page.expect_download() as download:
        page.click("#download-errors")
    data = Path(download.value.path()).read_bytes()
    assert download.value.suggested_filename.endswith(".csv")
    table = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    header, rows = table[0], table[1:]
    assert header[0] == ERROR_COLUMN and header[1:] == CSV.splitlines()[0].split(",")
    assert [r[1] for r in rows] == ["sh-1", "sh-2", "bj-1", "bj-2"]  # every row, the operator's own
    assert [bool(r[0]) for r in rows] == [False, False, False, True]  # the error on the bad row only
    rows[3][header.index(PRICE)] = GOOD_PRICE
    fixed = tmp / "房源-修正.csv"
    with fixed.open("w", encoding="utf-8-sig", newline="") as out:
        csv.writer(out).writerows([header, *rows])  # uploaded again as it is, error column included
    return fixed


def _writing_controls(page) -> list[str]:
    return page.evaluate(WRITING_CONTROLS_JS)


def test_operator_builds_previews_and_publishes_in_chinese_then_the_analyst_reads(
    live_server, flow_setup, browser_page
):
    page, base = browser_page, live_server.url
    texts = flow_setup["texts"]
    # the admin's navigation sidebar closed: the screenshots show the screen itself
    page.context.add_init_script("try { localStorage.setItem('django.admin.navSidebarIsOpen', 'false'); } catch (e) {}")
    page.set_viewport_size({"width": 1280, "height": 900})
    _login(page, base, *flow_setup["logins"]["operator"])
    assert page.get_attribute("html", "lang") == "zh-hans"  # Django serves the Chinese admin

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
    assert page.locator(".messagelist .success").count() == 1
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

    # countdown and rich text, each on its own screen
    _settings_of(page, "countdown")
    page.fill('[name="cfg_label"]', "距开盘还有")
    _save_back(page)
    _settings_of(page, "rich_text")
    page.fill('[name="cfg_html"]', "<p>活动规则：每人限领一次，名额有限。</p>")
    _save_back(page)

    # listings: from the component's own screen to the upload; one bad row
    _settings_of(page, "listing")
    _shot(page, "05-listing")
    page.click('.hd-component-links a.hd-link[href*="/listings/importjob/upload/"]')
    page.wait_for_selector("#listing-upload")
    _upload(page, flow_setup["listings"])
    assert page.inner_text("#count-rejected") == "1"
    assert page.locator("#import-errors tbody tr").count() == 1
    assert page.inner_text("#import-errors tbody td >> nth=0") == "5"  # the file's line 5
    assert page.locator("#no-apply").count() == 1  # all or nothing could only fail:
    assert page.locator("#apply-import").count() == 0  # no apply button
    _shot(page, "06-upload-errors")
    bad_job_url = page.url
    fixed = _error_file_fixed(page, flow_setup["tmp"])
    page.click("#upload-another")
    page.wait_for_selector("#listing-upload")
    _upload(page, fixed)
    assert page.inner_text("#count-rejected") == "0" and page.inner_text("#count-created") == "4"
    page.click('#apply-import [type="submit"]')
    page.wait_for_selector(".messagelist .success")
    assert page.inner_text("#count-created") == "4" and page.inner_text("#count-rejected") == "0"
    assert page.locator("#apply-import, #download-errors").count() == 0
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
    assert "距开盘还有" in page.inner_text("[data-component-type=countdown]")
    _shot(page, "07-preview")
    page.click(".hd-listing__tab >> nth=1")  # the second city holds the row fixed from the error file
    page.wait_for_selector('.hd-listing__item:has-text("望京南湖二居")')
    page.set_viewport_size({"width": 1280, "height": 900})

    # the checklist, then publish
    page.goto(activity_url)
    page.click("#hd-publish")
    page.wait_for_selector(".hd-check")
    assert page.locator('.hd-check li[data-level="error"]').count() == 0
    check = page.inner_text(".hd-check")
    assert texts["listings"] in check and texts["packs"] in check and texts["sale"] in check, check
    _shot(page, "08-checklist")
    if page.locator("#hd-confirm-warnings").count():
        page.check("#hd-confirm-warnings")
    page.click("#hd-confirm-publish")
    page.wait_for_selector(".messagelist .success")
    assert page.locator("#hd-publish").count() == 1  # back on the activity, which can publish again

    # the public page
    page.set_viewport_size({"width": 414, "height": 896})
    page.goto(f"{base}/a/spring-fair/")
    page.wait_for_selector(".hd-listing__item")
    types = page.eval_on_selector_all("[data-component-type]", "els => els.map(e => e.dataset.componentType)")
    assert types == [key for key, _, _ in COMPONENTS]
    assert page.locator(".hd-listing__item").count() >= 2  # the first city's listings
    _shot(page, "09-public-page")

    # the screens the operator used, which the analyst walks again
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(activity_url)
    settings_urls = {
        key: page.get_attribute(f'a.hd-edit-settings[data-type="{key}"]', "href") for key, _, _ in COMPONENTS
    }
    page.goto(base + settings_urls["coupon_pack"])
    related = page.eval_on_selector_all(".hd-component-links a", "els => els.map(e => e.getAttribute('href'))")
    assert any("/generate-codes/" in href for href in related)  # the operator may generate codes
    page.goto(base + settings_urls["listing"])
    listing_screens = page.eval_on_selector_all(".hd-component-links a", "els => els.map(e => e.getAttribute('href'))")
    assert any("/upload/" in href for href in listing_screens)  # and upload listings
    assert _writing_controls(page)  # the check below sees the controls an operator has

    # the analyst: the same screens, no control that writes
    page.context.clear_cookies()  # (the sidebar stays closed: localStorage)
    _login(page, base, *flow_setup["logins"]["analyst"])
    screens = [
        "/admin/",
        "/admin/activities/activity/",
        activity_url,
        *settings_urls.values(),
        *[href for href in listing_screens if "/upload/" not in href],
        bad_job_url,
        "/admin/coupons/couponpack/",
        "/admin/payments/product/",
    ]
    found = {}
    for url in screens:
        response = page.goto(url if url.startswith("http") else base + url)
        assert response is not None and response.status == 200, url
        controls = _writing_controls(page)
        if controls:
            found[url] = controls
        if url == activity_url:
            assert page.locator(".hd-components a.hd-edit-settings").count() == len(COMPONENTS)
            _shot(page, "10-analyst-activity")
        if url == settings_urls["coupon_pack"]:
            content = page.inner_text("#content")
            assert "新人购房券包" in content and "满100减20" in content  # read, as text
            kind = _zh("Amount off above a threshold (满减)")
            assert kind in page.inner_text('[data-rows="coupons"]')  # a choice reads as its label
            related = page.eval_on_selector_all(".hd-component-links a", "els => els.map(e => e.getAttribute('href'))")
            assert related and not any("/generate-codes/" in href for href in related)
            _shot(page, "11-analyst-coupon-pack")
        if url == bad_job_url:  # the rejected dry run: its errors can be read and downloaded
            assert page.inner_text("#count-rejected") == "1" and page.locator("#download-errors").count() == 1
    assert found == {}, found
    # the pack's own page links to no generating screen either
    page.goto(f"{base}/admin/coupons/couponpack/")
    page.click("#result_list tbody tr th a")
    page.wait_for_selector("#content-main")
    assert _writing_controls(page) == []
