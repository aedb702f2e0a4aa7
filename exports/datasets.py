"""Rows of each dataset for one UTC hour, as Arrow batches in the dataset's schema.

Database datasets are partitioned by the time the platform recorded the row (a
conversion's creation, an attempt's, a claim's...): every row lands in exactly one
partition, fixed when it is written, so a closed hour plus EXPORT_DELAY_MINUTES
is complete. Other times (activated_at, occurred_at...) are columns. Click datasets
come from the drained click log, partitioned by receipt time.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pyarrow as pa
from django.db.models import Count
from django.utils.dateparse import parse_datetime

from attribution.models import Conversion, ConversionEvent, PostbackAttempt
from coupons.models import Claim, Coupon, CouponStatus
from exports.drain import chunk_decode
from exports.models import ClickLogChunk
from exports.schemas import SCHEMAS
from payments.models import Order, PaymentResult

BATCH_ROWS = 50_000


def _occurred(text: str):
    try:
        return parse_datetime(text) if text else None
    except ValueError:
        return None


# dataset -> (queryset of the hour, time field, [(column, value path or callable)])
def _specs():
    return {
        "conversions": (
            Conversion.objects.all(),
            "created_at",
            [
                ("converted_at", "created_at"),
                ("conversion_id", "id"),
                ("click_id", "click_id"),
                ("tracking_link_id", "link_id"),
                ("platform", "platform"),
                ("app_id", "app_id"),
                ("os", "os"),
                ("user_id", "user_id"),
                ("activation_event_id", "activation_event_id"),
                ("click_at", "click_at"),
                ("activated_at", "activated_at"),
                ("seconds_to_install", "seconds_to_install"),
                ("match_method", "match_method"),
                ("match_key", "match_key"),
                ("clicks_before_conversion", "clicks_before_conversion"),
                ("is_test", "is_test"),
            ],
        ),
        "conversion_events": (
            ConversionEvent.objects.all(),
            "created_at",
            [
                ("recorded_at", "created_at"),
                ("conversion_event_id", "id"),
                ("event_id", "event_id"),
                ("conversion_id", "conversion_id"),
                ("tracking_link_id", "conversion__link_id"),
                ("event_type", "event_type"),
                ("user_id", "user_id"),
                ("occurred_at", "occurred_at"),
                ("amount_fen", "amount_fen"),
                ("arrived_early", "arrived_early"),
            ],
        ),
        "postback_attempts": (
            PostbackAttempt.objects.all(),
            "created_at",
            [
                ("attempted_at", "created_at"),
                ("postback_attempt_id", "id"),
                ("postback_id", "postback_id"),
                ("conversion_id", "postback__conversion_id"),
                ("tracking_link_id", "postback__conversion__link_id"),
                ("platform", "postback__conversion__platform"),
                ("event_type", "postback__event_type"),
                ("number", "number"),
                ("method", "method"),
                ("status_code", "status_code"),
                ("succeeded", "succeeded"),
                ("error", "error"),
                ("latency_ms", "latency_ms"),
            ],
        ),
        "coupon_claims": (
            Claim.objects.annotate(coupon_count=Count("coupons")),
            "claimed_at",
            [
                ("claimed_at", "claimed_at"),
                ("claim_id", "id"),
                ("coupon_pack_id", "pack_id"),
                ("component_id", "pack__component_id"),
                ("activity_id", "pack__component__activity_id"),
                ("user_id", "user_id"),
                ("source", "source"),
                ("sequence", "sequence"),
                ("coupons", "coupon_count"),
            ],
        ),
        "coupon_redemptions": (
            Coupon.objects.filter(status=CouponStatus.USED),
            "used_at",
            [
                ("redeemed_at", "used_at"),
                ("coupon_id", "id"),
                ("claim_id", "claim_id"),
                ("coupon_template_id", "template_id"),
                ("coupon_pack_id", "claim__pack_id"),
                ("component_id", "claim__pack__component_id"),
                ("activity_id", "claim__pack__component__activity_id"),
                ("user_id", "user_id"),
                ("order_ref", "order_id"),
                ("status", "status"),
            ],
        ),
        "orders": (
            Order.objects.all(),
            "created_at",
            [
                ("placed_at", "created_at"),
                ("order_id", "id"),
                ("order_no", "order_no"),
                ("product_id", "product_id"),
                ("component_id", "product__component_id"),
                ("activity_id", "product__component__activity_id"),
                ("user_id", "user_id"),
                ("amount_fen", "amount_fen"),
                ("state", "state"),
                ("expires_at", "expires_at"),
                ("paid_at", "paid_at"),
                ("paid_amount_fen", "paid_amount_fen"),
                ("channel", "channel"),
                ("closed_at", "closed_at"),
                ("close_cause", "close_cause"),
                ("refunded_at", "refunded_at"),
            ],
        ),
        "payment_results": (
            PaymentResult.objects.all(),
            "received_at",
            [
                ("received_at", "received_at"),
                ("payment_result_id", "id"),
                ("event_id", "event_id"),
                ("order_id", "order_id"),
                ("order_no", "merchant_order_no"),
                ("status", "status"),
                ("amount_fen", "amount_fen"),
                ("channel", "channel"),
                ("transaction_id", "transaction_id"),
                ("occurred_at", "occurred_at"),
                ("outcome", "outcome"),
                ("reason", "reason"),
                ("flagged", "flagged"),
                ("source", "source"),
            ],
        ),
    }


def _database_batches(dataset: str, hour: datetime) -> Iterator[pa.Table]:
    queryset, time_field, columns = _specs()[dataset]
    schema = SCHEMAS[dataset]
    paths = [path for _, path in columns]
    names = [name for name, _ in columns]
    rows = (
        queryset.filter(**{f"{time_field}__gte": hour, f"{time_field}__lt": hour + timedelta(hours=1)})
        .order_by(time_field, "pk")
        .values_list(*paths)
    )
    cols: dict[str, list] = {name: [] for name in schema.names}
    count = 0
    for row in rows.iterator(chunk_size=5000):
        for name, value in zip(names, row, strict=True):
            cols[name].append(value)
        count += 1
        if count == BATCH_ROWS:
            yield _table(dataset, cols)
            cols, count = {name: [] for name in schema.names}, 0
    if count:
        yield _table(dataset, cols)


def _table(dataset: str, cols: dict[str, list]) -> pa.Table:
    if dataset == "payment_results":
        cols["occurred_at"] = [_occurred(text) for text in cols["occurred_at"]]
    return pa.Table.from_pydict(cols, schema=SCHEMAS[dataset])


def _log_batches(dataset: str, hour: datetime) -> Iterator[pa.Table]:
    ids = list(ClickLogChunk.objects.filter(dataset=dataset, hour=hour).order_by("pk").values_list("pk", flat=True))
    for pk in ids:  # one chunk in memory at a time
        data = ClickLogChunk.objects.filter(pk=pk).values_list("data", flat=True).first()
        if data is not None:
            yield chunk_decode(data)


def dataset_batches(dataset: str, hour: datetime) -> Iterator[pa.Table]:
    if dataset in ("clicks", "click_rejects"):
        return _log_batches(dataset, hour)
    return _database_batches(dataset, hour)
