"""Fen as yuan text: the one formatter operators read prices through."""

from core.money import yuan_text


def test_fen_read_as_yuan_with_two_decimals_and_grouping():
    assert yuan_text(850_000_000) == "8,500,000.00"
    assert yuan_text(1990) == "19.90"
    assert yuan_text(5) == "0.05"
    assert yuan_text(0) == "0.00"


def test_import_files_get_yuan_without_grouping_and_reports_with_a_symbol():
    assert yuan_text(1_280_000_050, grouping=False) == "12800000.50"
    assert yuan_text(123_456, symbol="¥") == "¥1,234.56"


def test_negative_amounts_and_missing_ones():
    assert yuan_text(-1990) == "-19.90"
    assert yuan_text(-5, symbol="¥") == "-¥0.05"
    assert yuan_text(None) == ""


def test_exact_for_amounts_a_float_would_round():
    assert yuan_text(2**53 + 1, grouping=False) == "90071992547409.93"
