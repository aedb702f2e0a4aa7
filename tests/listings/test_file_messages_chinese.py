"""The import's job-level messages and whole-file refusals are made in the operator's
language: Simplified Chinese by default (the Celery task runs in LANGUAGE_CODE)."""

from __future__ import annotations

import pytest
from django.utils import translation

from listings.importing import RowError
from listings.models import ImportStatus
from tests.listings.files import csv_bytes, row, write_csv

pytestmark = pytest.mark.chinese


def test_partial_import_reports_the_skipped_rows_in_chinese(component, run_import, tmp_path):
    with translation.override("zh-hans"):
        job = run_import(
            component,
            write_csv(tmp_path / "b.csv", [row(1), row(2, cover="ftp://x"), row(3, title=""), row(4)]),
            all_or_nothing=False,
        )
    assert job.status == ImportStatus.APPLIED
    assert job.message == "已导入；跳过了 2 行有错误的行。"


def test_gbk_file_is_refused_in_chinese(component, run_import, tmp_path):
    path = tmp_path / "gbk.csv"
    path.write_bytes(csv_bytes([row(3), row(4)], encoding="gbk"))
    with translation.override("zh-hans"):
        job = run_import(component, path)
    assert job.status == ImportStatus.FAILED
    assert "该文件不是 UTF-8 文本（第一个无法读取的字符在第 1 行）" in job.message, job.message
    assert "GBK/GB18030" in job.message and "CSV UTF-8（逗号分隔）" in job.message


def test_row_error_names_row_and_column_in_chinese():
    with translation.override("zh-hans"):
        text = str(RowError(3, "title", "必填"))
    assert text == "第 3 行，列 title (标题)：必填"
