"""Inbound `payment.result` events (contracts §4)."""

from core.events.registry import event_handler
from payments.services import payment_result_apply


@event_handler("payment.result")
def handle_payment_result(payload: dict) -> None:
    payment_result_apply(payload=payload, source="event")
