"""Contract §9: columns are only ever added, never renamed or retyped."""

import json
from pathlib import Path

from exports.schemas import DATASETS, SCHEMAS, schema_description

LOCKED = json.loads((Path(__file__).parent / "schemas.json").read_text())


def test_every_shipped_column_keeps_its_name_type_and_place():
    """schemas.json is what has shipped; append new columns to it, never edit a line."""
    current = schema_description()
    assert set(LOCKED) <= set(current), f"datasets removed: {set(LOCKED) - set(current)}"
    for dataset, columns in LOCKED.items():
        assert current[dataset][: len(columns)] == columns, f"{dataset}: a column was renamed, retyped or moved"


def test_every_dataset_has_its_utc_microsecond_event_time_first_and_no_secret_column():
    assert DATASETS == (
        "clicks",
        "click_rejects",
        "conversions",
        "conversion_events",
        "postback_attempts",
        "coupon_claims",
        "coupon_redemptions",
        "orders",
        "payment_results",
    )
    for schema in SCHEMAS.values():
        assert str(schema.field(0).type) == "timestamp[us, tz=UTC]"
        names = set(schema.names)
        assert not names & {"callback", "cb", "signature", "payload", "token", "code", "url", "request_body"}


def test_docs_list_every_column():
    docs = (Path(__file__).resolve().parents[2] / "docs" / "export.md").read_text()
    for dataset, schema in SCHEMAS.items():
        assert f"### {dataset}" in docs
        for name in schema.names:
            assert f"`{name}`" in docs, f"{dataset}.{name} is not documented"
