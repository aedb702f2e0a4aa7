"""The Parquet schemas of contract §9's datasets, declared once.

Each dataset's columns, in file order. The event time of a row is its first column
(UTC, microseconds); the partition columns `dt` and `hour` are in the path, not in
the files. Columns are only ever added (at the end), never renamed or retyped:
tests/exports/schemas.json locks what has shipped (docs/export.md documents each).
"""

from __future__ import annotations

import pyarrow as pa

TS = pa.timestamp("us", tz="UTC")
STR = pa.string()
I64 = pa.int64()
BOOL = pa.bool_()

_DEVICE = [
    ("idfa", STR),
    ("caid", STR),
    ("imei", STR),
    ("oaid", STR),
    ("android_id", STR),
    ("ipua", STR),
    ("device_keys", pa.list_(STR)),
]

SCHEMAS: dict[str, pa.Schema] = {
    "clicks": pa.schema(
        [
            ("click_at", TS),
            ("click_id", STR),
            ("tracking_link_id", I64),
            ("platform", STR),
            ("os", STR),
            ("platform_click_id", STR),
            ("platform_click_at", TS),
            ("account", STR),
            ("campaign", STR),
            ("ad", STR),
            ("creative", STR),
            *_DEVICE,
            ("ip", STR),
            ("ua", STR),
            ("repeated", BOOL),
            ("log_id", STR),
        ]
    ),
    "click_rejects": pa.schema(
        [
            ("rejected_at", TS),
            ("click_id", STR),
            ("tracking_link_id", I64),
            ("platform", STR),
            ("reason", STR),
            ("os", STR),
            ("platform_click_id", STR),
            ("account", STR),
            ("campaign", STR),
            ("ad", STR),
            ("creative", STR),
            ("ip", STR),
            ("ua", STR),
            ("log_id", STR),
        ]
    ),
    "conversions": pa.schema(
        [
            ("converted_at", TS),
            ("conversion_id", I64),
            ("click_id", STR),
            ("tracking_link_id", I64),
            ("platform", STR),
            ("app_id", STR),
            ("os", STR),
            ("user_id", STR),
            ("activation_event_id", STR),
            ("click_at", TS),
            ("activated_at", TS),
            ("seconds_to_install", I64),
            ("match_method", STR),
            ("match_key", STR),
            ("clicks_before_conversion", I64),
            ("is_test", BOOL),
        ]
    ),
    "conversion_events": pa.schema(
        [
            ("recorded_at", TS),
            ("conversion_event_id", I64),
            ("event_id", STR),
            ("conversion_id", I64),
            ("tracking_link_id", I64),
            ("event_type", STR),
            ("user_id", STR),
            ("occurred_at", TS),
            ("amount_fen", I64),
            ("arrived_early", BOOL),
        ]
    ),
    "postback_attempts": pa.schema(
        [
            ("attempted_at", TS),
            ("postback_attempt_id", I64),
            ("postback_id", I64),
            ("conversion_id", I64),
            ("tracking_link_id", I64),
            ("platform", STR),
            ("event_type", STR),
            ("number", I64),
            ("method", STR),
            ("status_code", I64),
            ("succeeded", BOOL),
            ("error", STR),
            ("latency_ms", pa.float64()),
        ]
    ),
    "coupon_claims": pa.schema(
        [
            ("claimed_at", TS),
            ("claim_id", I64),
            ("coupon_pack_id", I64),
            ("component_id", I64),
            ("activity_id", I64),
            ("user_id", STR),
            ("source", STR),
            ("sequence", I64),
            ("coupons", I64),
        ]
    ),
    "coupon_redemptions": pa.schema(
        [
            ("redeemed_at", TS),
            ("coupon_id", I64),
            ("claim_id", I64),
            ("coupon_template_id", I64),
            ("coupon_pack_id", I64),
            ("component_id", I64),
            ("activity_id", I64),
            ("user_id", STR),
            ("order_ref", STR),
            ("status", STR),
        ]
    ),
    "orders": pa.schema(
        [
            ("placed_at", TS),
            ("order_id", I64),
            ("order_no", STR),
            ("product_id", I64),
            ("component_id", I64),
            ("activity_id", I64),
            ("user_id", STR),
            ("amount_fen", I64),
            ("state", STR),
            ("expires_at", TS),
            ("paid_at", TS),
            ("paid_amount_fen", I64),
            ("channel", STR),
            ("closed_at", TS),
            ("close_cause", STR),
            ("refunded_at", TS),
        ]
    ),
    "payment_results": pa.schema(
        [
            ("received_at", TS),
            ("payment_result_id", I64),
            ("event_id", STR),
            ("order_id", I64),
            ("order_no", STR),
            ("status", STR),
            ("amount_fen", I64),
            ("channel", STR),
            ("transaction_id", STR),
            ("occurred_at", TS),
            ("outcome", STR),
            ("reason", STR),
            ("flagged", BOOL),
            ("source", STR),
        ]
    ),
}

DATASETS: tuple[str, ...] = tuple(SCHEMAS)
# Datasets fed by the click log (Redis streams) rather than by database tables.
LOG_DATASETS: tuple[str, ...] = ("clicks", "click_rejects")


def schema_description() -> dict[str, list[list[str]]]:
    """Names and types of every column, as tests/exports/schemas.json locks them."""
    return {name: [[field.name, str(field.type)] for field in schema] for name, schema in SCHEMAS.items()}
