"""Admin search on the tables that grow with traffic (core.admin_kit.LedgerSearchMixin):
exact identifiers, each lookup served by an index, never a scan of the ledger."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.contrib import admin
from django.contrib.messages import get_messages
from django.core.checks import run_checks
from django.core.management import call_command
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from core import admin_kit
from core.admin_kit import LedgerSearchMixin, ledger_filters_unserved, ledger_search_unserved
from core.models import ProcessedEvent
from payments.models import Order, PaymentResult
from tests.payments.factories import ProductFactory

pytestmark = pytest.mark.django_db

# The admins of tables that grow with every click, claim, event or payment.
LEDGERS = {
    "config.ProcessedEvent",
    "coupons.Claim",
    "coupons.Coupon",
    "coupons.RedeemCode",
    "attribution.Conversion",
    "attribution.MatchTrace",
    "attribution.Postback",
    "attribution.PendingEvent",
    "payments.Order",
    "payments.PaymentResult",
    "payments.Entitlement",
}


def _ledger_admins() -> dict[str, LedgerSearchMixin]:
    return {
        model._meta.label: model_admin
        for model, model_admin in admin.site._registry.items()
        if isinstance(model_admin, LedgerSearchMixin)
    }


def _orders(count: int, *, buyer: str | None = None) -> list[Order]:
    """`count` pending orders, of one buyer or each of its own."""
    product = ProductFactory()
    expires = timezone.now() + timedelta(hours=1)
    return Order.objects.bulk_create(
        Order(
            order_no=f"PO{n:08d}",
            product=product,
            user_id=buyer or f"u{n}",
            idempotency_key=f"k{n}",
            amount_fen=product.price_fen,
            paycode=f"PC{n:08d}",
            expires_at=expires,
        )
        for n in range(count)
    )


def _result_row(order: Order, event_id: str) -> PaymentResult:
    """An (unsaved) applied PAID result of `order`."""
    return PaymentResult(
        event_id=event_id,
        order=order,
        merchant_order_no=order.order_no,
        paycode=order.paycode,
        status="PAID",
        amount_fen=order.amount_fen,
        outcome="applied",
        payload={"event_id": event_id},
    )


def _result(order: Order, event_id: str) -> PaymentResult:
    result = _result_row(order, event_id)
    result.save()
    return result


def _listed(client, model, term: str):
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    response = client.get(url, {"q": term})
    assert response.status_code == 200
    return response


def test_every_ledger_admin_searches_and_filters_only_what_an_index_serves():
    assert set(_ledger_admins()) == LEDGERS
    errors = [e for e in run_checks(tags=["admin"]) if e.id in ("huodong.E002", "huodong.E003")]
    assert errors == [], [e.msg for e in errors]


def test_a_list_filter_that_lists_its_choices_from_the_whole_ledger_is_refused():
    class Careless(LedgerSearchMixin, admin.ModelAdmin):
        ledger_search_fields = ("merchant_order_no",)
        list_filter = (
            "channel",  # no choices, no index: a DISTINCT over every result
            ("order__product", admin.RelatedOnlyFieldListFilter),  # through a join
            "status",  # choices
            "flagged",  # a boolean
            "received_at",  # dates
            ("order", admin.RelatedOnlyFieldListFilter),  # its foreign key leads an index
            admin_kit.values_list_filter("paycode", "paycode", lambda: [("A", "A")]),  # from code
        )

    assert ledger_filters_unserved(Careless(PaymentResult, admin.site)) == [
        "'channel' lists its choices with a DISTINCT over payments.PaymentResult (no index leads it)",
        "'order__product' lists its choices with a DISTINCT over payments.PaymentResult (no index leads it)",
    ]


def test_filters_whose_choices_come_from_code_filter_the_list(admin_client):
    ProcessedEvent.objects.create(source="user_center", event_id="ev-1", event_type="app.activated")
    ProcessedEvent.objects.create(source="payment", event_id="ev-2", event_type="payment.result")
    url = reverse("admin:config_processedevent_changelist")
    response = admin_client.get(url, {"event_type": "payment.result"})
    changelist = response.context["cl"]
    assert [e.event_id for e in changelist.result_list] == ["ev-2"]
    choices = [c["display"] for spec in changelist.filter_specs for c in spec.choices(changelist)]
    assert "app.activated" in choices and "payment.result" in choices  # the registry's types


def test_a_search_field_without_an_index_is_refused_at_start_up():
    class Careless(LedgerSearchMixin, admin.ModelAdmin):
        ledger_search_fields = ("merchant_order_no", "transaction_id", "order__transaction_id", "order__events__cause")

    problems = ledger_search_unserved(Careless(PaymentResult, admin.site))
    assert problems == [
        "'transaction_id': no index of payments.PaymentResult starts with 'transaction_id'",
        "'order__transaction_id': no index of payments.Order starts with 'transaction_id'",
        "'order__events__cause': no index of payments.OrderEvent starts with 'cause'",
    ]

    class Nothing(LedgerSearchMixin, admin.ModelAdmin):
        pass

    assert ledger_search_unserved(Nothing(PaymentResult, admin.site)) == ["declares no ledger_search_fields"]


def test_a_search_finds_exact_identifiers_across_fields_and_relations(admin_client):
    first, second, third = _orders(3)
    _result(first, "ev-first")
    _result(second, "ev-second")
    _result(third, "ev-third")

    def found(term: str) -> list[str]:
        return sorted(r.merchant_order_no for r in _listed(admin_client, PaymentResult, term).context["cl"].result_list)

    assert found("ev-second") == [second.order_no]  # event id
    assert found(first.order_no) == [first.order_no]  # merchant order no
    assert found(third.paycode) == [third.order_no]  # the order's paycode, through the relation
    assert found(f" ev-first  {third.order_no} ") == [first.order_no, third.order_no]  # several, any field
    assert found("ev-") == []  # a part of an identifier is not a match
    assert found("x" * 500) == []  # longer than any searched column: nothing, no error
    page = _listed(admin_client, PaymentResult, "").content.decode()
    assert "Exact match" in page or "精确匹配" in page  # the box says how it searches


def test_a_search_keeps_the_filters_the_operator_chose_and_counts_only_them(admin_client):
    first, second = _orders(2)
    Order.objects.filter(pk=second.pk).update(state="paid", paid_at=timezone.now(), holds_stock=True)
    url = reverse("admin:payments_order_changelist")
    response = admin_client.get(url, {"q": f"{first.order_no} {second.order_no}", "state__exact": "paid"})
    changelist = response.context["cl"]
    assert [o.order_no for o in changelist.result_list] == [second.order_no]
    assert changelist.full_result_count is None  # the whole ledger is not counted again for "(M total)"


def test_a_term_that_cannot_be_a_value_of_a_field_skips_it(admin_client):
    from attribution.models import Postback

    assert list(_listed(admin_client, Postback, "not-a-number").context["cl"].result_list) == []


def test_a_lookup_with_more_rows_than_shown_says_so(admin_client, monkeypatch):
    monkeypatch.setattr(admin_kit, "LEDGER_SEARCH_MAX_ROWS", 2)
    _orders(3, buyer="heavy-buyer")
    response = _listed(admin_client, Order, "heavy-buyer")
    assert len(response.context["cl"].result_list) == 2
    warnings = [str(m) for m in get_messages(response.wsgi_request)]
    assert any("heavy-buyer" in text and "2" in text for text in warnings), warnings


def test_processed_events_are_found_by_event_id_whatever_their_source(admin_client):
    ProcessedEvent.objects.create(source="user_center", event_id="ev-1", event_type="app.activated")
    ProcessedEvent.objects.create(source="payment", event_id="ev-2", event_type="payment.result")
    ProcessedEvent.objects.create(source="payment", event_id="ev-3", event_type="payment.result")
    listed = _listed(admin_client, ProcessedEvent, "ev-1 ev-2").context["cl"].result_list
    assert sorted((e.source, e.event_id) for e in listed) == [("payment", "ev-2"), ("user_center", "ev-1")]


def _plan(queryset) -> list[str]:
    """Each table access of the query's plan, as the backend explains it."""
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        if connection.vendor == "mysql":
            cursor.execute("EXPLAIN " + sql, params)
            names = [c[0] for c in cursor.description]
            return [str(dict(zip(names, row, strict=True))) for row in cursor.fetchall()]
        cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
        return [row[-1] for row in cursor.fetchall()]


def _scans(plan: list[str]) -> list[str]:
    if connection.vendor == "mysql":
        return [step for step in plan if "'type': 'ALL'" in step or "'type': 'index'" in step]
    return [step for step in plan if step.startswith("SCAN")]


@pytest.mark.django_db(transaction=True)  # ANALYZE TABLE commits: the rows are flushed afterwards
def test_every_ledger_lookup_reads_an_index_not_the_table():
    """On the ledgers of the demo (seed_demo) plus a few thousand orders and payment
    results, the plan of every ledger admin's lookup of every field reads an index:
    no full scan of a table (nor of a whole index)."""
    call_command("seed_demo", stdout=StringIO())
    orders = _orders(2000)
    PaymentResult.objects.bulk_create(_result_row(order, f"ev{n}") for n, order in enumerate(orders))
    ProcessedEvent.objects.bulk_create(
        ProcessedEvent(source=("user_center", "payment")[n % 2], event_id=f"ev{n}", event_type="x") for n in range(2000)
    )
    if connection.vendor == "mysql":  # the statistics the optimizer plans with, as a live server keeps them
        with connection.cursor() as cursor:
            for model in {model_admin.model for model_admin in _ledger_admins().values()}:
                cursor.execute(f"ANALYZE TABLE {connection.ops.quote_name(model._meta.db_table)}")
                cursor.fetchall()
    checked = 0
    for label, model_admin in _ledger_admins().items():
        for path in model_admin.ledger_search_fields:
            lookup = model_admin.ledger_lookup(path, "123")
            if lookup is None:  # an enumerated column without values: the table is empty, nothing is read
                assert not model_admin.model._default_manager.exists(), (label, path)
                continue
            plan = _plan(lookup)
            assert _scans(plan) == [], f"{label} {path}: {plan}"
            checked += 1
    assert checked >= 20


@pytest.mark.django_db(transaction=True)
def test_the_plan_check_sees_the_scan_an_unindexed_column_needs():
    """The control for the test above: Django's own search (a part of a value, in a
    column without an index) reads the whole table, and `_scans` says so."""
    orders = _orders(200)
    PaymentResult.objects.bulk_create(_result_row(order, f"ev{n}") for n, order in enumerate(orders))
    assert _scans(_plan(PaymentResult.objects.filter(transaction_id="123").values_list("pk", flat=True))) != []
    assert _scans(_plan(PaymentResult.objects.filter(event_id__icontains="123").values_list("pk", flat=True))) != []


HOSTILE_TERMS = [
    "%",
    "_",
    "' OR 1=1 --",
    '"; DROP TABLE payments_order; --',
    "\\",
    "🧧" * 40,
    "９９９",  # full-width digits: read as 999 where a number goes (no such row)
    "1" * 300,
    "-1",
    "1e9",
    " ".join(f"t{n}" for n in range(100)),  # more terms than a search takes
]


@pytest.mark.parametrize("term", HOSTILE_TERMS)
def test_a_hostile_term_finds_nothing_and_changes_nothing_in_every_ledger(admin_client, term):
    first, _ = _orders(2)
    _result(first, "ev-first")
    before = (Order.objects.count(), PaymentResult.objects.count())
    for label, model_admin in _ledger_admins().items():
        response = _listed(admin_client, model_admin.model, term)
        assert list(response.context["cl"].result_list) == [], (label, term)
    assert (Order.objects.count(), PaymentResult.objects.count()) == before


def test_a_search_holding_a_null_character_is_refused_with_a_message(admin_client):
    """Django's own search form refuses it (a message), and the list is not searched."""
    _orders(1)
    response = _listed(admin_client, Order, "PO\x0000000000")
    assert [str(m) for m in get_messages(response.wsgi_request)] != []
