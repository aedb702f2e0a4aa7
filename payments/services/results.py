"""Payment results: the signed `payment.result` event, or a query answer of the payment service.

Lock order: order, then product (one FOR UPDATE with the join), then buyer. Many
results at once (`payment_results_apply_many`): every order by id, then every
product by id, then buyers."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from core import metrics
from core.db import db_value_adapter, model_field, rows_insert, sql_columns, sql_in, values_where
from payments.models import (
    CloseCause,
    Entitlement,
    EntitlementKind,
    Order,
    OrderEvent,
    OrderState,
    PaymentResult,
    Product,
    ResultOutcome,
    ResultSource,
    ServiceStatus,
)
from payments.services.orders import _entitlement_grant, _move, _note, _stock_take, order_close, order_refund
from payments.signing import result_signature_valid

logger = logging.getLogger("huodong.payments")


@dataclass(frozen=True)
class ResultFields:
    merchant_order_no: str
    paycode: str
    status: str
    amount_fen: int | None
    channel: str
    transaction_id: str


def _fields(payload: dict) -> ResultFields:
    amount = payload.get("amount_fen")
    return ResultFields(
        merchant_order_no=str(payload.get("merchant_order_no") or "")[:64],
        paycode=str(payload.get("paycode") or "")[:64],
        status=str(payload.get("status") or "")[:16],
        amount_fen=amount if isinstance(amount, int) and not isinstance(amount, bool) else None,
        channel=str(payload.get("channel") or "")[:16],
        transaction_id=str(payload.get("transaction_id") or "")[:128],
    )


def _result_record(*, payload: dict, f: ResultFields, source: str, order: Order | None) -> PaymentResult:
    """The (unsaved) record of one received result, as both the single and the batch
    path keep it."""
    return PaymentResult(
        source=source,
        event_id=_event_id(payload),
        order=order,
        merchant_order_no=f.merchant_order_no,
        paycode=f.paycode,
        status=f.status,
        amount_fen=f.amount_fen,
        channel=f.channel,
        transaction_id=f.transaction_id,
        occurred_at=_occurred_at(payload),
        payload=payload,
    )


def _event_id(payload: dict) -> str:
    return str(payload.get("event_id") or "")[:64]


def _occurred_at(payload: dict) -> str:
    return str(payload.get("occurred_at") or payload.get("paid_at") or "")[:40]


def _paid_at(payload: dict) -> datetime:
    for key in ("paid_at", "occurred_at"):
        raw = payload.get(key)
        if isinstance(raw, str):
            try:
                value = datetime.fromisoformat(raw)
            except ValueError:
                continue
            if value.tzinfo is not None:
                return value
    return timezone.now()


@transaction.atomic
def payment_result_apply(*, payload: dict, source: str = ResultSource.EVENT) -> PaymentResult:
    """Apply one payment result (the signed `payment.result` event, or a query
    answer of the payment service). Idempotent by order: a duplicate or stale
    result changes nothing, and an order's entitlement is granted at most once.
    A bad signature, an unknown order, another paycode or a wrong amount is
    refused: recorded, flagged, never applied."""
    f = _fields(payload)
    record = _result_record(payload=payload, f=f, source=source, order=None)

    def finish(outcome: str, reason: str = "", *, flagged: bool = False) -> PaymentResult:
        record.outcome, record.reason, record.flagged = outcome, reason[:255], flagged
        record.save()
        metrics.PAYMENT_RESULTS.labels(source, outcome).inc()
        if flagged:
            logger.warning(
                "payment result flagged",
                extra={"order_no": f.merchant_order_no, "status": f.status, "outcome": outcome, "reason": reason},
            )
        return record

    if source == ResultSource.EVENT and not result_signature_valid(payload):
        return finish(ResultOutcome.REFUSED, "bad signature", flagged=True)
    # FOR UPDATE with the join locks the product row too (order, then product: the
    # order every path takes), so results of one product apply one at a time; the
    # stacking of memberships in _entitlement_grant relies on it.
    order = Order.objects.select_for_update().select_related("product").filter(order_no=f.merchant_order_no).first()
    if order is None:
        return finish(ResultOutcome.REFUSED, "unknown order", flagged=True)
    record.order = order
    if order.paycode and f.paycode and f.paycode != order.paycode:
        _note(order, cause="result_refused", detail={"reason": "paycode mismatch", "paycode": f.paycode})
        return finish(ResultOutcome.REFUSED, f"paycode {f.paycode} is not the order's {order.paycode}", flagged=True)
    if f.amount_fen != order.amount_fen:
        _note(order, cause="result_refused", detail={"reason": "amount mismatch", "amount_fen": f.amount_fen})
        return finish(ResultOutcome.REFUSED, f"amount {f.amount_fen} differs from {order.amount_fen}", flagged=True)
    if f.paycode and not order.paycode:
        Order.objects.filter(pk=order.pk, paycode="").update(paycode=f.paycode)
    detail = {"source": source, "event_id": record.event_id, "transaction_id": f.transaction_id}

    if f.status == ServiceStatus.PAID:
        return _apply_paid(order, payload, f, detail, finish)
    if f.status in (ServiceStatus.FAILED, ServiceStatus.CLOSED):
        cause = CloseCause.PAYMENT_FAILED if f.status == ServiceStatus.FAILED else CloseCause.PAYMENT_CLOSED
        if order_close(order_id=order.pk, cause=cause, detail=detail):
            return finish(ResultOutcome.APPLIED)
        return finish(ResultOutcome.NO_CHANGE, f"order is {order.state}")
    if f.status == ServiceStatus.REFUNDED:
        if order_refund(order_id=order.pk, cause="refunded_by_payment_service", detail=detail):
            return finish(ResultOutcome.APPLIED)
        return finish(ResultOutcome.NO_CHANGE, f"order is {order.state}")
    return finish(ResultOutcome.NO_CHANGE, "PENDING changes nothing")


def _apply_paid(
    order: Order, payload: dict, f: ResultFields, detail: dict, finish: Callable[..., PaymentResult]
) -> PaymentResult:
    paid = {
        "paid_at": _paid_at(payload),
        "paid_amount_fen": f.amount_fen,
        "channel": f.channel,
        "transaction_id": f.transaction_id,
    }
    if order.state == OrderState.PENDING:
        _move(order, from_states=(OrderState.PENDING,), to_state=OrderState.PAID, cause="paid", detail=detail, **paid)
        _entitlement_grant(order)
        return finish(ResultOutcome.APPLIED)
    if order.state in (OrderState.PAID, OrderState.REFUNDED):
        return finish(ResultOutcome.NO_CHANGE, f"order already {order.state}")
    # closed: the user paid at the last second
    if order.paid_at is not None:
        return finish(ResultOutcome.NO_CHANGE, "payment after close already recorded")
    refused = _stock_take(
        product_id=order.product_id, user_id=order.user_id, per_user_limit=order.product.per_user_limit
    )
    if refused is None:
        _move(
            order,
            from_states=(OrderState.CLOSED,),
            to_state=OrderState.PAID,
            cause="paid_after_close",
            detail={**detail, "closed_by": order.close_cause},
            holds_stock=True,
            **paid,
        )
        _entitlement_grant(order)
        return finish(ResultOutcome.APPLIED, "paid after close; stock was still available")
    Order.objects.filter(pk=order.pk).update(refund_required=True, updated_at=timezone.now(), **paid)
    _note(order, cause="paid_after_close_refund_required", detail={**detail, "why": refused})
    return finish(
        ResultOutcome.REFUND_FLAGGED, f"paid after close, {refused.replace('_', ' ')}: refund it", flagged=True
    )


# --- many results at once (the event consumer's batch handler) -----------------------

# What the batch applies in memory and writes set-based: a refusal, PENDING, PAID of a
# pending order, and PAID of an order already paid, refunded, or closed after a late
# payment was recorded. The rest (FAILED, CLOSED, REFUNDED, PAID of a closed order)
# moves stock and entitlements: those go through `payment_result_apply` itself.
#
# The batch reads only the columns it decides on and writes rows built as plain
# tuples with one multi-row statement per table (`core.db.rows_insert`, which adapts
# the values as the ORM does, and `_orders_update`): at 50 results a batch, building
# and compiling model instances (`Order`/`Product` reads, `bulk_create`'s per-object
# preparation) cost more than the statements themselves.


@dataclass(slots=True)
class _LockedOrder:
    """The columns of a locked order that the batch decides on and writes back."""

    pk: int
    order_no: str
    product_id: int
    user_id: str
    amount_fen: int
    state: str
    paycode: str
    paid_at: datetime | None
    paid_amount_fen: int | None
    channel: str
    transaction_id: str
    updated_at: datetime


_ORDER_COLUMNS = (
    "pk",
    "order_no",
    "product_id",
    "user_id",
    "amount_fen",
    "state",
    "paycode",
    "paid_at",
    "paid_amount_fen",
    "channel",
    "transaction_id",
    "updated_at",
)
# what the orders' UPDATE may write (the attributes of _LockedOrder of the same names):
# what PAID sets, and the paycode a result brings to an order that had none
_PAID_WRITES = ("state", "updated_at", "paid_at", "paid_amount_fen", "channel", "transaction_id")
_ORDER_WRITES = (*_PAID_WRITES, "paycode")
# orders a statement at most: each row searches its CASEs' WHENs in turn, so a
# statement's cost grows with the square of its orders (100: the default batch, one)
_UPDATE_MAX_ORDERS = 100


@dataclass(frozen=True, slots=True)
class _LockedProduct:
    pk: int
    entitlement_kind: str
    entitlement_days: int | None
    entitlement_quantity: int


# the columns the batch gives `rows_insert` (attnames), in the order of its tuples;
# an entitlement's `revoked_at` is left out (its default, NULL)
_EVENT_FIELDS = ("order_id", "from_state", "to_state", "cause", "detail", "created_at")
_ENTITLEMENT_FIELDS = (
    "order_id",
    "product_id",
    "user_id",
    "kind",
    "quantity",
    "granted_at",
    "valid_from",
    "valid_until",
)
# every column of PaymentResult, in the model's order (`from_db` takes them so); the
# batch writes all but the id
_RESULT_ATTNAMES = tuple(f.attname for f in PaymentResult._meta.concrete_fields)
_RESULT_FIELDS = tuple(f.attname for f in PaymentResult._meta.concrete_fields if not f.primary_key)


def _paid_fast(order: _LockedOrder, f: ResultFields) -> bool:
    if f.status != ServiceStatus.PAID:
        return f.status not in (ServiceStatus.FAILED, ServiceStatus.CLOSED, ServiceStatus.REFUNDED)
    return order.state != OrderState.CLOSED or order.paid_at is not None


def _orders_update(orders: list[_LockedOrder], *, columns: set[str]) -> None:
    """One UPDATE of many orders: `col = %s` where every order has the same value, else
    `col = CASE id WHEN %s THEN %s ... END`. What `bulk_update` writes, without the
    per-value expression objects it builds (values adapted as `core.db.rows_insert`
    adapts them: datetimes once per moment, most orders of a batch share the same few).

    Only the `_ORDER_WRITES` among `columns` are written: those some order of the batch
    changed. A CASE that rewrote every order's (indexed) paycode with its own value
    cost the server a fifth of the statement (docs/events.md, ninth round). Up to
    `_UPDATE_MAX_ORDERS` orders a statement, fewer where the backend bounds the
    parameters of one (SQLite: 999)."""
    names = [name for name in _ORDER_WRITES if name in columns]
    if not orders or not names:
        return
    adapters = {name: db_value_adapter(model_field(Order, name)) for name in names}
    table, sql_cols = sql_columns(Order, "pk", *names)
    pk = sql_cols["pk"]
    bound = connection.features.max_query_params
    step = _UPDATE_MAX_ORDERS if bound is None else min(_UPDATE_MAX_ORDERS, max(1, bound // (2 * len(names) + 1)))
    for start in range(0, len(orders), step):
        chunk = orders[start : start + step]
        sets: list[str] = []
        params: list[Any] = []
        for name in names:
            adapt = adapters[name]
            values = [adapt(getattr(order, name)) for order in chunk]
            column = sql_cols[name]
            if all(value == values[0] for value in values):
                sets.append(f"{column} = %s")
                params.append(values[0])
            else:
                sets.append(f"{column} = CASE {pk} " + "WHEN %s THEN %s " * len(chunk) + "END")
                for order, value in zip(chunk, values, strict=True):
                    params += [order.pk, value]
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET {', '.join(sets)} WHERE {pk} IN {sql_in(len(chunk))}",
                [*params, *(order.pk for order in chunk)],
            )


def _orders_lock(numbers: set[str]) -> dict[str, _LockedOrder]:
    """FOR UPDATE of the orders `numbers`, in id order (their ids read first)."""
    if not numbers:
        return {}
    # plain SQL (`values_where`): the ORM's compilation of these reads with fifty numbers
    # cost more than the database's answer (docs/events.md)
    _, col = sql_columns(Order, "order_no", "id")
    found = values_where(Order, fields=["pk"], where=f"{col['order_no']} IN {sql_in(len(numbers))}", params=[*numbers])
    ids = sorted(pk for (pk,) in found)
    if not ids:
        return {}
    rows = values_where(
        Order,
        fields=_ORDER_COLUMNS,
        where=f"{col['id']} IN {sql_in(len(ids))}",
        params=ids,
        order_by=["pk"],
        for_update=True,
    )
    return {row[1]: _LockedOrder(*row) for row in rows}


def _products_lock(ids: set[int]) -> dict[int, _LockedProduct]:
    """FOR UPDATE of the products `ids`, in id order."""
    if not ids:
        return {}
    _, col = sql_columns(Product, "id")
    rows = values_where(
        Product,
        fields=["pk", "entitlement_kind", "entitlement_days", "entitlement_quantity"],
        where=f"{col['id']} IN {sql_in(len(ids))}",
        params=sorted(ids),
        order_by=["pk"],
        for_update=True,
    )
    return {row[0]: _LockedProduct(*row) for row in rows}


class _ResultsBatch:
    """The writes of many results, held in memory as rows and written with one
    statement per table (`flush`). The caller holds the row locks of every order and
    product."""

    def __init__(
        self, source: str, orders: dict[str, _LockedOrder], products: dict[int, _LockedProduct], *, returning: bool
    ):
        self.source = source
        self.returning = returning
        self.orders = orders
        self.products = products
        self.now = timezone.now()
        self.changed: dict[int, _LockedOrder] = {}
        self.changed_columns: set[str] = set()  # of _ORDER_WRITES, by any order of `changed`
        self.events: list[tuple] = []  # _EVENT_FIELDS but created_at
        self.entitlements: list[tuple] = []  # _ENTITLEMENT_FIELDS
        self.results: list[tuple[int, tuple]] = []  # (index in `done`, _RESULT_FIELDS but received_at)
        self.outcomes: Counter[str] = Counter()
        self.done: list[PaymentResult | None] = []
        self._latest: dict[tuple[str, int], datetime] | None = None

    def finish(
        self,
        payload: dict,
        f: ResultFields,
        order_id: int | None,
        outcome: str,
        reason: str = "",
        *,
        flagged: bool = False,
    ) -> None:
        """`payment_result_apply`'s `finish`: the result's record, held for `flush`."""
        record = (
            self.source,
            _event_id(payload),
            order_id,
            f.merchant_order_no,
            f.paycode,
            f.status,
            f.amount_fen,
            f.channel,
            f.transaction_id,
            _occurred_at(payload),
            outcome,
            reason[:255],
            flagged,
            payload,
        )
        self.results.append((len(self.done), record))
        if self.returning:
            self.done.append(None)
        self.outcomes[outcome] += 1
        if flagged:
            logger.warning(
                "payment result flagged",
                extra={"order_no": f.merchant_order_no, "status": f.status, "outcome": outcome, "reason": reason},
            )

    def note(self, order: _LockedOrder, *, cause: str, detail: dict) -> None:
        self.events.append((order.pk, order.state, order.state, cause, detail))

    def latest_membership(self, user_id: str, product_id: int) -> datetime | None:
        """What `_entitlement_grant` reads per grant (the latest end of the user's
        live memberships of the product), read once for the whole batch and then
        kept up to date in memory as grants are added."""
        if self._latest is None:
            keys = {
                (o.user_id, o.product_id)
                for o in self.orders.values()
                if self.products[o.product_id].entitlement_kind == EntitlementKind.MEMBERSHIP
            }
            users = {user for user, _ in keys}
            products = {product for _, product in keys}
            self._latest = {}
            if keys:  # plain SQL (`values_where`): no ORM compilation of the fifty users
                _, col = sql_columns(Entitlement, "user_id", "product", "revoked_at", "valid_until")
                for user, product, until in values_where(
                    Entitlement,
                    fields=["user_id", "product_id", "valid_until"],
                    where=f"{col['user_id']} IN {sql_in(len(users))} AND {col['product']} IN {sql_in(len(products))}"
                    f" AND {col['revoked_at']} IS NULL AND {col['valid_until']} > %s",
                    params=[*users, *products, connection.ops.adapt_datetimefield_value(self.now)],
                ):
                    latest = self._latest.get((user, product))
                    self._latest[(user, product)] = until if latest is None or until > latest else latest
        return self._latest.get((user_id, product_id))

    def grant(self, order: _LockedOrder) -> None:
        """`_entitlement_grant`, in memory."""
        product = self.products[order.product_id]
        valid_from, valid_until, quantity = self.now, None, product.entitlement_quantity
        if product.entitlement_kind == EntitlementKind.MEMBERSHIP:
            latest = self.latest_membership(order.user_id, product.pk)
            valid_from = max(self.now, latest) if latest else self.now
            valid_until = valid_from + timedelta(days=product.entitlement_days or 0)
            quantity = 1
            assert self._latest is not None
            self._latest[(order.user_id, product.pk)] = valid_until
        self.entitlements.append(
            (order.pk, product.pk, order.user_id, product.entitlement_kind, quantity, self.now, valid_from, valid_until)
        )

    def apply(self, payload: dict, f: ResultFields, order: _LockedOrder) -> None:
        """`payment_result_apply` from the order lookup on, for a result `_paid_fast` accepts."""
        if order.paycode and f.paycode and f.paycode != order.paycode:
            self.note(order, cause="result_refused", detail={"reason": "paycode mismatch", "paycode": f.paycode})
            reason = f"paycode {f.paycode} is not the order's {order.paycode}"
            return self.finish(payload, f, order.pk, ResultOutcome.REFUSED, reason, flagged=True)
        if f.amount_fen != order.amount_fen:
            self.note(order, cause="result_refused", detail={"reason": "amount mismatch", "amount_fen": f.amount_fen})
            reason = f"amount {f.amount_fen} differs from {order.amount_fen}"
            return self.finish(payload, f, order.pk, ResultOutcome.REFUSED, reason, flagged=True)
        if f.paycode and not order.paycode:
            order.paycode = f.paycode
            self.changed[order.pk] = order
            self.changed_columns.add("paycode")
        if f.status != ServiceStatus.PAID:
            return self.finish(payload, f, order.pk, ResultOutcome.NO_CHANGE, "PENDING changes nothing")
        if order.state in (OrderState.PAID, OrderState.REFUNDED):
            return self.finish(payload, f, order.pk, ResultOutcome.NO_CHANGE, f"order already {order.state}")
        if order.state == OrderState.CLOSED:  # `_paid_fast`: a late payment already recorded
            return self.finish(payload, f, order.pk, ResultOutcome.NO_CHANGE, "payment after close already recorded")
        detail = {"source": self.source, "event_id": _event_id(payload), "transaction_id": f.transaction_id}
        self.events.append((order.pk, order.state, OrderState.PAID, "paid", detail))
        order.state, order.updated_at = OrderState.PAID, self.now
        order.paid_at, order.paid_amount_fen = _paid_at(payload), f.amount_fen
        order.channel, order.transaction_id = f.channel, f.transaction_id
        self.changed[order.pk] = order
        self.changed_columns.update(_PAID_WRITES)
        self.grant(order)
        return self.finish(payload, f, order.pk, ResultOutcome.APPLIED)

    def alone(self, payload: dict, order: _LockedOrder) -> None:
        """A result the batch does not apply itself: what came before is written, then
        `payment_result_apply`, then the order (and memberships) are read again."""
        self.flush()
        record = payment_result_apply(payload=payload, source=self.source)
        if self.returning:
            self.done.append(record)
        row = Order.objects.filter(pk=order.pk).values_list(*_ORDER_COLUMNS).get()
        self.orders[order.order_no] = _LockedOrder(*row)
        self._latest = None

    def flush(self) -> None:
        """One statement per table for what is held (the orders' UPDATE with a CASE
        per column), in the order the single path writes them."""
        now = timezone.now()  # what auto_now_add sets at save
        if self.changed:
            _orders_update(list(self.changed.values()), columns=self.changed_columns)
        if self.events:
            rows_insert(OrderEvent, fields=_EVENT_FIELDS, rows=[(*event, now) for event in self.events])
        if self.entitlements:
            rows_insert(Entitlement, fields=_ENTITLEMENT_FIELDS, rows=self.entitlements)
        if self.results:
            rows = [(*record, now) for _, record in self.results]
            # the ids where the database returns them (as `bulk_create`), else none
            returning = self.returning and connection.features.can_return_rows_from_bulk_insert
            ids = rows_insert(PaymentResult, fields=_RESULT_FIELDS, rows=rows, returning_pk=returning)
            if self.returning:
                for n, (index, _) in enumerate(self.results):
                    self.done[index] = PaymentResult.from_db(
                        connection.alias, _RESULT_ATTNAMES, (ids[n] if ids else None, *rows[n])
                    )
        for outcome, count in self.outcomes.items():
            metrics.PAYMENT_RESULTS.labels(self.source, outcome).inc(count)
        self.changed, self.events, self.entitlements, self.results = {}, [], [], []
        self.changed_columns = set()
        self.outcomes = Counter()


@transaction.atomic(savepoint=False)
def payment_results_apply_many(
    *, payloads: list[dict], source: str = ResultSource.EVENT, returning: bool = True
) -> list[PaymentResult]:
    """Apply many payment results at once, in order: the same end state as calling
    `payment_result_apply` on each (the event consumer's batch handler relies on it;
    tests/payments/test_results_batch.py compares the two), with set-based
    statements: one SELECT … FOR UPDATE of all the orders and one of their products,
    one read of the users' live memberships, then one multi-row write per table.
    Results that move stock or revoke (FAILED, CLOSED, REFUNDED, PAID of a closed
    order) go through `payment_result_apply` in their turn, after what came before
    them is written. Returns the recorded results, in order (with their ids where
    the database returns them, as `bulk_create`); `returning=False` returns nothing
    and skips building them (the consumer's batch handler: a model instance per
    result cost as much as a statement).

    One transaction, without a savepoint of its own (`savepoint=False`: the consumer
    already applies a batch in its savepoint; whatever raises here rolls back the
    enclosing block).

    Lock order: every order (by id), then every product (by id), then buyers (only on
    the single path's turns). Two batches lock their orders in id order and their
    products after all their orders, so they cannot deadlock; against the single
    paths (one order, then its product) a batch waits on a product only while it
    holds no lock that path still needs."""
    if source == ResultSource.EVENT:
        fields = [(payload, _fields(payload), result_signature_valid(payload)) for payload in payloads]
    else:
        fields = [(payload, _fields(payload), True) for payload in payloads]
    orders = _orders_lock({f.merchant_order_no for _, f, signed in fields if signed})
    products = _products_lock({o.product_id for o in orders.values()})
    batch = _ResultsBatch(source, orders, products, returning=returning)
    for payload, f, signed in fields:
        if not signed:
            batch.finish(payload, f, None, ResultOutcome.REFUSED, "bad signature", flagged=True)
            continue
        found = batch.orders.get(f.merchant_order_no)
        if found is None:
            batch.finish(payload, f, None, ResultOutcome.REFUSED, "unknown order", flagged=True)
        elif _paid_fast(found, f):
            batch.apply(payload, f, found)
        else:
            batch.alone(payload, found)
    batch.flush()
    done = [record for record in batch.done if record is not None]
    assert len(done) == (len(payloads) if returning else 0)
    return done
