"""The paid_sale component type on a real, published activity, its admin screens,
and the expiry / reconciliation tasks' wiring."""

from datetime import timedelta
from urllib.parse import quote

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from activities import services as activity_services
from components import registry
from payments import services
from payments.models import Entitlement, Product
from tests.factories import ActivityFactory
from tests.payments.conftest import result_event

pytestmark = pytest.mark.django_db


@pytest.fixture
def page(django_capture_on_commit_callbacks):
    activity = ActivityFactory(slug="vip-sale", ends_at=timezone.now() + timedelta(days=3))
    component = activity_services.component_create(
        activity=activity, actor=None, type="paid_sale", title="会员限时购", config={"button_text": "抢购"}
    )
    product = services.product_create(
        component=component,
        name="VIP 月卡",
        price_fen=990,
        stock=3,
        per_user_limit=1,
        entitlement_kind="membership",
        entitlement_days=30,
    )
    with django_capture_on_commit_callbacks(execute=True):
        activity_services.activity_publish(activity=activity, actor=None)
    return activity, component, product


def _component(client, component):
    body = client.get("/api/v1/activities/vip-sale").json()
    return next(c for c in body["components"] if c["id"] == component.pk)


def test_type_is_registered_with_a_strict_schema():
    ctype = registry.get("paid_sale")
    assert ctype.template == "components/paid_sale.html" and ctype.live_state is not None
    assert registry.config_validate("paid_sale", {}) == {"button_text": "立即购买", "show_stock": True, "note": ""}
    with pytest.raises(registry.ConfigInvalid):
        registry.config_validate("paid_sale", {"price_fen": 1})


def test_activity_api_shows_product_price_stock_and_the_users_state(page, fake_payments, user_client, api_client):
    _activity, component, _product = page
    anonymous = _component(api_client, component)
    assert anonymous["config"]["product"]["name"] == "VIP 月卡" and anonymous["config"]["button_text"] == "抢购"
    assert anonymous["state"]["price_fen"] == 990 and anonymous["state"]["remaining"] == 3
    assert anonymous["state"]["sale_status"] == "on_sale" and anonymous["state"]["user"] is None

    buyer = user_client("buyer")
    order = buyer.post(f"/api/v1/components/{component.pk}/orders", HTTP_IDEMPOTENCY_KEY="k").json()
    state = _component(buyer, component)["state"]
    assert state["remaining"] == 2
    assert state["user"]["pending_order"]["order_no"] == order["order_no"] and not state["user"]["can_buy"]

    from payments.models import Order

    services.payment_result_apply(payload=result_event(Order.objects.get(order_no=order["order_no"]), "PAID"))
    state = _component(buyer, component)["state"]
    assert state["user"]["pending_order"] is None
    assert state["user"]["entitlements"][0]["kind"] == "membership" and state["user"]["entitlements"][0]["active"]


def test_public_page_renders_the_buy_button(page, client):
    html = client.get("/a/vip-sale/").content.decode()
    assert 'data-component-type="paid_sale"' in html and "VIP 月卡" in html and "data-buy" in html


def test_cloning_an_activity_copies_the_product_with_full_stock(page, fake_payments, user_client):
    activity, component, product = page
    user_client("u").post(f"/api/v1/components/{component.pk}/orders", HTTP_IDEMPOTENCY_KEY="k")
    clone = activity_services.activity_clone(
        source=activity, actor=None, name="copy", slug="vip-sale-copy", is_template=False
    )
    copied = Product.objects.get(component__activity=clone)
    assert (copied.name, copied.price_fen, copied.stock, copied.held) == ("VIP 月卡", 990, 3, 0)
    assert copied.pk != product.pk


def test_membership_purchases_stack(fake_payments):
    from tests.payments.factories import ProductFactory

    product = ProductFactory(per_user_limit=2)
    first = services.order_place(component_id=product.component_id, user_id="u", idempotency_key="a")
    second = services.order_place(component_id=product.component_id, user_id="u", idempotency_key="b")
    services.payment_result_apply(payload=result_event(first, "PAID"))
    services.payment_result_apply(payload=result_event(second, "PAID"))
    one, two = Entitlement.objects.order_by("pk")
    assert two.valid_from == one.valid_until and (two.valid_until - one.valid_from).days == 60


def test_admin_screens_show_counts_timeline_and_payment_events(fake_payments):
    from tests.payments.factories import ProductFactory

    product = ProductFactory(stock=10)
    paid = services.order_place(component_id=product.component_id, user_id="a", idempotency_key="k")
    services.order_place(component_id=product.component_id, user_id="b", idempotency_key="k")
    services.payment_result_apply(payload=result_event(paid, "PAID"))
    services.payment_result_apply(payload=result_event(paid, "PAID", amount_fen=1))
    staff = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw-for-tests-2026")
    client = Client()
    client.force_login(staff)
    products = client.get("/admin/payments/product/").content.decode()
    assert '<td class="field-sold">1</td>' in products and '<td class="field-reserved">1</td>' in products
    assert '<td class="field-remaining_display">8</td>' in products
    assert client.get("/admin/payments/product/?o=-5.6").status_code == 200  # sorted by sold, then reserved
    midnight = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    since, until = (quote(t.isoformat(sep=" ")) for t in (midnight, midnight + timedelta(days=1)))
    for query in (
        "",
        "?state__exact=paid",
        f"?product__id__exact={product.pk}",
        f"?created_at__gte={since}&created_at__lt={until}",  # as the admin's date filter links it
    ):
        assert client.get("/admin/payments/order/" + query).status_code == 200
    listing = client.get("/admin/payments/order/?state__exact=paid").content.decode()
    assert paid.order_no in listing
    detail = client.get(f"/admin/payments/order/{paid.pk}/change/").content.decode()
    assert "timeline" in detail.lower() and "created" in detail and "amount 1 differs from 990" in detail
    assert client.get("/admin/payments/paymentresult/?flagged__exact=1").status_code == 200
    assert client.get("/admin/payments/entitlement/").status_code == 200
    assert client.get("/admin/payments/sandboxpaycode/").status_code == 200
    response = client.post(
        "/admin/payments/order/", {"action": "refund_orders", "_selected_action": [paid.pk]}, follow=True
    )
    assert response.status_code == 200
    paid.refresh_from_db()
    assert paid.state == "refunded" and Entitlement.objects.get(order=paid).revoked_at is not None


def test_beat_schedules_expiry_and_daily_reconciliation():
    from config.celery import app

    app.finalize()
    schedule = app.conf.beat_schedule
    assert schedule["payments.orders_expire"]["task"] == "payments.orders_expire"
    assert schedule["payments.reconciliation_run"]["task"] == "payments.reconciliation_run"


def test_demo_seed_is_idempotent():
    import io

    from activities import demo as activities_demo
    from payments import demo

    out = io.StringIO()
    activities_demo.seed(out)
    demo.seed(out)
    demo.seed(out)
    assert Product.objects.filter(component__activity__slug="demo").count() == 1
    assert "VIP 月卡" in out.getvalue()


def test_product_admin_refuses_stock_below_what_is_held_and_non_paid_sale_components(fake_payments):
    from tests.factories import ComponentFactory
    from tests.payments.factories import ProductFactory

    product = ProductFactory(stock=5)
    services.order_place(component_id=product.component_id, user_id="a", idempotency_key="k")
    services.order_place(component_id=product.component_id, user_id="b", idempotency_key="k")
    staff = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw-for-tests-2026")
    client = Client()
    client.force_login(staff)
    form = {
        "component": product.component_id,
        "name": product.name,
        "description": "",
        "price_fen": 990,
        "stock": 1,
        "per_user_limit": 1,
        "entitlement_kind": "membership",
        "entitlement_days": 30,
        "entitlement_quantity": 1,
    }
    response = client.post(f"/admin/payments/product/{product.pk}/change/", form)
    assert response.status_code == 200 and "already reserved or sold" in response.content.decode()
    assert Product.objects.get(pk=product.pk).stock == 5
    banner = ComponentFactory(type="banner", config={"image": "https://x.test/a.png"})
    response = client.post("/admin/payments/product/add/", {**form, "component": banner.pk, "stock": 10})
    assert "not a paid_sale" in response.content.decode()
    response = client.post(f"/admin/payments/product/{product.pk}/change/", {**form, "stock": 8})
    assert response.status_code == 302 and Product.objects.get(pk=product.pk).stock == 8


def test_saving_a_product_in_the_admin_never_writes_back_a_stale_held_count(fake_payments, rf):
    from django.contrib.admin.sites import site

    from payments.admin import ProductAdminForm
    from tests.payments.factories import ProductFactory

    product = ProductFactory(stock=5)
    loaded = Product.objects.get(pk=product.pk)  # the admin reads the product at the start of the request...
    services.order_place(component_id=product.component_id, user_id="a", idempotency_key="k")  # ...an order lands
    data = {
        "component": product.component_id,
        "name": product.name,
        "description": "",
        "price_fen": 990,
        "stock": 8,
        "per_user_limit": 1,
        "entitlement_kind": "membership",
        "entitlement_days": 30,
        "entitlement_quantity": 1,
    }
    form = ProductAdminForm(data=data, instance=loaded)
    assert form.is_valid(), form.errors
    request = rf.post("/admin/payments/product/")
    request.user = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw-for-tests-2026")
    site._registry[Product].save_model(request, form.save(commit=False), form, change=True)
    product.refresh_from_db()
    assert (product.stock, product.held) == (8, 1)


def test_save_on_a_read_only_order_page_never_undoes_a_payment_made_meanwhile(fake_payments, rf):
    from django.contrib.admin.sites import site

    from payments.models import Order
    from tests.payments.factories import ProductFactory

    placed = services.order_place(component_id=ProductFactory().component_id, user_id="u", idempotency_key="k")
    loaded = Order.objects.get(pk=placed.pk)  # the admin reads the order at the start of the request...
    services.payment_result_apply(payload=result_event(placed, "PAID"))  # ...the payment lands
    request = rf.post(f"/admin/payments/order/{placed.pk}/change/")
    request.user = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw-for-tests-2026")
    admin_ = site._registry[Order]
    admin_.save_model(request, loaded, admin_.get_form(request, loaded)(instance=loaded), change=True)
    placed.refresh_from_db()
    assert placed.state == "paid" and placed.paid_at is not None


def test_product_services_hold_the_rules_the_admin_shows(fake_payments):
    from core.errors import DomainError
    from tests.payments.factories import ProductFactory

    product = ProductFactory(stock=5)
    services.order_place(component_id=product.component_id, user_id="a", idempotency_key="k")
    with pytest.raises(DomainError) as refused:
        services.product_update(product=product, stock=0, entitlement_days=None)
    assert set(refused.value.details["fields"]) == {"stock", "entitlement_days"}
    assert Product.objects.get(pk=product.pk).stock == 5
    updated = services.product_update(product=product, stock=1, name="renamed")
    assert (updated.stock, updated.held, updated.name) == (1, 1, "renamed")
    with pytest.raises(DomainError, match="has orders"):
        services.product_delete(product=product)
    unsold = ProductFactory()
    services.product_delete(product=unsold)
    assert not Product.objects.filter(pk=unsold.pk).exists()


def test_deleting_an_ordered_product_in_the_admin_is_refused_with_a_message(fake_payments):
    from tests.payments.factories import ProductFactory

    product = ProductFactory()
    services.order_place(component_id=product.component_id, user_id="a", idempotency_key="k")
    client = Client()
    client.force_login(get_user_model().objects.create_superuser("boss", "boss@example.com", "pw-for-tests-2026"))
    response = client.post(
        "/admin/payments/product/", {"action": "delete_selected", "_selected_action": [product.pk], "post": "yes"}
    )
    assert response.status_code in (200, 302)
    assert Product.objects.filter(pk=product.pk).exists()
