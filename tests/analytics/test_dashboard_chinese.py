"""The analyst's report pages speak the admin's language: the analytics dashboard (its
headings, filters, tables and the charts' series names), the ad performance page and the
device match trace, in Simplified Chinese by default."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client

from core.services import ANALYST_GROUP

pytestmark = [pytest.mark.django_db, pytest.mark.chinese]


@pytest.fixture
def analyst(staff_client) -> Client:
    return staff_client(ANALYST_GROUP)


def _json_script(page: str, element_id: str) -> dict:
    found = re.search(rf'<script id="{element_id}" type="application/json">(.*?)</script>', page, re.S)
    assert found, element_id
    return json.loads(found.group(1))


def test_dashboard_headings_filters_tables_and_chart_labels_are_chinese(analyst):
    days = {"from": "2026-11-01", "to": "2026-11-02"}
    page = analyst.get("/admin/analytics/linkrollup/dashboard/", days).content.decode()
    assert 'lang="zh-hans"' in page
    assert "<h1>数据看板</h1>" in page
    expected = ("点击到安装时长", "转化漏斗", "时间趋势", "这些天没有数据。", "归因率", "按小时")
    expected += ('value="显示"', ">全部<")
    for words in expected:
        assert words in page, words
    assert "Analytics dashboard" not in page and "Nothing in these days." not in page
    # the ids and data-* hooks stay as they were
    assert 'id="table-links"' in page and 'data-figure="clicks"' in page and 'data-export="links-csv"' in page
    labels = _json_script(page, "dashboard-labels")
    assert labels["attribution_rate"] == "归因率" and labels["revenue_yuan"] == "收入（元）"
    # the data keys stay English: the charts look the names up
    assert _json_script(page, "dashboard-data")["funnel"][0]["step"] == "clicks"


def test_dashboard_export_headings_follow_the_language_and_keys_stay(analyst):
    export = analyst.get("/admin/analytics/linkrollup/dashboard/export/links.csv").content.decode("utf-8-sig")
    assert export.splitlines()[0].startswith("投放链接,广告活动,平台,点击数")


def test_ad_performance_page_is_chinese(analyst):
    page = analyst.get("/admin/adreports/adreportrow/performance/", {"level": "ad"}).content.decode()
    expected = ("广告效果：对方数据与我方数据对照", "超出容差的差异", "这些天没有数据。", "无。", "我方安装", "花费 ¥")
    for words in expected:
        assert words in page, words
    assert '<option value="ad" selected>广告</option>' in page  # the query keeps the English value
    assert "Discrepancies beyond the tolerance" not in page


def test_device_trace_page_and_its_form_are_chinese(analyst):
    page = analyst.get("/admin/attribution/matchtrace/device/", {"app_id": "com.example", "idfa": "AB-1"})
    assert page.status_code == 200
    text = page.content.decode()
    expected = ("设备匹配追踪", "规范化匹配键", "判定", "考虑的点击", "该设备的转化", "以往的激活追踪", "应用 ID")
    for words in (*expected, 'value="追踪"'):
        assert words in text, words
    assert "Canonical keys" not in text and "Enter the raw device ids" not in text


def test_index_figures_cost_upload_and_profiling_token_pages_are_chinese(admin_client):
    index = admin_client.get("/admin/").content.decode()
    assert "打开数据看板 →" in index and "归因率" in index
    upload = admin_client.get("/admin/analytics/linkcost/upload/").content.decode()
    assert "每个跟踪链接每天一行" in upload and 'value="上传"' in upload
    token = admin_client.get("/admin/config/profile/token/").content.decode()
    assert "请在要分析的那一个请求中带上此令牌" in token and "/admin/config/profile/" in token
