"""巨量引擎 (Ocean Engine) Marketing API: custom report, OAuth2 (contracts §10)."""

from __future__ import annotations

import json
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
    total_pages,
    yuan_to_fen,
)

DIMENSIONS = ["stat_time_day", "cdp_project_id", "cdp_promotion_id"]
METRICS = ["stat_cost", "show_cnt", "click_cnt", "convert_cnt"]


class OceanEngineClient(ReportClient):
    platform = "oceanengine"
    setting = "AD_API_OCEANENGINE_URL"
    # 40100 请求过于频繁, 40102 access_token 过期, 40103 refresh_token 过期 / 40107 无效
    RATE_LIMIT_CODES = frozenset({40100})
    TOKEN_EXPIRED_CODES = frozenset({40102, 40105})
    REFRESH_INVALID_CODES = frozenset({40103, 40107})
    AUTHORIZE_URL = "https://open.oceanengine.com/audit/oauth.html"
    CODE_PARAM = "auth_code"

    def refresh(self, *, app_id: str, secret: str, refresh_token: str) -> Tokens:
        data = self.request(
            "POST",
            "/open_api/oauth2/refresh_token/",
            json_body={"app_id": _app_id(app_id), "secret": secret, "refresh_token": refresh_token},
            secret_answer=True,
        )
        return self.tokens(data, access_expiry_field="expires_in")

    def exchange_code(self, *, app_id: str, secret: str, code: str, redirect_uri: str) -> Tokens:
        data = self.request(
            "POST",
            "/open_api/oauth2/access_token/",
            json_body={"app_id": _app_id(app_id), "secret": secret, "grant_type": "auth_code", "auth_code": code},
            secret_answer=True,
        )
        return self.tokens(data, access_expiry_field="expires_in")

    def authorize_url(self, *, app_id: str, redirect_uri: str, state: str) -> str:
        return self.AUTHORIZE_URL + "?" + urlencode({"app_id": app_id, "state": state, "redirect_uri": redirect_uri})

    def report_page(
        self, *, access_token: str, account_id: str, start: date, end: date, page: int, page_size: int
    ) -> ReportPage:
        data = self.request(
            "GET",
            "/open_api/2/report/custom/get/",
            params={
                "advertiser_id": account_id,
                "start_time": start.isoformat(),
                "end_time": end.isoformat(),
                "dimensions": json.dumps(DIMENSIONS),
                "metrics": json.dumps(METRICS),
                "page": page,
                "page_size": page_size,
            },
            headers={"Access-Token": access_token},
        )
        rows = []
        for raw in rows_of(data, "rows", self.platform):
            dims, metrics = raw.get("dimensions"), raw.get("metrics")
            if not isinstance(dims, dict) or not isinstance(metrics, dict):
                raise ApiError("oceanengine: a row lacks dimensions or metrics", kind="bad_response")
            rows.append(
                ReportRow(
                    day=day(dims.get("stat_time_day")),
                    campaign_id=ident(dims.get("cdp_project_id")),
                    ad_id=ident(dims.get("cdp_promotion_id")),
                    cost_fen=yuan_to_fen(metrics.get("stat_cost")),
                    impressions=count(metrics.get("show_cnt")),
                    clicks=count(metrics.get("click_cnt")),
                    conversions=count(metrics.get("convert_cnt")),
                )
            )
        return ReportPage(rows=rows, total_pages=total_pages(data, self.platform))


def _app_id(app_id: str):
    return int(app_id) if app_id.isdigit() else app_id
