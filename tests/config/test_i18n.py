"""The admin speaks Simplified Chinese by default, English on request, through Django's
translation machinery: every model and field name is marked for translation and the
Chinese catalogue has no hole."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings
from django.urls import reverse
from django.utils import translation
from django.utils.functional import Promise

OUR_APPS = {
    "activities",
    "components",
    "listings",
    "coupons",
    "attribution",
    "payments",
    "adreports",
    "analytics",
    "exports",
    "alerts",
    "config",
}
pytestmark = pytest.mark.chinese

PO_FILE = Path(settings.BASE_DIR) / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"


def _our_models():
    return [m for m in apps.get_models() if m._meta.app_label in OUR_APPS]


def _catalog_zh() -> dict:
    return translation.trans_real.translation("zh-hans")._catalog


def test_every_model_field_and_app_name_is_marked_for_translation():
    unmarked = []
    for model in _our_models():
        meta = model._meta
        for name in ("verbose_name", "verbose_name_plural"):
            if not isinstance(getattr(meta, name), Promise):
                unmarked.append(f"{meta.label}.Meta.{name}")
        for field in meta.get_fields(include_hidden=False):
            if field.auto_created or not getattr(field, "concrete", False):
                continue
            if not isinstance(field.verbose_name, Promise):
                unmarked.append(f"{meta.label}.{field.name}")
            if field.help_text and not isinstance(field.help_text, Promise):
                unmarked.append(f"{meta.label}.{field.name}.help_text")
    for label in OUR_APPS:
        if not isinstance(apps.get_app_config(label).verbose_name, Promise):
            unmarked.append(f"app {label}")
    assert not unmarked, f"wrap these names in gettext_lazy: {unmarked}"


def test_every_model_and_field_name_has_a_chinese_translation():
    catalog = _catalog_zh()
    missing = set()
    for model in _our_models():
        meta = model._meta
        texts = [meta.verbose_name, meta.verbose_name_plural]
        texts += [
            f.verbose_name
            for f in meta.get_fields(include_hidden=False)
            if getattr(f, "concrete", False) and not f.auto_created
        ]
        with translation.override(None):  # no language: a lazy name reads as its msgid
            for text in texts:
                if str(text) not in catalog:
                    missing.add(str(text))
    assert not missing, f"translate these in {PO_FILE} (make messages): {sorted(missing)}"


def test_the_chinese_catalogue_has_no_untranslated_or_fuzzy_entry():
    text = PO_FILE.read_text(encoding="utf-8")
    entries = text.split("\n\n")[1:]  # the first block is the header
    holes = [e for e in entries if '\nmsgstr ""' in e and e.rstrip().endswith('msgstr ""')]
    fuzzy = [e for e in entries if "#, fuzzy" in e]
    assert not holes, f"untranslated: {[h.split(chr(10)) for h in holes][:5]}"
    assert not fuzzy, f"fuzzy (check and clear the flag): {fuzzy[:3]}"


def test_admin_speaks_chinese_by_default_and_english_when_chosen(operator_client):
    url = reverse("admin:coupons_couponpack_changelist")
    page = operator_client.get(url).content.decode()
    assert 'lang="zh-hans"' in page
    assert "选择 券包 来修改" in page  # Django's own words around our model's name
    form = operator_client.get(reverse("admin:activities_activity_add")).content.decode()
    assert "开始时间" in form and "结束时间" in form  # field labels

    # The language switch in the admin header sets the language for the session.
    response = operator_client.post(reverse("set_language"), {"language": "en", "next": url})
    assert response.status_code == 302
    page = operator_client.get(url).content.decode()
    assert 'lang="en"' in page
    assert "Select coupon pack to change" in page
    form = operator_client.get(reverse("admin:activities_activity_add")).content.decode()
    assert "Starts at" in form and "开始时间" not in form


def test_admin_header_offers_the_language_switch(operator_client):
    page = operator_client.get(reverse("admin:index")).content.decode()
    assert 'id="language-switch"' in page
    assert 'value="en"' in page and 'value="zh-hans"' in page
    assert "Huodong 活动平台" in page


def test_browser_language_is_honoured_for_english_speaking_staff(operator_client):
    page = operator_client.get(reverse("admin:index"), HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9").content.decode()
    assert 'lang="en"' in page
