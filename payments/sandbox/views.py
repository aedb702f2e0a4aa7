"""HTTP doors of the sandbox payment service (contracts §4) and its cashier page."""

from __future__ import annotations

import functools
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from core.errors import json_error
from core.jsonbounds import JsonRefused, json_loads_bounded
from payments.sandbox import services
from payments.sandbox.models import SandboxPaycode
from payments.signing import body_signature_valid

MAX_AMOUNT_FEN = 2**31 - 1  # fits SandboxPaycode.amount_fen on every backend
MAX_EXPIRE_SECONDS = 366 * 24 * 3600


def sandbox_only(view):
    """PAYMENT_SANDBOX_ENABLED off (always in production): the sandbox does not exist.
    It signs results with PAYMENT_SECRET, so it must never run beside real payments."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if not settings.PAYMENT_SANDBOX_ENABLED:
            return json_error("not_found", "The sandbox payment service is disabled.", 404)
        return view(request, *args, **kwargs)

    return wrapper


def _signed(request: HttpRequest) -> bool:
    return body_signature_valid(request.body, request.headers.get("X-Signature"))


@sandbox_only
@csrf_exempt
@require_http_methods(["POST"])
def paycode_create(request: HttpRequest) -> JsonResponse:
    if not _signed(request):
        return json_error("bad_signature", "X-Signature is not HMAC-SHA256 of the body.", 401)
    try:
        data = json_loads_bounded(request.body)
    except JsonRefused as exc:  # not JSON, too deep, or numbers out of any range
        return json_error("invalid", str(exc), 400)
    try:
        merchant_order_no = str(data["merchant_order_no"])
        amount_fen = data["amount_fen"]
        expire_seconds = data["expire_seconds"]
        if not isinstance(amount_fen, int) or not 0 < amount_fen <= MAX_AMOUNT_FEN:
            raise ValueError
        if not isinstance(expire_seconds, int) or not 0 < expire_seconds <= MAX_EXPIRE_SECONDS:
            raise ValueError
        if not 0 < len(merchant_order_no) <= 64:
            raise ValueError
    except (ValueError, KeyError, TypeError):
        return json_error(
            "invalid",
            f"Send merchant_order_no, 0 < amount_fen <= {MAX_AMOUNT_FEN}, subject, user_id, "
            f"0 < expire_seconds <= {MAX_EXPIRE_SECONDS}.",
            400,
        )
    paycode, _created = services.sandbox_paycode_create(
        merchant_order_no=merchant_order_no,
        amount_fen=amount_fen,
        subject=str(data.get("subject") or "")[:255],
        user_id=str(data.get("user_id") or "")[:64],
        expire_seconds=expire_seconds,
    )
    return JsonResponse(
        {
            "paycode": paycode.paycode,
            "cashier_url": request.build_absolute_uri(f"/sandbox/pay/cashier/{paycode.paycode}"),
            "expires_at": paycode.expires_at.isoformat(),
        }
    )


@sandbox_only
@csrf_exempt
@require_http_methods(["POST"])
def paycode_close(request: HttpRequest, paycode: str) -> JsonResponse:
    if not _signed(request):
        return json_error("bad_signature", "X-Signature is not HMAC-SHA256 of the body.", 401)
    found = SandboxPaycode.objects.filter(paycode=paycode).first()
    if found is None:
        return json_error("paycode_not_found", "No such paycode.", 404)
    status = services.sandbox_paycode_close(paycode=found)
    return JsonResponse({"status": status}, status=409 if status == "PAID" else 200)


@sandbox_only
@require_http_methods(["GET"])
def paycode_query(request: HttpRequest, paycode: str) -> JsonResponse:
    found = SandboxPaycode.objects.filter(paycode=paycode).first()
    if found is None:
        return json_error("paycode_not_found", "No such paycode.", 404)
    return JsonResponse(services.sandbox_paycode_query(paycode=found))


def _return_url(request: HttpRequest) -> str:
    url = request.POST.get("return_url") or request.GET.get("return_url") or ""
    allowed = {request.get_host(), urlsplit(settings.SITE_URL).netloc}
    return url if url and url_has_allowed_host_and_scheme(url, allowed_hosts=allowed) else ""


@sandbox_only
@require_http_methods(["GET", "POST"])
def cashier(request: HttpRequest, paycode: str) -> HttpResponse:
    """The cashier page: pay with Alipay (sandbox), WeChat (sandbox), or fail."""
    found = get_object_or_404(SandboxPaycode, paycode=paycode)
    return_url = _return_url(request)
    message = ""
    if request.method == "POST":
        try:
            services.sandbox_cashier_act(paycode=found, action=request.POST.get("action", ""))
        except services.CashierRefused as exc:
            message = str(exc)
        else:
            found.refresh_from_db()
            if return_url:
                response = HttpResponse(status=303)
                response["Location"] = return_url
                return response
        found.refresh_from_db()
    state = services.sandbox_paycode_query(paycode=found)
    return render(
        request,
        "payments/sandbox_cashier.html",
        {
            "paycode": found,
            "state": state,
            "amount_yuan": f"{found.amount_fen / 100:.2f}",
            "return_url": return_url,
            "message": message,
        },
        status=409 if message else 200,
    )
