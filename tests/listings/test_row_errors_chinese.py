"""An upload's row errors follow the operator's language (Chinese by default)."""

import pytest
from django.utils import translation

from listings.importing.check import row_parse

pytestmark = pytest.mark.chinese

ROW = {"external_id": "A1", "city": "上海", "title": "两居室", "price_yuan": "abc", "area_m2": "-3"}


def test_upload_row_errors_are_chinese_and_english_when_the_operator_reads_english():
    values, errors = row_parse(5, ROW)
    assert values is None
    messages = {e.column: e.message for e in errors}
    assert messages["price_yuan"] == "不是数字（填写的是 'abc'）"
    assert messages["area_m2"] == "必须大于 0（填写的是 -3）"
    with translation.override("en"):
        _, errors = row_parse(5, ROW)
    assert {e.column: e.message for e in errors}["price_yuan"] == "is not a number (got 'abc')"
