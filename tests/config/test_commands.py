from io import StringIO

import jwt
import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command


def test_mint_user_token_prints_a_token_for_that_user():
    out = StringIO()
    call_command("mint_user_token", "10086", stdout=out)
    claims = jwt.decode(out.getvalue().strip(), settings.USER_TOKEN_SECRET, algorithms=["HS256"])
    assert claims["sub"] == "10086"


@pytest.mark.django_db
def test_seed_demo_is_idempotent_and_prints_the_logins():
    first, second = StringIO(), StringIO()
    call_command("seed_demo", stdout=first)
    users_after_first = get_user_model().objects.count()
    call_command("seed_demo", stdout=second)
    assert get_user_model().objects.count() == users_after_first
    assert "operator / operator-demo-2026" in second.getvalue()
    operator = get_user_model().objects.get(username="operator")
    analyst = get_user_model().objects.get(username="analyst")
    assert operator.check_password("operator-demo-2026") and operator.is_staff and not operator.is_superuser
    assert analyst.groups.filter(name="analyst").exists()
    assert "technical technical / technical-demo-2026" in second.getvalue()


@pytest.mark.django_db
def test_seed_demo_technical_login_sees_the_technical_lists_and_no_campaign_model(client):
    call_command("seed_demo", stdout=StringIO())
    technical = get_user_model().objects.get(username="technical")
    assert technical.is_staff and not technical.is_superuser
    assert list(technical.groups.values_list("name", flat=True)) == ["technical"]
    assert client.login(username="technical", password="technical-demo-2026")
    for path in ("/admin/config/processedevent/", "/admin/payments/sandboxpaycode/", "/admin/config/deadletter/"):
        assert client.get(path).status_code == 200, path
    for path in ("/admin/activities/activity/", "/admin/coupons/couponpack/"):
        assert client.get(path).status_code == 403, path
    index = client.get("/admin/").content.decode()
    assert "/admin/config/processedevent/" in index and "/admin/activities/activity/" not in index


@pytest.mark.django_db
def test_operator_may_edit_domain_data_and_analyst_may_only_view():
    call_command("sync_groups", stdout=StringIO())
    operator = Group.objects.get(name="operator").permissions.all()
    analyst = Group.objects.get(name="analyst").permissions.all()
    assert operator.filter(codename="change_activity").exists()
    assert operator.filter(codename="add_component").exists()
    assert analyst.filter(codename="view_activity").exists()
    assert not analyst.exclude(codename__startswith="view_").exists()
    assert not operator.filter(content_type__app_label="auth").exists()
