"""Inbound `payment.result` events (contracts §4)."""

from core.events.registry import event_batch_handler, event_handler
from payments.services import payment_result_apply, payment_results_apply_many


@event_handler("payment.result")
def handle_payment_result(payload: dict) -> None:
    payment_result_apply(payload=payload, source="event")


@event_batch_handler("payment.result")
def handle_payment_results(payloads: list[dict]) -> None:
    """The consumer's batch path (docs/events.md): the same end state as the single
    handler on each payload in order (the records are not needed back)."""
    payment_results_apply_many(payloads=payloads, source="event", returning=False)
