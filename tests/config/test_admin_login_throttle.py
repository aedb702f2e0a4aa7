"""Admin login is throttled against password guessing (django-axes): repeated wrong
passwords lock the account with a clear message; an operator's reset lets it in."""

from __future__ import annotations

from io import StringIO

import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from django.core.management import call_command

from core.services import groups_sync
from tests.factories import StaffUserFactory

pytestmark = pytest.mark.django_db
PASSWORD = "operator-pw-2026-long"


def _login(client, username: str, password: str):
    return client.post("/admin/login/?next=/admin/", {"username": username, "password": password})


@pytest.fixture
def operator():
    groups_sync()
    user = StaffUserFactory(username="op-throttle", password=PASSWORD)
    user.groups.add(Group.objects.get(name="operator"))
    return user


def test_wrong_passwords_lock_the_account_with_a_clear_message_and_a_reset_lets_it_in(client, operator):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert _login(client, operator.username, "guess").status_code == 200  # the form again, with its error
    locked = _login(client, operator.username, "guess")
    assert locked.status_code == 429
    assert f"locked after {settings.AXES_FAILURE_LIMIT} failed logins" in locked.content.decode()
    # locked: even the right password is refused now
    assert _login(client, operator.username, PASSWORD).status_code == 429
    call_command("axes_reset_username", operator.username, stdout=StringIO())
    response = _login(client, operator.username, PASSWORD)
    assert response.status_code == 302 and response["Location"] == "/admin/"


def test_an_operator_unlocks_an_account_in_the_admin(client, operator):
    from axes.models import AccessAttempt

    victim = StaffUserFactory(username="locked-analyst", password=PASSWORD)
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _login(client, victim.username, "guess")
    assert _login(client, victim.username, PASSWORD).status_code == 429
    client.force_login(operator)  # the test suite's own logins still work
    attempts = list(AccessAttempt.objects.filter(username=victim.username).values_list("pk", flat=True))
    response = client.post(
        "/admin/axes/accessattempt/",
        {"action": "delete_selected", "_selected_action": attempts, "post": "yes"},
    )
    assert response.status_code == 302 and not AccessAttempt.objects.filter(username=victim.username).exists()
    client.logout()
    assert _login(client, victim.username, PASSWORD).status_code == 302


def test_logins_without_a_request_are_not_throttled(client, operator):
    assert client.login(username=operator.username, password=PASSWORD)
