"""The whole purchase through the sandbox payment service (served by the live
server), with results flowing through the real broker and consumer."""

import json
import re
import uuid
from datetime import timedelta

import pytest
import requests
from django.utils import timezone

from payments import services
from payments.models import Entitlement, Order, PaymentResult, Product
from payments.sandbox.models import SandboxPaycode
from payments.signing import body_sign, result_signature_valid

pytestmark = pytest.mark.broker


def cashier_press(cashier_url: str, action: str, return_url: str = "") -> requests.Response:
    """A user on the cashier page pressing a button (a real browser session: CSRF cookie and token)."""
    session = requests.Session()
    page = session.get(cashier_url, params={"return_url": return_url} if return_url else None, timeout=10)
    assert page.status_code == 200 and "pay with Alipay (sandbox)" in page.text
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    return session.post(
        cashier_url,
        data={"csrfmiddlewaretoken": token, "action": action, "return_url": return_url},
        headers={"Referer": cashier_url},
        allow_redirects=False,
        timeout=10,
    )


def test_happy_path_order_cashier_event_entitlement(sandbox, events, product, user_client):
    client = user_client("buyer-1")
    created = client.post(f"/api/v1/components/{product.component_id}/orders", HTTP_IDEMPOTENCY_KEY="k1")
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["cashier_url"].startswith(sandbox.url + "/sandbox/pay/cashier/")
    pressed = cashier_press(body["cashier_url"], "alipay", return_url="/a/demo/")
    assert pressed.status_code == 303 and pressed.headers["Location"] == "/a/demo/"
    events.wait_for(lambda: Order.objects.filter(order_no=body["order_no"], state="paid").exists())
    order = client.get(f"/api/v1/me/orders/{body['order_no']}").json()
    assert order["status"] == "paid" and order["paid_at"] and order["entitlement"]["kind"] == "membership"
    held = client.get("/api/v1/me/entitlements").json()
    assert held["count"] == 1
    assert held["results"][0]["order_no"] == body["order_no"] and held["results"][0]["active"]
    result = PaymentResult.objects.get()
    assert (result.outcome, result.channel, result.source) == ("applied", "alipay", "event")
    assert result_signature_valid(result.payload)


def test_fail_button_closes_the_order_and_releases_stock(sandbox, events, product, user_client):
    body = user_client("u").post(f"/api/v1/components/{product.component_id}/orders", HTTP_IDEMPOTENCY_KEY="k").json()
    assert cashier_press(body["cashier_url"], "fail").status_code == 200
    events.wait_for(lambda: Order.objects.filter(state="closed").exists())
    assert Order.objects.get().close_cause == "payment_failed"
    assert Product.objects.get().held == 0


def test_sandbox_contract_signatures_idempotency_close_and_query(sandbox, settings):
    base = sandbox.url + "/sandbox/pay"
    raw = json.dumps(
        {"merchant_order_no": "M-1", "amount_fen": 500, "subject": "t", "user_id": "u", "expire_seconds": 600}
    ).encode()
    unsigned = requests.post(base + "/v1/paycodes", data=raw, headers={"X-Signature": "00"}, timeout=5)
    assert unsigned.status_code == 401
    first = requests.post(base + "/v1/paycodes", data=raw, headers={"X-Signature": body_sign(raw)}, timeout=5).json()
    again = requests.post(base + "/v1/paycodes", data=raw, headers={"X-Signature": body_sign(raw)}, timeout=5).json()
    assert first["paycode"] == again["paycode"] and set(first) == {"paycode", "cashier_url", "expires_at"}
    query = requests.get(f"{base}/v1/paycodes/{first['paycode']}", timeout=5).json()
    assert query["status"] == "PENDING" and query["merchant_order_no"] == "M-1" and query["amount_fen"] == 500
    SandboxPaycode.objects.filter(paycode=first["paycode"]).update(status="PAID")
    close = requests.post(
        f"{base}/v1/paycodes/{first['paycode']}/close", headers={"X-Signature": body_sign(b"")}, timeout=5
    )
    assert close.status_code == 409 and close.json() == {"status": "PAID"}


def _expire(order: Order) -> None:
    Order.objects.filter(pk=order.pk).update(expires_at=timezone.now() - timedelta(seconds=1))


def test_expiry_closes_the_paycode_first_then_the_order(sandbox, product):
    order = services.order_place(component_id=product.component_id, user_id="u", idempotency_key="k")
    _expire(order)
    assert services.orders_expire() == {"closed": 1}
    order.refresh_from_db()
    assert (order.state, order.close_cause) == ("closed", "expired")
    assert SandboxPaycode.objects.get(paycode=order.paycode).status == "CLOSED"
    assert Product.objects.get().held == 0
    assert services.orders_expire() == {}


def test_expiry_racing_a_payment_applies_the_payment_and_the_late_event_grants_nothing(sandbox, events, product):
    from payments.sandbox.services import sandbox_cashier_act

    order = services.order_place(component_id=product.component_id, user_id="u", idempotency_key="k")
    # the user pays at the last second; the result event is still on its way
    late_event = sandbox_cashier_act(
        paycode=SandboxPaycode.objects.get(paycode=order.paycode), action="wechat", publish=False
    )
    _expire(order)
    assert services.orders_expire() == {"paid": 1}  # close answered 409 PAID: queried and applied
    order.refresh_from_db()
    assert order.state == "paid" and order.channel == "wechat"
    assert [e.cause for e in order.events.all()] == ["created", "paid"]
    events.publish("payment", "payment.result", late_event)
    events.wait_for(lambda: PaymentResult.objects.filter(source="event").exists())
    assert PaymentResult.objects.get(source="event").outcome == "no_change"
    assert Entitlement.objects.filter(order=order).count() == 1
    assert Product.objects.get().held == 1


def test_payment_service_down_during_expiry_leaves_the_order_for_the_next_run(settings, sandbox, product):
    from tests.payments.fakes import closed_port_url

    order = services.order_place(component_id=product.component_id, user_id="u", idempotency_key=uuid.uuid4().hex)
    _expire(order)
    settings.PAYMENT_SERVICE_URL = closed_port_url()
    assert services.orders_expire() == {"service_error": 1}
    assert Order.objects.get().state == "pending" and Product.objects.get().held == 1
    settings.PAYMENT_SERVICE_URL = sandbox.url + "/sandbox/pay"
    assert services.orders_expire() == {"closed": 1}


def test_expiry_stops_at_the_first_order_while_the_service_is_down_and_skips_only_a_bad_answer(
    settings, sandbox, product
):
    from tests.payments.fakes import FixedAnswerServer, closed_port_url

    for user_id in ("a", "b", "c"):
        order = services.order_place(
            component_id=product.component_id, user_id=user_id, idempotency_key=uuid.uuid4().hex
        )
        _expire(order)
    settings.PAYMENT_SERVICE_URL = closed_port_url()
    assert services.orders_expire() == {"service_error": 1}  # one attempt, not one timeout per order
    unknown = FixedAnswerServer(404, {"error": "no such paycode"})  # outside the contract, about each paycode
    settings.PAYMENT_SERVICE_URL = unknown.url
    try:
        assert services.orders_expire() == {"bad_response": 3}
    finally:
        unknown.stop()
    assert Order.objects.filter(state="pending").count() == 3 and Product.objects.get().held == 3
    settings.PAYMENT_SERVICE_URL = sandbox.url + "/sandbox/pay"
    assert services.orders_expire() == {"closed": 3}
    assert Product.objects.get().held == 0


@pytest.mark.django_db
def test_sandbox_does_not_exist_when_disabled(settings, client):
    settings.PAYMENT_SANDBOX_ENABLED = False
    assert client.post("/sandbox/pay/v1/paycodes", data=b"{}", content_type="application/json").status_code == 404
    assert client.get("/sandbox/pay/cashier/SBX1").status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [
        {"merchant_order_no": "M-1", "amount_fen": 0, "expire_seconds": 600},
        {"merchant_order_no": "M-1", "amount_fen": 2**32, "expire_seconds": 600},
        {"merchant_order_no": "M-1", "amount_fen": 500, "expire_seconds": 10**20},
        {"merchant_order_no": "M-1", "amount_fen": 500, "expire_seconds": "600"},
        {"merchant_order_no": "M" * 65, "amount_fen": 500, "expire_seconds": 600},
        {"amount_fen": 500, "expire_seconds": 600},
        ["not", "an", "object"],
    ],
)
def test_sandbox_create_refuses_a_body_outside_the_contract_with_a_400(client, body):
    raw = json.dumps(body).encode()
    response = client.post(
        "/sandbox/pay/v1/paycodes", data=raw, content_type="application/json", HTTP_X_SIGNATURE=body_sign(raw)
    )
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid"
    assert not SandboxPaycode.objects.exists()


@pytest.mark.django_db
def test_unknown_paycode_is_a_json_404(client):
    assert client.get("/sandbox/pay/v1/paycodes/NOPE", HTTP_ACCEPT="application/json").status_code == 404
    closed = client.post(
        "/sandbox/pay/v1/paycodes/NOPE/close",
        data=b"",
        content_type="application/json",
        HTTP_X_SIGNATURE=body_sign(b""),
    )
    assert closed.status_code == 404 and closed.json()["error"]["code"] == "paycode_not_found"


def test_cashier_refuses_to_charge_twice(sandbox, product, user_client):
    body = user_client("u").post(f"/api/v1/components/{product.component_id}/orders", HTTP_IDEMPOTENCY_KEY="k").json()
    from payments.sandbox.services import CashierRefused, sandbox_cashier_act

    code = SandboxPaycode.objects.get(paycode=body["paycode"])
    event = sandbox_cashier_act(paycode=code, action="alipay", publish=False)
    assert result_signature_valid(event) and event["amount_fen"] == 990
    with pytest.raises(CashierRefused):
        sandbox_cashier_act(paycode=code, action="wechat", publish=False)
    again = requests.post(
        body["cashier_url"], data={"action": "alipay"}, headers={"Referer": body["cashier_url"]}, timeout=10
    )
    assert again.status_code == 403  # no CSRF token: Django refuses before anything moves
    assert SandboxPaycode.objects.get(paycode=body["paycode"]).channel == "alipay"
