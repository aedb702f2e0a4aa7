"""Many payment results at once (`payment_results_apply_many`, the consumer's batch
handler of `payment.result`): the same end state as `payment_result_apply` on each,
in order, with set-based statements."""

import threading
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.events import registry
from payments import services
from payments.models import Entitlement, Order, OrderEvent, PaymentResult, Product, ProductBuyer
from payments.signing import result_sign
from tests.payments.conftest import result_event
from tests.payments.factories import ProductFactory

OCCURRED = "2026-11-27T10:15:02.123+08:00"


def _event(order: Order, status: str, n: int, **overrides) -> dict:
    """A signed result with a fixed event_id and transaction_id, the same in both worlds."""
    event = {
        "event_id": f"e{n}",
        "paycode": order.paycode,
        "merchant_order_no": order.order_no,
        "status": status,
        "amount_fen": order.amount_fen,
        "channel": "alipay",
        "transaction_id": f"T{n}" if status == "PAID" else None,
        "occurred_at": OCCURRED,
    }
    event.update(overrides)
    event["signature"] = result_sign(event)
    return event


def _world(tag: str) -> tuple[list[Order], list[dict]]:
    """Orders in every state a result can meet, and a mixed batch of results for them
    (several for the same order, refusals, stale and late ones)."""
    membership = ProductFactory(stock=50, per_user_limit=5)
    credits = ProductFactory(stock=50, entitlement_kind="credits", entitlement_days=None, entitlement_quantity=7)
    scarce = ProductFactory(stock=1)

    def place(product, user: str) -> Order:
        return services.order_place(
            component_id=product.component_id, user_id=f"{tag}-{user}", idempotency_key=uuid.uuid4().hex
        )

    o = [place(membership, f"u{i}") for i in range(8)]  # o[0..7]: pending, one user each
    stacker = [place(membership, "stacker") for _ in range(3)]  # one user's three memberships
    o += stacker  # o[8..10]
    o.append(place(credits, "c"))  # o[11]: credits
    late = place(scarce, "late")  # o[12]: closed, and its stock taken by another
    services.order_close(order_id=late.pk, cause="expired")
    place(scarce, "taker")
    o.append(late)
    paid = place(membership, "refundee")  # o[13]: paid before the batch
    services.payment_result_apply(payload=_event(paid, "PAID", 900), source="event")
    o.append(paid)
    Order.objects.filter(pk=o[2].pk).update(paycode="")  # o[2]: no paycode stored yet
    paycode_2 = o[2].paycode
    o = [Order.objects.get(pk=order.pk) for order in o]
    unknown = Order(order_no=f"NOPE{tag}", paycode="PCNOPE", amount_fen=990)

    events = [
        _event(o[0], "PAID", 1),
        _event(o[0], "PAID", 2),  # same order again: already paid
        _event(o[1], "PAID", 3, amount_fen=1),  # wrong amount: refused, noted
        _event(o[1], "PAID", 4),  # then the right one
        {**_event(o[2], "PAID", 5), "paycode": paycode_2, "signature": ""},  # bad signature
        _event(o[2], "PAID", 6, paycode=paycode_2),  # fills the paycode
        _event(o[3], "PAID", 7, paycode="PCWRONG"),  # another paycode: refused
        _event(unknown, "PAID", 8),
        _event(o[4], "FAILED", 9),  # closes, releases stock
        _event(o[4], "PAID", 10),  # the user paid at the last second: stock is there
        _event(o[5], "CLOSED", 11),
        _event(o[6], "PENDING", 12),
        _event(o[8], "PAID", 13),  # three memberships of one user: they stack
        _event(o[9], "PAID", 14),
        _event(o[12], "PAID", 15),  # closed, sold out: flagged for refund
        _event(o[12], "PAID", 16),  # again: already recorded
        _event(o[11], "PAID", 17),
        _event(o[13], "REFUNDED", 18),  # revokes
        _event(o[13], "PAID", 19),  # already refunded
        _event(o[10], "PAID", 20),  # the third membership, after the single-path turns
        _event(o[7], "PAID", 21),
        _event(o[3], "PAID", 22),
    ]
    events[4]["signature"] = "0" * 64
    return o, events


def _snapshot(orders: list[Order], tag: str) -> dict:
    """The state of a world, with what differs between worlds by construction (ids,
    order numbers, paycodes, user ids, timestamps) written relative to the world."""
    index = {order.pk: i for i, order in enumerate(orders)}
    now = {o.pk: Order.objects.get(pk=o.pk) for o in orders}
    paycodes = {now[o.pk].paycode: f"<paycode {i}>" for i, o in enumerate(orders) if now[o.pk].paycode}
    paycodes.update({o.order_no: f"<order {i}>" for i, o in enumerate(orders)})

    def plain(text: str) -> str:
        for code, name in paycodes.items():
            text = text.replace(code, name)
        return text.replace(tag, "<world>")

    ends = {(e.user_id, e.valid_until): index.get(e.order_id) for e in Entitlement.objects.all()}
    state = {"orders": [], "results": [], "entitlements": [], "products": [], "buyers": []}
    for order in orders:
        order = Order.objects.get(pk=order.pk)
        state["orders"].append(
            {
                "state": order.state,
                "holds_stock": order.holds_stock,
                "paycode": plain(order.paycode),
                "paid_at": order.paid_at,
                "paid_amount_fen": order.paid_amount_fen,
                "channel": order.channel,
                "transaction_id": order.transaction_id,
                "closed": order.closed_at is not None,
                "close_cause": order.close_cause,
                "refunded": order.refunded_at is not None,
                "refund_required": order.refund_required,
                "timeline": [
                    (e.from_state, e.to_state, e.cause, plain(str(sorted(e.detail.items()))))
                    for e in OrderEvent.objects.filter(order=order).order_by("created_at", "id")
                ],
            }
        )
    for result in PaymentResult.objects.order_by("id"):
        state["results"].append(
            (
                result.event_id,
                index.get(result.order_id),
                plain(result.merchant_order_no) if result.order_id is None else "",
                result.status,
                result.outcome,
                plain(result.reason),
                result.flagged,
                result.source,
            )
        )
    for e in Entitlement.objects.order_by("order_id"):
        state["entitlements"].append(
            (
                index[e.order_id],
                e.kind,
                e.quantity,
                e.valid_until - e.valid_from if e.valid_until else None,
                ends.get((e.user_id, e.valid_from)),  # whose membership this one extends
                e.revoked_at is not None,
            )
        )
    for product in Product.objects.filter(pk__in={o.product_id for o in orders}).order_by("id"):
        state["products"].append((product.stock, product.held))
        state["buyers"].append(sorted((plain(b.user_id), b.held) for b in ProductBuyer.objects.filter(product=product)))
    return state


def _clear() -> None:
    PaymentResult.objects.all().delete()
    Entitlement.objects.all().delete()
    Order.objects.all().delete()
    ProductBuyer.objects.all().delete()


@pytest.mark.django_db(transaction=True)
def test_a_mixed_batch_ends_as_the_results_applied_one_by_one(fake_payments):
    one_orders, one_events = _world("A")
    for event in one_events:
        services.payment_result_apply(payload=event, source="event")
    one_by_one = _snapshot(one_orders, "A")
    _clear()

    many_orders, many_events = _world("A")
    returned = services.payment_results_apply_many(payloads=many_events, source="event")
    at_once = _snapshot(many_orders, "A")

    for part in one_by_one:
        assert at_once[part] == one_by_one[part], part
    # and it is the end state it should be (not two equally wrong ones)
    assert [r.outcome for r in returned] == [
        "applied",
        "no_change",
        "refused",
        "applied",
        "refused",
        "applied",
        "refused",
        "refused",
        "applied",
        "applied",
        "applied",
        "no_change",
        "applied",
        "applied",
        "refund_flagged",
        "no_change",
        "applied",
        "applied",
        "no_change",
        "applied",
        "applied",
        "applied",  # the right paycode after the wrong one
    ]
    assert [r.pk for r in returned] == list(PaymentResult.objects.order_by("id").values_list("pk", flat=True))[1:]
    stacked = [e for e in at_once["entitlements"] if e[0] in (8, 9, 10)]
    assert [e[4] for e in stacked] == [None, 8, 9]  # each extends the one before
    assert at_once["orders"][4]["state"] == "paid" and at_once["orders"][12]["refund_required"]
    assert at_once["orders"][2]["paycode"] == "<paycode 2>"


@pytest.mark.django_db(transaction=True)
def test_query_answers_are_applied_many_at_once_without_a_signature(fake_payments):
    product = ProductFactory(stock=10, per_user_limit=1)
    orders = [
        services.order_place(component_id=product.component_id, user_id=f"q{i}", idempotency_key="k") for i in range(3)
    ]
    answers = [{**_event(order, "PAID", n), "signature": None} for n, order in enumerate(orders)]
    results = services.payment_results_apply_many(payloads=answers, source="query")
    assert [r.outcome for r in results] == ["applied"] * 3
    assert Entitlement.objects.count() == 3


@pytest.mark.django_db(transaction=True)
def test_many_paid_results_take_a_fixed_number_of_statements(fake_payments):
    product = ProductFactory(stock=50, per_user_limit=1)
    orders = [
        services.order_place(component_id=product.component_id, user_id=f"s{i}", idempotency_key="k") for i in range(12)
    ]
    with CaptureQueriesContext(connection) as queries:
        results = services.payment_results_apply_many(payloads=[result_event(o) for o in orders], source="event")
    assert [r.outcome for r in results] == ["applied"] * 12
    # begin, ids, orders FOR UPDATE, products FOR UPDATE, memberships, UPDATE orders,
    # INSERT events, INSERT entitlements, INSERT results, commit
    assert len(queries.captured_queries) <= 10, [q["sql"][:80] for q in queries.captured_queries]
    assert Order.objects.filter(state="paid").count() == 12
    assert Entitlement.objects.count() == 12
    assert Product.objects.get().held == 12


def test_payment_results_have_a_batch_handler():
    import payments.handlers  # noqa: F401 (registers)

    event_type = registry.lookup("payment.result")
    assert event_type is not None and event_type.batch_handler is not None


@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_and_single_results_stack_memberships_without_deadlock(fake_payments):
    """Batches of the same users' orders applied at once by several consumers, beside
    single results: every order paid once, every user's memberships stacked end to
    end, no deadlock (the batch locks orders by id, then products by id)."""
    product = ProductFactory(stock=200, per_user_limit=4)
    users = [f"batcher-{i}" for i in range(10)]
    orders = [
        services.order_place(component_id=product.component_id, user_id=user, idempotency_key=key)
        for user in users
        for key in ("a", "b", "c")
    ]
    events = [result_event(order, "PAID") for order in orders]
    # interleaved so every batch holds orders of every user, in different orders
    batches = [events[0::4], list(reversed(events[1::4])), events[2::4]]
    singles = events[3::4]
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(batches) + len(singles))

    def run(apply):
        try:
            barrier.wait(timeout=30)
            apply()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=run, args=(lambda b=b: services.payment_results_apply_many(payloads=b),))
        for b in batches
    ]
    threads += [
        threading.Thread(target=run, args=(lambda e=e: services.payment_result_apply(payload=e),)) for e in singles
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert Order.objects.filter(state="paid").count() == len(orders)
    assert PaymentResult.objects.filter(outcome="applied").count() == len(orders)
    for user in users:
        grants = list(Entitlement.objects.filter(user_id=user).order_by("valid_from", "pk"))
        assert len(grants) == 3, user
        assert grants[1].valid_from == grants[0].valid_until and grants[2].valid_from == grants[1].valid_until, user
        assert (grants[2].valid_until - grants[0].valid_from).days == 90


@pytest.mark.django_db(transaction=True)
def test_without_returning_the_results_are_recorded_and_applied_all_the_same(fake_payments):
    """The consumer's batch handler asks for nothing back (`returning=False`): the
    same rows, the same end state."""
    product = ProductFactory(stock=10, per_user_limit=1)
    orders = [
        services.order_place(component_id=product.component_id, user_id=f"n{i}", idempotency_key="k") for i in range(3)
    ]
    events = [result_event(o) for o in orders] + [result_event(orders[0])]
    assert services.payment_results_apply_many(payloads=events, source="event", returning=False) == []
    assert list(PaymentResult.objects.order_by("id").values_list("outcome", flat=True)) == [
        "applied",
        "applied",
        "applied",
        "no_change",
    ]
    assert Order.objects.filter(state="paid").count() == 3 and Entitlement.objects.count() == 3


@pytest.mark.django_db(transaction=True)
def test_the_orders_update_writes_only_the_columns_the_batch_changed(fake_payments):
    """A PENDING result that brings an order's paycode changes the paycode alone (as
    the single path does): its state, times and payment columns stay as they were,
    beside another order of the same batch that is paid; a batch that only fills
    paycodes updates no other column."""
    product = ProductFactory(stock=10, per_user_limit=1)
    filled, paid, only = (
        services.order_place(component_id=product.component_id, user_id=f"c{i}", idempotency_key="k") for i in range(3)
    )
    Order.objects.filter(pk__in=[filled.pk, only.pk]).update(paycode="")
    before = Order.objects.get(pk=filled.pk)

    services.payment_results_apply_many(payloads=[result_event(filled, "PENDING"), result_event(paid)], source="event")
    after = Order.objects.get(pk=filled.pk)
    assert after.paycode == filled.paycode and after.state == "pending"
    assert (after.updated_at, after.paid_at, after.paid_amount_fen, after.channel, after.transaction_id) == (
        before.updated_at,
        None,
        None,
        "",
        "",
    )
    assert Order.objects.get(pk=paid.pk).state == "paid"

    with CaptureQueriesContext(connection) as queries:
        services.payment_results_apply_many(payloads=[result_event(only, "PENDING")], source="event")
    (update,) = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("UPDATE")]
    assert update.split(" SET ")[1].split(" WHERE ")[0].count("=") == 1 and "paycode" in update
    assert Order.objects.get(pk=only.pk).paycode == only.paycode


@pytest.mark.django_db(transaction=True)
def test_a_batch_beyond_the_backends_parameter_bound_is_updated_in_parts(fake_payments):
    """SQLite binds at most 999 values a statement: the orders' UPDATE of a batch
    whose CASEs need more (80 orders: ~1,000) is split; MySQL/MariaDB bind without
    bound, so 80 orders (under the cap of 100) are one statement. Every order ends
    paid with its own transaction."""
    product = ProductFactory(stock=90, per_user_limit=1)
    orders = [
        services.order_place(component_id=product.component_id, user_id=f"p{i}", idempotency_key="k") for i in range(80)
    ]
    events = [result_event(o, transaction_id=f"TX{i}") for i, o in enumerate(orders)]
    with CaptureQueriesContext(connection) as queries:
        services.payment_results_apply_many(payloads=events, source="event", returning=False)
    updates = [q for q in queries.captured_queries if q["sql"].startswith("UPDATE")]
    # six columns change (state, updated_at, paid_at, paid_amount_fen, channel,
    # transaction_id; not the paycode), two values each where they differ, plus the id
    bound = connection.features.max_query_params
    assert len(updates) == (1 if bound is None else -(-80 // (bound // 13))) and (bound is None or len(updates) > 1)
    paid = dict(Order.objects.filter(state="paid").values_list("order_no", "transaction_id"))
    assert paid == {o.order_no: f"TX{i}" for i, o in enumerate(orders)}


@pytest.mark.django_db(transaction=True)
def test_the_orders_update_takes_at_most_its_cap_of_orders_a_statement(fake_payments, monkeypatch):
    """A CASE is searched row by row, so one statement's cost grows with the square of
    its orders: a batch bigger than the cap is updated in parts, on every backend."""
    from payments.services import results

    monkeypatch.setattr(results, "_UPDATE_MAX_ORDERS", 5)
    product = ProductFactory(stock=20, per_user_limit=1)
    orders = [
        services.order_place(component_id=product.component_id, user_id=f"m{i}", idempotency_key="k") for i in range(12)
    ]
    with CaptureQueriesContext(connection) as queries:
        services.payment_results_apply_many(payloads=[result_event(o) for o in orders], source="event")
    assert len([q for q in queries.captured_queries if q["sql"].startswith("UPDATE")]) == 3
    assert Order.objects.filter(state="paid").count() == 12
