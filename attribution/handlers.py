"""Inbound user-center events (contracts §2): parse, then call a service."""

from __future__ import annotations

from datetime import datetime

from attribution import platforms, services
from core.events.registry import event_batch_handler, event_handler


def _os(raw: str | None) -> str | None:
    """The event's OS when it is ios or android; anything else (harmonyos, ...) is unknown: every link counts."""
    value = (raw or "").strip().lower()
    return value if value in ("ios", "android") else None


def _activation(payload: dict) -> services.Activation:
    return services.Activation(
        event_id=payload["event_id"],
        app_id=payload["app_id"],
        os=_os(payload.get("os")),
        user_id=payload.get("user_id"),
        device=payload.get("device"),
        ip=payload.get("ip"),
        ua=payload.get("ua"),
        occurred_at=datetime.fromisoformat(payload["occurred_at"]),
    )


@event_handler("app.activated")
def handle_app_activated(payload: dict) -> None:
    services.activation_record(**vars(_activation(payload)))


@event_batch_handler("app.activated")
def handle_app_activated_batch(payloads: list[dict]) -> None:
    """A consumer batch of activations: one set-based service call (the same end state as
    `handle_app_activated` on each, in order)."""
    # the consumer's batch savepoint holds this call alone (docs/events.md): no savepoint of its own
    services.activations_record_many(events=[_activation(payload) for payload in payloads], savepoint=False)


def _deep(payload: dict, event_type: str) -> None:
    services.deep_event_record(
        event_id=payload["event_id"],
        event_type=event_type,
        app_id=payload["app_id"],
        user_id=payload.get("user_id"),
        device=payload.get("device"),
        occurred_at=datetime.fromisoformat(payload["occurred_at"]),
        amount_fen=payload.get("amount_fen"),
    )


@event_handler("user.registered")
def handle_user_registered(payload: dict) -> None:
    _deep(payload, platforms.EVENT_REGISTER)


@event_handler("user.paid")
def handle_user_paid(payload: dict) -> None:
    _deep(payload, platforms.EVENT_PAY)
