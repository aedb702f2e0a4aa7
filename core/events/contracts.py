"""Event contracts of ../shared/contracts.md, as JSON schemas."""

from __future__ import annotations

USER_CENTER_EXCHANGE = "user_center"
PAYMENT_EXCHANGE = "payment"
EXCHANGES = (USER_CENTER_EXCHANGE, PAYMENT_EXCHANGE)

# Integers are bounded by the columns that store them (amount_fen: a signed 64-bit
# column), so a value no row can hold is a contract error, dead-lettered at once.
MAX_STORED_INT = 2**63 - 1

_user_id = {"type": ["string", "null"], "maxLength": 64}

_ISO_DATETIME = {"type": "string", "minLength": 10, "format": "date-time"}


def _user_center_schema(event_type: str, *, amount_required: bool = False) -> dict:
    schema: dict = {
        "type": "object",
        "required": ["event_id", "type", "occurred_at", "app_id"],
        "properties": {
            "event_id": {"type": "string", "minLength": 1, "maxLength": 64},
            "type": {"const": event_type},
            "occurred_at": _ISO_DATETIME,
            "app_id": {"type": "string", "minLength": 1, "maxLength": 128},
            "os": {"type": ["string", "null"], "maxLength": 16},
            "user_id": _user_id,
            "device": {
                "type": ["object", "null"],
                "properties": {
                    key: {"type": ["string", "null"], "maxLength": 512}
                    for key in ("idfa", "caid", "imei", "oaid", "android_id")
                },
            },
            "ip": {"type": ["string", "null"], "maxLength": 64},
            "ua": {"type": ["string", "null"], "maxLength": 2048},
            "amount_fen": {"type": ["integer", "null"], "minimum": 0, "maximum": MAX_STORED_INT},
        },
    }
    if amount_required:
        schema["required"] = [*schema["required"], "amount_fen"]
        schema["properties"]["amount_fen"] = {"type": "integer", "minimum": 0, "maximum": MAX_STORED_INT}
    return schema


PAYMENT_RESULT_SCHEMA: dict = {
    "type": "object",
    "required": [
        "event_id",
        "paycode",
        "merchant_order_no",
        "status",
        "amount_fen",
        "occurred_at",
        "signature",
    ],
    "properties": {
        "event_id": {"type": "string", "minLength": 1, "maxLength": 64},
        "paycode": {"type": "string", "minLength": 1, "maxLength": 64},
        "merchant_order_no": {"type": "string", "minLength": 1, "maxLength": 64},
        "status": {"enum": ["PENDING", "PAID", "FAILED", "CLOSED", "REFUNDED"]},
        "amount_fen": {"type": "integer", "minimum": 0, "maximum": MAX_STORED_INT},
        "channel": {"type": ["string", "null"]},
        "transaction_id": {"type": ["string", "null"], "maxLength": 128},
        "occurred_at": _ISO_DATETIME,
        "signature": {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"},
    },
}

# routing key -> (exchange, schema)
CONTRACTS: dict[str, tuple[str, dict]] = {
    "app.activated": (USER_CENTER_EXCHANGE, _user_center_schema("app.activated")),
    "user.registered": (USER_CENTER_EXCHANGE, _user_center_schema("user.registered")),
    "user.paid": (USER_CENTER_EXCHANGE, _user_center_schema("user.paid", amount_required=True)),
    "payment.result": (PAYMENT_EXCHANGE, PAYMENT_RESULT_SCHEMA),
}
