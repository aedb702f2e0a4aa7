"""The sandbox payment service's behaviour (it plays the payment team)."""

from __future__ import annotations

import secrets
import uuid
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from core.events.contracts import PAYMENT_EXCHANGE
from core.events.publish import publish_event
from payments.sandbox.models import SandboxPaycode
from payments.signing import result_sign

CHANNELS = ("alipay", "wechat")


def _expire_if_due(paycode: SandboxPaycode) -> SandboxPaycode:
    if paycode.status == "PENDING" and paycode.expires_at <= timezone.now():
        SandboxPaycode.objects.filter(pk=paycode.pk, status="PENDING").update(status="CLOSED")
        paycode.refresh_from_db()
    return paycode


def sandbox_paycode_create(
    *, merchant_order_no: str, amount_fen: int, subject: str, user_id: str, expire_seconds: int
) -> tuple[SandboxPaycode, bool]:
    """Idempotent on merchant_order_no: a repeat returns the same paycode."""
    existing = SandboxPaycode.objects.filter(merchant_order_no=merchant_order_no).first()
    if existing:
        return existing, False
    try:
        with transaction.atomic():
            return (
                SandboxPaycode.objects.create(
                    paycode="SBX" + secrets.token_hex(10).upper(),
                    merchant_order_no=merchant_order_no,
                    amount_fen=amount_fen,
                    subject=subject,
                    user_id=user_id,
                    expires_at=timezone.now() + timedelta(seconds=expire_seconds),
                ),
                True,
            )
    except IntegrityError:
        return SandboxPaycode.objects.get(merchant_order_no=merchant_order_no), False


def sandbox_paycode_close(*, paycode: SandboxPaycode) -> str:
    """CLOSED, or PAID when it was paid first (the contract's 409)."""
    SandboxPaycode.objects.filter(pk=paycode.pk, status__in=("PENDING", "FAILED")).update(status="CLOSED")
    paycode.refresh_from_db()
    return "PAID" if paycode.status in ("PAID", "REFUNDED") else "CLOSED"


def sandbox_paycode_query(*, paycode: SandboxPaycode) -> dict:
    paycode = _expire_if_due(paycode)
    return {
        "paycode": paycode.paycode,
        "merchant_order_no": paycode.merchant_order_no,
        "status": paycode.status,
        "amount_fen": paycode.amount_fen,
        "channel": paycode.channel or None,
        "transaction_id": paycode.transaction_id or None,
        "paid_at": paycode.paid_at.isoformat() if paycode.paid_at else None,
    }


def result_event(paycode: SandboxPaycode, status: str) -> dict:
    event = {
        "event_id": str(uuid.uuid4()),
        "paycode": paycode.paycode,
        "merchant_order_no": paycode.merchant_order_no,
        "status": status,
        "amount_fen": paycode.amount_fen,
        "channel": paycode.channel or None,
        "transaction_id": paycode.transaction_id or None,
        "occurred_at": timezone.localtime().isoformat(),
    }
    event["signature"] = result_sign(event)
    return event


class CashierRefused(Exception):
    pass


def sandbox_cashier_act(*, paycode: SandboxPaycode, action: str, publish: bool = True) -> dict:
    """A button of the cashier: pay with a channel, or fail. Moves the paycode
    (PENDING -> PAID | FAILED) and publishes the signed result event."""
    paycode = _expire_if_due(paycode)
    if action in CHANNELS:
        moved = SandboxPaycode.objects.filter(pk=paycode.pk, status__in=("PENDING", "FAILED")).update(
            status="PAID",
            channel=action,
            transaction_id=("ALI" if action == "alipay" else "WX") + secrets.token_hex(8).upper(),
            paid_at=timezone.now(),
        )
        status = "PAID"
    elif action == "fail":
        moved = SandboxPaycode.objects.filter(pk=paycode.pk, status="PENDING").update(status="FAILED")
        status = "FAILED"
    else:
        raise CashierRefused(f"unknown action {action!r}")
    if not moved:
        raise CashierRefused(f"this paycode is {paycode.status}")
    paycode.refresh_from_db()
    event = result_event(paycode, status)
    if publish:
        publish_event(PAYMENT_EXCHANGE, "payment.result", event)
    return event
