"""广点通 (Tencent Ads) Marketing API v3.0: daily reports, OAuth2 (contracts §10).

Every call carries `access_token`, `timestamp` (Unix s) and a unique `nonce` in the query."""

from __future__ import annotations

import json
import time
import uuid
from datetime import date
from urllib.parse import urlencode

from adreports.clients.base import (
    ReportClient,
    ReportPage,
    ReportRow,
    Tokens,
    count,
    day,
    fen,
    ident,
    rows_of,
    total_pages,
)

FIELDS = ["date", "campaign_id", "adgroup_id", "cost", "view_count", "valid_click_count", "activated_count"]


def auth_params(access_token: str) -> dict:
    return {"access_token": access_token, "timestamp": int(time.time()), "nonce": uuid.uuid4().hex}


class TencentClient(ReportClient):
    platform = "tencent"
    setting = "AD_API_TENCENT_URL"
    # developers.e.qq.com/v3.0/docs/errors: 11000 access token expired; 11008/11016/11017/11018/11019
    # request limits; 11010 refresh token malformed, 11012 refresh token expired.
    RATE_LIMIT_CODES = frozenset({11008, 11016, 11017, 11018, 11019})
    TOKEN_EXPIRED_CODES = frozenset({11000})
    REFRESH_INVALID_CODES = frozenset({11010, 11012})
    AUTHORIZE_URL = "https://developers.e.qq.com/oauth/authorize"
    CODE_PARAM = "authorization_code"

    def refresh(self, *, app_id: str, secret: str, refresh_token: str) -> Tokens:
        data = self.request(
            "GET",
            "/oauth/token",
            params={
                "client_id": app_id,
                "client_secret": secret,
                "grant_type": "refresh_token",
                "refresh_token": refresh_token,
            },
            secret_answer=True,
        )
        return self.tokens(data, access_expiry_field="access_token_expires_in")

    def exchange_code(self, *, app_id: str, secret: str, code: str, redirect_uri: str) -> Tokens:
        data = self.request(
            "GET",
            "/oauth/token",
            params={
                "client_id": app_id,
                "client_secret": secret,
                "grant_type": "authorization_code",
                "authorization_code": code,
                "redirect_uri": redirect_uri,
            },
            secret_answer=True,
        )
        return self.tokens(data, access_expiry_field="access_token_expires_in")

    def authorize_url(self, *, app_id: str, redirect_uri: str, state: str) -> str:
        return self.AUTHORIZE_URL + "?" + urlencode({"client_id": app_id, "redirect_uri": redirect_uri, "state": state})

    def report_page(
        self, *, access_token: str, account_id: str, start: date, end: date, page: int, page_size: int
    ) -> ReportPage:
        data = self.request(
            "GET",
            "/v3.0/daily_reports/get",
            params={
                **auth_params(access_token),
                "account_id": account_id,
                "level": "REPORT_LEVEL_ADGROUP",
                "date_range": json.dumps({"start_date": start.isoformat(), "end_date": end.isoformat()}),
                "group_by": json.dumps(["date", "adgroup_id"]),
                "fields": json.dumps(FIELDS),
                "page": page,
                "page_size": page_size,
            },
        )
        rows = [
            ReportRow(
                day=day(raw.get("date")),
                campaign_id=ident(raw.get("campaign_id")),
                ad_id=ident(raw.get("adgroup_id")),
                cost_fen=fen(raw.get("cost")),
                impressions=count(raw.get("view_count")),
                clicks=count(raw.get("valid_click_count")),
                conversions=count(raw.get("activated_count")),
            )
            for raw in rows_of(data, "list", self.platform)
        ]
        return ReportPage(rows=rows, total_pages=total_pages(data, self.platform))
