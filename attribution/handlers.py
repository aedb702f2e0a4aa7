"""Inbound user-center events (contracts §2): parse, then call a service."""

from __future__ import annotations

from datetime import datetime

from attribution import platforms, services
from core.events.registry import event_handler


def _os(raw: str | None) -> str | None:
    """The event's OS when it is ios or android; anything else (harmonyos, ...) is unknown: every link counts."""
    value = (raw or "").strip().lower()
    return value if value in ("ios", "android") else None


@event_handler("app.activated")
def handle_app_activated(payload: dict) -> None:
    services.activation_record(
        event_id=payload["event_id"],
        app_id=payload["app_id"],
        os=_os(payload.get("os")),
        user_id=payload.get("user_id"),
        device=payload.get("device"),
        ip=payload.get("ip"),
        ua=payload.get("ua"),
        occurred_at=datetime.fromisoformat(payload["occurred_at"]),
    )


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
