"""The platforms' OAuth authorisation: the admin sends the operator to the platform,
which sends them back to the callback with a one-time code we exchange for tokens."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.core import signing
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse

from adreports import services
from adreports.clients import CLIENTS, client_for
from adreports.models import AdAccount
from core.errors import DomainError, json_error

STATE_SALT = "adreports.oauth.state"
STATE_MAX_AGE = 3600


def _callback_url(platform: str) -> str:
    return settings.SITE_URL + reverse("adreports-oauth-callback", args=[platform])


def _require_change(request: HttpRequest) -> None:
    if not request.user.has_perm("adreports.change_adaccount"):
        raise PermissionDenied("You may not change ad accounts.")


@staff_member_required
def oauth_start(request: HttpRequest, pk: int) -> HttpResponse:
    _require_change(request)
    account = get_object_or_404(AdAccount, pk=pk)
    state = signing.dumps({"account": account.pk, "user": request.user.pk}, salt=STATE_SALT)
    url = client_for(account.platform).authorize_url(
        app_id=account.app_id, redirect_uri=_callback_url(account.platform), state=state
    )
    return HttpResponseRedirect(url)


@staff_member_required
def oauth_callback(request: HttpRequest, platform: str) -> HttpResponse:
    _require_change(request)
    if platform not in CLIENTS:
        return json_error("not_found", "Unknown platform.", 404)
    try:
        state = signing.loads(request.GET.get("state", ""), salt=STATE_SALT, max_age=STATE_MAX_AGE)
    except signing.BadSignature:
        return json_error("bad_state", "The authorisation state is missing, forged or older than an hour.", 400)
    if state.get("user") != request.user.pk:
        return json_error("bad_state", "This authorisation was started by another login.", 400)
    account = get_object_or_404(AdAccount, pk=state.get("account"), platform=platform)
    code = request.GET.get(CLIENTS[platform].CODE_PARAM, "")
    if not code or len(code) > 512:
        return json_error("bad_code", f"The callback carries no {CLIENTS[platform].CODE_PARAM}.", 400)
    change_url = reverse("admin:adreports_adaccount_change", args=[account.pk])
    try:
        services.ad_account_authorize(account=account, code=code, redirect_uri=_callback_url(platform))
    except DomainError as exc:
        messages.error(request, exc.message)
        return HttpResponseRedirect(change_url)
    messages.success(request, f"{account}: authorised; tokens stored.")
    return HttpResponseRedirect(change_url)
