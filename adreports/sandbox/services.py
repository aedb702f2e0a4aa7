"""What the sandbox platforms answer. Figures are a pure function of (platform,
account, day, ad), and a day's conversions keep growing for three days after it (as
real reports settle), so the daily re-pull shows changes."""

from __future__ import annotations

import hashlib
import secrets
from datetime import date, timedelta
from decimal import Decimal

from django.core import signing
from django.utils import timezone

SALT = "adreports.sandbox.token"
ACCESS_SECONDS = 24 * 3600
REFRESH_SECONDS = 30 * 24 * 3600
APP_ID = "1001"
APP_SECRET = "sandbox-app-secret"
AUTH_CODE = "sandbox-auth-code"

# The demo accounts' campaigns and ads: (account id, [(campaign id, [ad ids])]).
DEMO_ACCOUNTS = {
    "oceanengine": ("1700000000001", [("7300000001", ["7300000101", "7300000102"]), ("7300000002", ["7300000201"])]),
    "tencent": ("25610", [("41001", ["510001", "510002"]), ("41002", ["510003"])]),
    "kuaishou": ("90001", [("610001", ["6200001", "6200002"]), ("610002", ["6200003"])]),
}


def tokens_mint(*, platform: str, account_id: str = "") -> dict:
    """A fresh access and refresh token pair (each signed, with its kind and expiry)."""
    now = int(timezone.now().timestamp())
    access = signing.dumps({"p": platform, "k": "a", "exp": now + ACCESS_SECONDS, "n": secrets.token_hex(4)}, salt=SALT)
    refresh = signing.dumps(
        {"p": platform, "k": "r", "exp": now + REFRESH_SECONDS, "n": secrets.token_hex(4)}, salt=SALT
    )
    return {
        "access_token": access,
        "refresh_token": refresh,
        "access_expires_in": ACCESS_SECONDS,
        "refresh_expires_in": REFRESH_SECONDS,
    }


def token_valid(*, platform: str, token: str, kind: str) -> bool:
    try:
        data = signing.loads(token or "", salt=SALT)
    except signing.BadSignature:
        return False
    return bool(data.get("p") == platform and data.get("k") == kind and data.get("exp", 0) > timezone.now().timestamp())


def _unit(seed: str) -> float:
    return int(hashlib.sha256(seed.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF


def day_rows(*, platform: str, account_id: str, day: date) -> list[dict]:
    """The day's figures per (campaign, ad): cost in fen, impressions, clicks, conversions."""
    today = timezone.localdate()
    if day > today:
        return []
    _, campaigns = DEMO_ACCOUNTS.get(platform, ("", []))
    if account_id != DEMO_ACCOUNTS.get(platform, ("",))[0]:
        campaigns = [(f"9{account_id[-4:]}1", [f"9{account_id[-4:]}11"])]
    settled = min(Decimal(1), Decimal("0.7") + Decimal("0.1") * (today - day).days)
    rows = []
    for campaign, ads in campaigns:
        for ad in ads:
            r = _unit(f"{platform}:{account_id}:{ad}:{day}")
            impressions = 20000 + int(r * 60000)
            clicks = int(impressions * (0.01 + r * 0.02))
            conversions = int(Decimal(int(clicks * (0.04 + r * 0.03))) * settled)
            cost_fen = clicks * (40 + int(r * 80)) + int(r * 99)  # ¥0.40-1.20 a click, odd fen
            rows.append(
                {
                    "campaign_id": campaign,
                    "ad_id": ad,
                    "cost_fen": cost_fen,
                    "impressions": impressions,
                    "clicks": clicks,
                    "conversions": conversions,
                }
            )
    return rows


def days_between(start: date, end: date) -> list[date]:
    if end < start or (end - start).days > 366:
        return []
    return [start + timedelta(days=n) for n in range((end - start).days + 1)]


def fen_to_yuan_text(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"
