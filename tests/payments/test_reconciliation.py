"""对账: every kind of difference found and repaired against the sandbox."""

import uuid

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from payments import client as payment_client
from payments import services
from payments.models import Entitlement, Order, Product, ReconciliationReport
from payments.sandbox.models import SandboxPaycode
from payments.sandbox.services import sandbox_cashier_act
from tests.payments.conftest import result_event
from tests.payments.factories import ProductFactory


def place(product, user_id) -> Order:
    order = services.order_place(component_id=product.component_id, user_id=user_id, idempotency_key=uuid.uuid4().hex)
    return order


def sandbox_code(order) -> SandboxPaycode:
    return SandboxPaycode.objects.get(paycode=order.paycode)


def test_reconciliation_finds_and_repairs_each_difference(sandbox):
    product = ProductFactory(stock=10, per_user_limit=5)
    agree = place(product, "agree")
    sandbox_cashier_act(paycode=sandbox_code(agree), action="alipay", publish=False)
    services.payment_result_apply(payload=payment_client.paycode_query(paycode=agree.paycode), source="query")

    unheard = place(product, "unheard")  # paid at the service, the event never came
    sandbox_cashier_act(paycode=sandbox_code(unheard), action="wechat", publish=False)

    phantom = place(product, "phantom")  # we think it is paid, the service says closed
    services.payment_result_apply(payload=result_event(phantom, "PAID"))
    SandboxPaycode.objects.filter(paycode=phantom.paycode).update(status="CLOSED")

    refunded = place(product, "refunded")  # refunded in the payment console, we never heard
    sandbox_cashier_act(paycode=sandbox_code(refunded), action="alipay", publish=False)
    services.payment_result_apply(payload=payment_client.paycode_query(paycode=refunded.paycode), source="query")
    SandboxPaycode.objects.filter(paycode=refunded.paycode).update(status="REFUNDED")

    dangling = place(product, "dangling")  # we closed it, the paycode is still open
    services.order_close(order_id=dangling.pk, cause="cancelled")

    report = services.reconciliation_run(day=timezone.localdate())
    assert (report.orders_checked, report.differences, report.repaired, report.errors) == (5, 4, 4, 0)
    kinds = {item.order.user_id: (item.kind, item.repaired) for item in report.items.select_related("order")}
    assert kinds == {
        "unheard": ("paid_unknown", True),
        "phantom": ("paid_not_paid", True),
        "refunded": ("refunded_unknown", True),
        "dangling": ("closed_still_pending", True),
    }
    states = dict(Order.objects.values_list("user_id", "state"))
    assert states == {
        "agree": "paid",
        "unheard": "paid",
        "phantom": "closed",
        "refunded": "refunded",
        "dangling": "closed",
    }
    assert Entitlement.objects.get(order__user_id="unheard").revoked_at is None
    assert Entitlement.objects.get(order__user_id="phantom").revoked_at is not None
    assert Entitlement.objects.get(order__user_id="refunded").revoked_at is not None
    assert SandboxPaycode.objects.get(paycode=dangling.paycode).status == "CLOSED"
    assert [e.cause for e in Order.objects.get(user_id="phantom").events.all()][-1] == "reconciled_not_paid"
    product.refresh_from_db()
    assert product.held == 2  # agree + unheard

    # a second run finds them in agreement
    again = services.reconciliation_run(day=timezone.localdate())
    assert (again.differences, again.orders_checked) == (0, 5)

    # the report is visible in the admin
    staff = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw-for-tests-2026")
    client = Client()
    client.force_login(staff)
    page = client.get(f"/admin/payments/reconciliationreport/{report.pk}/change/")
    assert page.status_code == 200
    assert "paid_unknown" in page.content.decode() or "Service says PAID" in page.content.decode()
    assert client.get("/admin/payments/reconciliationreport/").status_code == 200


@pytest.mark.django_db
def test_reconciliation_applies_a_payment_on_a_closed_order_and_only_reports_what_it_cannot_repair(fake_payments):
    product = ProductFactory(stock=10)
    late = place(product, "late")  # we closed it at expiry; the user had paid at the last second
    services.order_close(order_id=late.pk, cause="expired")
    fake_payments.set_status(late.order_no, "PAID", channel="wechat", transaction_id="WX-LATE")
    mismatch = place(product, "mismatch")  # the service holds another amount: a human must look
    fake_payments.set_status(mismatch.order_no, "PAID", amount_fen=1, channel="alipay", transaction_id="ALI-1")
    early = place(product, "early")  # we hold a PAID result, the service still says PENDING
    services.payment_result_apply(payload=result_event(early, "PAID"))

    report = services.reconciliation_run(day=timezone.localdate())
    assert (report.orders_checked, report.differences, report.repaired, report.errors) == (3, 3, 1, 0)
    kinds = {item.order.user_id: (item.kind, item.repaired) for item in report.items.select_related("order")}
    assert kinds == {
        "late": ("paid_unknown", True),
        "mismatch": ("amount_mismatch", False),
        "early": ("paid_not_paid", False),
    }
    states = dict(Order.objects.values_list("user_id", "state"))
    assert states == {"late": "paid", "mismatch": "pending", "early": "paid"}
    assert [e.cause for e in Order.objects.get(user_id="late").events.all()][-1] == "paid_after_close"
    assert Entitlement.objects.get(order__user_id="late").revoked_at is None
    assert not Entitlement.objects.filter(order__user_id="mismatch").exists()
    assert Product.objects.get(pk=product.pk).held == 3

    staff = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw-for-tests-2026")
    client = Client()
    client.force_login(staff)
    listing = client.get("/admin/payments/reconciliationreport/").content.decode()
    assert '<strong style="color:#c00">3</strong>' in listing  # unrepaired differences in red


def test_reconciliation_records_a_query_failure(settings, sandbox):
    from tests.payments.fakes import closed_port_url

    place(ProductFactory(), "u")
    settings.PAYMENT_SERVICE_URL = closed_port_url()
    report = services.reconciliation_run(day=timezone.localdate())
    assert (report.orders_checked, report.errors, report.differences, report.repaired) == (1, 1, 1, 0)
    assert report.items.get().kind == "query_failed"
    assert ReconciliationReport.objects.count() == 1


@pytest.mark.django_db
def test_reconcile_task_defaults_to_yesterday(fake_payments):
    from payments.tasks import reconcile

    result = reconcile.delay().get()
    report = ReconciliationReport.objects.get(pk=result["report"])
    assert report.day == timezone.localdate() - timezone.timedelta(days=1)


@pytest.mark.django_db
def test_report_page_reads_its_differences_in_the_same_number_of_queries_however_many(fake_payments):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from payments.models import ReconciliationItem

    product = ProductFactory(stock=10)
    orders = [place(product, f"u{i}") for i in range(4)]
    staff = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw-for-tests-2026")
    client = Client()
    client.force_login(staff)

    def page_queries(differences: int) -> int:
        report = ReconciliationReport.objects.create(day=timezone.localdate(), differences=differences)
        for order in orders[:differences]:
            ReconciliationItem.objects.create(report=report, order=order, kind="amount_mismatch", our_state="pending")
        url = f"/admin/payments/reconciliationreport/{report.pk}/change/"
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return len(captured)

    page_queries(1)  # warm the session and permission caches
    assert page_queries(1) == page_queries(4)
