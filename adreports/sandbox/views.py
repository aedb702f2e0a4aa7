"""HTTP doors of the sandbox reporting APIs: /sandbox/adapi/<platform>/<the platform's path>."""

from __future__ import annotations

import json
from datetime import date

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from adreports.sandbox import services as sbx

MAX_PAGE_SIZE = 1000
CODES = {  # what the sandbox answers (the clients' codes, docs/adreports.md)
    "oceanengine": {"expired": 40102, "refresh": 40103, "bad": 40001},
    "tencent": {"expired": 11000, "refresh": 11012, "bad": 11001},
    "kuaishou": {"expired": 401001, "refresh": 401003, "bad": 400001},
}


def _answer(code: int = 0, data: dict | None = None, message: str = "OK") -> JsonResponse:
    return JsonResponse(
        {"code": code, "message": message, "data": data or {}}, json_dumps_params={"ensure_ascii": False}
    )


def _error(platform: str, which: str, message: str) -> JsonResponse:
    return _answer(CODES[platform][which], message=message)


def _body(request: HttpRequest) -> dict:
    try:
        data = json.loads(request.body or b"{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _tokens(platform: str) -> dict:
    minted = sbx.tokens_mint(platform=platform)
    data = {"access_token": minted["access_token"], "refresh_token": minted["refresh_token"]}
    data["expires_in" if platform == "oceanengine" else "access_token_expires_in"] = minted["access_expires_in"]
    data["refresh_token_expires_in"] = minted["refresh_expires_in"]
    return data


def _page(params: dict) -> tuple[int, int] | None:
    try:
        page, size = int(params.get("page", 1)), int(params.get("page_size", 10))
    except (TypeError, ValueError):
        return None
    return (page, size) if page >= 1 and 1 <= size <= MAX_PAGE_SIZE else None


def _rows(platform: str, account_id: str, start: str, end: str) -> list[tuple[date, dict]] | None:
    try:
        first, last = date.fromisoformat(str(start)), date.fromisoformat(str(end))
    except ValueError:
        return None
    return [
        (d, row)
        for d in sbx.days_between(first, last)
        for row in sbx.day_rows(platform=platform, account_id=account_id, day=d)
    ]


def _credentials_ok(app_id, secret) -> bool:
    return str(app_id) == sbx.APP_ID and secret == sbx.APP_SECRET


@csrf_exempt
def sandbox_api(request: HttpRequest, platform: str, path: str):
    if not settings.AD_SANDBOX_ENABLED or platform not in CODES:
        return JsonResponse({"code": 404, "message": "The sandbox reporting API is disabled."}, status=404)
    path = "/" + path
    body, query = _body(request), request.GET
    # --- tokens
    refresh_paths = {
        "oceanengine": "/open_api/oauth2/refresh_token/",
        "kuaishou": "/rest/openapi/oauth2/authorize/refresh_token",
    }
    code_paths = {
        "oceanengine": "/open_api/oauth2/access_token/",
        "kuaishou": "/rest/openapi/oauth2/authorize/access_token",
    }
    if platform == "tencent" and path == "/oauth/token":
        if not _credentials_ok(query.get("client_id"), query.get("client_secret")):
            return _error(platform, "bad", "bad client_id/client_secret")
        if query.get("grant_type") == "refresh_token":
            if not sbx.token_valid(platform=platform, token=query.get("refresh_token", ""), kind="r"):
                return _error(platform, "refresh", "refresh_token expired or invalid")
            return _answer(data=_tokens(platform))
        if query.get("grant_type") == "authorization_code" and query.get("authorization_code") == sbx.AUTH_CODE:
            return _answer(data=_tokens(platform))
        return _error(platform, "bad", "bad grant")
    if path == refresh_paths.get(platform) and request.method == "POST":
        if not _credentials_ok(body.get("app_id"), body.get("secret")):
            return _error(platform, "bad", "bad app_id/secret")
        if not sbx.token_valid(platform=platform, token=str(body.get("refresh_token", "")), kind="r"):
            return _error(platform, "refresh", "refresh_token expired or invalid")
        return _answer(data=_tokens(platform))
    if path == code_paths.get(platform) and request.method == "POST":
        if not _credentials_ok(body.get("app_id"), body.get("secret")) or body.get("auth_code") != sbx.AUTH_CODE:
            return _error(platform, "bad", "bad app_id/secret/auth_code")
        return _answer(data=_tokens(platform))
    # --- reports
    if platform == "oceanengine" and path == "/open_api/2/report/custom/get/" and request.method == "GET":
        if not sbx.token_valid(platform=platform, token=request.headers.get("Access-Token", ""), kind="a"):
            return _error(platform, "expired", "access_token expired")
        rows, page = (
            _rows(platform, query.get("advertiser_id", ""), query.get("start_time", ""), query.get("end_time", "")),
            _page(query),
        )
        if rows is None or page is None:
            return _error(platform, "bad", "bad start_time/end_time/page/page_size")
        chunk = rows[(page[0] - 1) * page[1] : page[0] * page[1]]
        return _answer(
            data={
                "rows": [
                    {
                        "dimensions": {
                            "stat_time_day": d.isoformat(),
                            "cdp_project_id": r["campaign_id"],
                            "cdp_promotion_id": r["ad_id"],
                        },
                        "metrics": {
                            "stat_cost": sbx.fen_to_yuan_text(r["cost_fen"]),
                            "show_cnt": str(r["impressions"]),
                            "click_cnt": str(r["clicks"]),
                            "convert_cnt": str(r["conversions"]),
                        },
                    }
                    for d, r in chunk
                ],
                "page_info": {
                    "page": page[0],
                    "page_size": page[1],
                    "total_page": max(1, -(-len(rows) // page[1])),
                    "total_number": len(rows),
                },
            }
        )
    if platform == "tencent" and path == "/v3.0/daily_reports/get" and request.method == "GET":
        if not sbx.token_valid(platform=platform, token=query.get("access_token", ""), kind="a"):
            return _error(platform, "expired", "access_token expired")
        if not query.get("timestamp", "").isdigit() or not 0 < len(query.get("nonce", "")) <= 32:
            return _error(platform, "bad", "timestamp and nonce are required")
        try:
            date_range = json.loads(query.get("date_range", ""))
            rows = _rows(platform, query.get("account_id", ""), date_range["start_date"], date_range["end_date"])
        except (ValueError, KeyError, TypeError):
            rows = None
        page = _page(query)
        if rows is None or page is None:
            return _error(platform, "bad", "bad date_range/page/page_size")
        chunk = rows[(page[0] - 1) * page[1] : page[0] * page[1]]
        return _answer(
            data={
                "list": [
                    {
                        "date": d.isoformat(),
                        "campaign_id": int(r["campaign_id"]),
                        "adgroup_id": int(r["ad_id"]),
                        "cost": r["cost_fen"],
                        "view_count": r["impressions"],
                        "valid_click_count": r["clicks"],
                        "activated_count": r["conversions"],
                    }
                    for d, r in chunk
                ],
                "page_info": {
                    "page": page[0],
                    "page_size": page[1],
                    "total_page": max(1, -(-len(rows) // page[1])),
                    "total_number": len(rows),
                },
            }
        )
    if platform == "kuaishou" and path == "/rest/openapi/v1/report/unit_report" and request.method == "POST":
        if not sbx.token_valid(platform=platform, token=request.headers.get("Access-Token", ""), kind="a"):
            return _error(platform, "expired", "access_token expired")
        rows, page = (
            _rows(platform, str(body.get("advertiser_id", "")), body.get("start_date", ""), body.get("end_date", "")),
            _page(body),
        )
        if rows is None or page is None or body.get("temporal_granularity") != "DAILY":
            return _error(platform, "bad", "bad start_date/end_date/temporal_granularity/page/page_size")
        chunk = rows[(page[0] - 1) * page[1] : page[0] * page[1]]
        return _answer(
            data={
                "details": [
                    {
                        "stat_date": d.isoformat(),
                        "campaign_id": int(r["campaign_id"]),
                        "unit_id": int(r["ad_id"]),
                        # a JSON number in yuan: float's shortest repr writes the 2-decimal value exactly
                        "charge": float(sbx.fen_to_yuan_text(r["cost_fen"])),
                        "show": r["impressions"],
                        "aclick": r["clicks"],
                        "activation": r["conversions"],
                    }
                    for d, r in chunk
                ],
                "total_count": len(rows),
            }
        )
    return JsonResponse({"code": 404, "message": f"no such sandbox path {path}"}, status=404)
