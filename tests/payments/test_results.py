"""payment.result events through the real broker and the real consumer."""

import uuid

import pytest

from core.models import DeadLetter
from payments import services
from payments.models import Entitlement, Order, PaymentResult, Product, ProductBuyer
from tests.payments.conftest import result_event
from tests.payments.factories import ProductFactory

pytestmark = pytest.mark.broker


def place(product, user_id="10086") -> Order:
    order = services.order_place(component_id=product.component_id, user_id=user_id, idempotency_key=uuid.uuid4().hex)
    return order


def publish(events, event) -> None:
    events.publish("payment", "payment.result", event)


def settled(count: int):
    return lambda: PaymentResult.objects.count() >= count


def test_paid_marks_order_paid_and_grants_entitlement_in_one_go(events, fake_payments, product):
    order = place(product)
    publish(events, result_event(order, "PAID", channel="wechat"))
    events.wait_for(settled(1))
    order.refresh_from_db()
    assert order.state == "paid" and order.channel == "wechat" and order.paid_amount_fen == 990
    entitlement = Entitlement.objects.get(order=order)
    assert entitlement.kind == "membership" and (entitlement.valid_until - entitlement.valid_from).days == 30
    assert [e.cause for e in order.events.all()] == ["created", "paid"]
    assert Product.objects.get().held == 1


def test_duplicate_and_redelivered_paid_results_grant_once(events, fake_payments, product):
    order = place(product)
    first = result_event(order, "PAID")
    publish(events, first)
    publish(events, first)  # same event_id: the consumer drops it
    publish(events, result_event(order, "PAID", transaction_id=first["transaction_id"]))  # new id, same payment
    publish(events, result_event(order, "FAILED"))  # stale, out of order
    events.wait_for(settled(3))
    assert Entitlement.objects.filter(order=order).count() == 1
    order.refresh_from_db()
    assert order.state == "paid"
    assert sorted(PaymentResult.objects.values_list("outcome", flat=True)) == ["applied", "no_change", "no_change"]
    assert [e.cause for e in order.events.all()] == ["created", "paid"]


def test_paid_after_close_with_stock_left_becomes_paid(events, fake_payments, product):
    order = place(product)
    services.order_close(order_id=order.pk, cause="expired")
    assert Product.objects.get().held == 0
    publish(events, result_event(order, "PAID"))
    events.wait_for(settled(1))
    order.refresh_from_db()
    assert order.state == "paid" and order.holds_stock and not order.refund_required
    assert Entitlement.objects.filter(order=order).count() == 1
    assert Product.objects.get().held == 1 and ProductBuyer.objects.get().held == 1
    assert [e.cause for e in order.events.all()] == ["created", "expired", "paid_after_close"]


def test_paid_after_close_without_stock_is_flagged_for_refund_never_granted(events, fake_payments):
    product = ProductFactory(stock=1)
    late = place(product, "late")
    services.order_close(order_id=late.pk, cause="expired")
    place(product, "someone-else")  # takes the last unit
    event = result_event(late, "PAID")
    publish(events, event)
    publish(events, result_event(late, "PAID", transaction_id=event["transaction_id"]))
    events.wait_for(settled(2))
    late.refresh_from_db()
    assert late.state == "closed" and late.refund_required and late.transaction_id == event["transaction_id"]
    assert not Entitlement.objects.filter(order=late).exists()
    assert Product.objects.get().held == 1
    assert ProductBuyer.objects.get(user_id="late").held == 0
    outcomes = sorted(PaymentResult.objects.values_list("outcome", flat=True))
    assert outcomes == ["no_change", "refund_flagged"]
    assert PaymentResult.objects.get(outcome="refund_flagged").flagged


def test_bad_signature_is_refused_recorded_flagged_and_not_applied(events, fake_payments, product):
    order = place(product)
    tampered = result_event(order, "PAID")
    tampered["transaction_id"] = "ALI-SOMEONE-ELSES"  # changed after signing
    publish(events, tampered)
    publish(events, result_event(order, "PAID", signature="0" * 64))
    events.wait_for(settled(2))
    for result in PaymentResult.objects.all():
        assert (result.outcome, result.flagged, result.reason) == ("refused", True, "bad signature")
    order.refresh_from_db()
    assert order.state == "pending" and not Entitlement.objects.exists()
    assert not DeadLetter.objects.exists()


def test_wrong_amount_and_unknown_order_are_refused(events, fake_payments, product):
    order = place(product)
    publish(events, result_event(order, "PAID", amount_fen=1))
    publish(events, result_event(order, "PAID", merchant_order_no="P-NOT-OURS"))
    events.wait_for(settled(2))
    reasons = sorted(PaymentResult.objects.values_list("reason", flat=True))
    assert reasons == ["amount 1 differs from 990", "unknown order"]
    assert all(PaymentResult.objects.values_list("flagged", flat=True))
    order.refresh_from_db()
    assert order.state == "pending" and not Entitlement.objects.exists()
    assert "result_refused" in [e.cause for e in order.events.all()]


def test_failed_and_closed_results_release_stock(events, fake_payments):
    product = ProductFactory(stock=2)
    failed, closed = place(product, "a"), place(product, "b")
    assert Product.objects.get().held == 2
    publish(events, result_event(failed, "FAILED"))
    publish(events, result_event(closed, "CLOSED"))
    events.wait_for(settled(2))
    failed.refresh_from_db()
    closed.refresh_from_db()
    assert (failed.state, failed.close_cause) == ("closed", "payment_failed")
    assert (closed.state, closed.close_cause) == ("closed", "payment_closed")
    assert Product.objects.get().held == 0
    assert list(ProductBuyer.objects.values_list("held", flat=True)) == [0, 0]


def test_refunded_result_revokes_the_entitlement(events, fake_payments, product):
    order = place(product)
    publish(events, result_event(order, "PAID"))
    events.wait_for(settled(1))
    publish(events, result_event(order, "REFUNDED"))
    events.wait_for(settled(2))
    order.refresh_from_db()
    assert order.state == "refunded"
    assert Entitlement.objects.get(order=order).revoked_at is not None
    assert Product.objects.get().held == 0


def test_malformed_result_goes_to_the_dead_letter_queue(events, fake_payments, product):
    publish(events, {"event_id": "x", "status": "PAID"})
    events.wait_for(lambda: DeadLetter.objects.exists())
    assert "breaks the contract" in DeadLetter.objects.get().reason
    assert not PaymentResult.objects.exists()
