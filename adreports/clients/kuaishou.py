"""磁力引擎 (Kuaishou) Marketing API: unit report, OAuth2 (contracts §10).

Its report pages by `total_count`, not a page count."""

from __future__ import annotations

from datetime import date
from urllib.parse import urlencode

from adreports.clients.base import (
    ApiError,
    ReportClient,
    ReportPage,
    ReportRow,
    Tokens,
    count,
    day,
    ident,
    rows_of,
    yuan_to_fen,
)


class KuaishouClient(ReportClient):
    platform = "kuaishou"
    setting = "AD_API_KUAISHOU_URL"
    # 402004 请求过于频繁 (QPS), 401001/401002 access_token 过期或无效, 401003 refresh_token 无效
    RATE_LIMIT_CODES = frozenset({402004, 402005})
    TOKEN_EXPIRED_CODES = frozenset({401001, 401002})
    REFRESH_INVALID_CODES = frozenset({401003})
    AUTHORIZE_URL = "https://developers.e.kuaishou.com/tools/authorize"
    CODE_PARAM = "auth_code"

    def refresh(self, *, app_id: str, secret: str, refresh_token: str) -> Tokens:
        data = self.request(
            "POST",
            "/rest/openapi/oauth2/authorize/refresh_token",
            json_body={"app_id": _app_id(app_id), "secret": secret, "refresh_token": refresh_token},
            secret_answer=True,
        )
        return self.tokens(data, access_expiry_field="access_token_expires_in")

    def exchange_code(self, *, app_id: str, secret: str, code: str, redirect_uri: str) -> Tokens:
        data = self.request(
            "POST",
            "/rest/openapi/oauth2/authorize/access_token",
            json_body={"app_id": _app_id(app_id), "secret": secret, "auth_code": code},
            secret_answer=True,
        )
        return self.tokens(data, access_expiry_field="access_token_expires_in")

    def authorize_url(self, *, app_id: str, redirect_uri: str, state: str) -> str:
        return (
            self.AUTHORIZE_URL
            + "?"
            + urlencode({"app_id": app_id, "scope": '["report_service"]', "redirect_uri": redirect_uri, "state": state})
        )

    def report_page(
        self, *, access_token: str, account_id: str, start: date, end: date, page: int, page_size: int
    ) -> ReportPage:
        data = self.request(
            "POST",
            "/rest/openapi/v1/report/unit_report",
            json_body={
                "advertiser_id": _app_id(account_id),
                "start_date": start.isoformat(),
                "end_date": end.isoformat(),
                "temporal_granularity": "DAILY",
                "page": page,
                "page_size": page_size,
            },
            headers={"Access-Token": access_token},
        )
        rows = [
            ReportRow(
                day=day(raw.get("stat_date")),
                campaign_id=ident(raw.get("campaign_id")),
                ad_id=ident(raw.get("unit_id")),
                cost_fen=yuan_to_fen(raw.get("charge")),
                impressions=count(raw.get("show")),
                clicks=count(raw.get("aclick")),
                conversions=count(raw.get("activation")),
            )
            for raw in rows_of(data, "details", self.platform)
        ]
        try:
            total = count(data.get("total_count", 0))
        except ApiError:
            raise ApiError("kuaishou: total_count is not a count", kind="bad_response") from None
        return ReportPage(rows=rows, total_pages=-(-total // page_size))


def _app_id(value: str):
    return int(value) if value.isdigit() else value
