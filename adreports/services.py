"""Ad accounts, token refresh and the daily pull (contracts §10, docs/adreports.md).

Token refresh: an access token within AD_TOKEN_REFRESH_MARGIN_SECONDS of expiry is
refreshed before use, and an expired-token answer refreshes once and retries. One
account refreshes at a time (a Redis lock per account, never a database lock held
across HTTP): refresh tokens rotate, and two refreshes racing would burn one.

Pull of one account's day: every page is fetched first (retrying transient failures,
backing off on rate-limit answers); only then, in one transaction under the account's
row lock, the day's rows are replaced by the new ones. A failure at any page records
a failed `AdPull` and leaves the stored day untouched.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any, TypeVar

from django.conf import settings
from django.db import close_old_connections, connections, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from adreports import crypto
from adreports.alerting import ad_alert_raise, ad_alert_resolve
from adreports.clients import ApiError, Tokens, client_for
from adreports.clients.base import ReportClient, ReportPage, ReportRow
from adreports.models import (
    AdAccount,
    AdDiscrepancy,
    AdManualCost,
    AdPull,
    AdReportRow,
    Metric,
    PullStatus,
    WarningKind,
)
from core.errors import DomainError
from core.redis import get_redis

if TYPE_CHECKING:
    from attribution.models import TrackingLink

logger = logging.getLogger("huodong.adreports")
T = TypeVar("T")

MAX_PAGES = 500


class AdAccountInvalid(DomainError):
    code = "ad_account_invalid"


# --- accounts -----------------------------------------------------------------
SECRET_FIELDS = ("app_secret", "access_token", "refresh_token")


@transaction.atomic
def ad_account_create(
    *,
    platform: str,
    account_id: str,
    app_id: str,
    app_secret: str = "",
    access_token: str = "",
    refresh_token: str = "",
    access_token_expires_at: datetime | None = None,
    refresh_token_expires_at: datetime | None = None,
    name: str = "",
    active: bool = True,
) -> AdAccount:
    account = AdAccount(platform=platform, account_id=account_id.strip(), app_id=app_id.strip(), name=name)
    account.active = active
    account.access_token_expires_at = access_token_expires_at
    account.refresh_token_expires_at = refresh_token_expires_at
    _secrets_set(account, app_secret=app_secret, access_token=access_token, refresh_token=refresh_token)
    account.full_clean()
    account.save()
    return account


@transaction.atomic
def ad_account_update(*, account: AdAccount, **fields: Any) -> AdAccount:
    """Update plain fields; a secret is replaced only when a non-empty value is given
    (the admin never shows the old one, so empty means "keep")."""
    secrets = {name: fields.pop(name) for name in SECRET_FIELDS if name in fields}
    allowed = {"name", "app_id", "active", "access_token_expires_at", "refresh_token_expires_at", "account_id"}
    unknown = set(fields) - allowed
    if unknown:
        raise AdAccountInvalid(f"not editable: {', '.join(sorted(unknown))}")
    for name, value in fields.items():
        setattr(account, name, value)
    _secrets_set(account, **{k: v for k, v in secrets.items() if v})
    account.full_clean()
    account.save()
    return account


def _secrets_set(account: AdAccount, **secrets: str) -> None:
    for name, value in secrets.items():
        if value:
            setattr(account, f"{name}_enc", crypto.encrypt(value.strip()))


def _tokens_store(*, account: AdAccount, tokens: Tokens) -> None:
    now = timezone.now()
    account.access_token_enc = crypto.encrypt(tokens.access_token)
    account.refresh_token_enc = crypto.encrypt(tokens.refresh_token)
    account.access_token_expires_at = now + timedelta(seconds=tokens.access_expires_in)
    if tokens.refresh_expires_in is not None:
        account.refresh_token_expires_at = now + timedelta(seconds=tokens.refresh_expires_in)
    account.save(
        update_fields=[
            "access_token_enc",
            "refresh_token_enc",
            "access_token_expires_at",
            "refresh_token_expires_at",
            "updated_at",
        ]
    )


def ad_account_authorize(*, account: AdAccount, code: str, redirect_uri: str) -> AdAccount:
    """The platform's authorisation callback: exchange the one-time code for tokens."""
    client = client_for(account.platform)
    try:
        tokens = client.exchange_code(
            app_id=account.app_id, secret=crypto.decrypt(account.app_secret_enc), code=code, redirect_uri=redirect_uri
        )
    except ApiError as exc:
        raise AdAccountInvalid(f"the platform refused the authorisation code: {exc}") from None
    _tokens_store(account=account, tokens=tokens)
    ad_alert_resolve(key=_alert_key(WarningKind.REFRESH_FAILED, account))
    refresh_token_check(account=account)
    return account


# --- tokens ---------------------------------------------------------------------
def _alert_key(kind: str, account: AdAccount, suffix: str = "") -> str:
    return f"adreports:{kind}:{account.pk}" + (f":{suffix}" if suffix else "")


def refresh_token_check(*, account: AdAccount) -> bool:
    """Warn (naming the account) when its refresh token expires within
    AD_REFRESH_TOKEN_WARN_DAYS; resolve the warning otherwise. True when warned."""
    key = _alert_key(WarningKind.REFRESH_TOKEN_EXPIRING, account)
    expires = account.refresh_token_expires_at
    if expires is not None and expires - timezone.now() <= timedelta(days=settings.AD_REFRESH_TOKEN_WARN_DAYS):
        ad_alert_raise(
            key=key,
            kind=WarningKind.REFRESH_TOKEN_EXPIRING,
            account=account,
            title=f"{account}: refresh token expires {timezone.localtime(expires):%Y-%m-%d %H:%M}",
            text="Authorise the account again on the platform (admin: Ad accounts → Authorise) before it expires; "
            "after that no report can be pulled.",
        )
        return True
    ad_alert_resolve(key=key)
    return False


def _access_token_due(account: AdAccount) -> bool:
    expires = account.access_token_expires_at
    if not account.access_token_enc:
        return True
    return expires is not None and expires - timezone.now() <= timedelta(
        seconds=settings.AD_TOKEN_REFRESH_MARGIN_SECONDS
    )


def access_token_get(*, account: AdAccount, stale: str | None = None) -> str:
    """A usable access token for the account, refreshed first when it is within the
    margin of expiry or when `stale` (a token the platform called expired) is still
    the stored one. Raises ApiError when the refresh fails (warning raised)."""
    account.refresh_from_db()
    if not _access_token_due(account) and (stale is None or crypto.decrypt(account.access_token_enc) != stale):
        return crypto.decrypt(account.access_token_enc)
    with get_redis().lock(f"adr:refresh:{account.pk}", timeout=120, blocking_timeout=150):
        account.refresh_from_db()  # another process may have refreshed while we waited
        current = crypto.decrypt(account.access_token_enc)
        if not _access_token_due(account) and (stale is None or current != stale):
            return current
        try:
            if not account.refresh_token_enc:
                raise ApiError(f"{account.platform}: no refresh token stored", kind="refresh_token_invalid")
            tokens = _with_retries(
                lambda: client_for(account.platform).refresh(
                    app_id=account.app_id,
                    secret=crypto.decrypt(account.app_secret_enc),
                    refresh_token=crypto.decrypt(account.refresh_token_enc),
                ),
                counter=[0],
            )
        except ApiError as exc:
            ad_alert_raise(
                key=_alert_key(WarningKind.REFRESH_FAILED, account),
                kind=WarningKind.REFRESH_FAILED,
                account=account,
                title=f"{account}: access token refresh failed",
                text=f"{exc} ({exc.kind}). Reports cannot be pulled until the account is authorised again.",
            )
            raise
        _tokens_store(account=account, tokens=tokens)
        logger.info("ad account token refreshed", extra={"account": str(account)})
    ad_alert_resolve(key=_alert_key(WarningKind.REFRESH_FAILED, account))
    refresh_token_check(account=account)
    return crypto.decrypt(account.access_token_enc)


def _sleep(seconds: float) -> None:
    time.sleep(seconds)


def _with_retries(call: Callable[[], T], *, counter: list[int]) -> T:
    """Retry transient failures (AD_API_RETRIES) and back off on rate-limit answers
    (AD_API_RATE_LIMIT_RETRIES), exponentially from AD_API_BACKOFF_SECONDS."""
    transient = limited = 0
    while True:
        counter[0] += 1
        try:
            return call()
        except ApiError as exc:
            if exc.kind == "rate_limited" and limited < settings.AD_API_RATE_LIMIT_RETRIES:
                delay = settings.AD_API_BACKOFF_SECONDS * 2**limited
                limited += 1
            elif exc.kind in ApiError.RETRYABLE and transient < settings.AD_API_RETRIES:
                delay = settings.AD_API_BACKOFF_SECONDS * 2**transient
                transient += 1
            else:
                raise
            logger.info("ad report call retried", extra={"kind": exc.kind, "delay_s": delay, "error": str(exc)})
            _sleep(delay)


def _authorised_call(account: AdAccount, call: Callable[[str], T], counter: list[int]) -> T:
    """`call(access_token)` with retries; an expired-token answer refreshes once and retries."""
    token = access_token_get(account=account)
    try:
        return _with_retries(lambda: call(token), counter=counter)
    except ApiError as exc:
        if exc.kind != "token_expired":
            raise
    token = access_token_get(account=account, stale=token)
    return _with_retries(lambda: call(token), counter=counter)


# --- pull -----------------------------------------------------------------------
@dataclass
class _Fetched:
    rows: dict[tuple[str, str], ReportRow]
    pages: int
    requests: int


def _fetch_day(account: AdAccount, day: date, counter: list[int]) -> _Fetched:
    client = client_for(account.platform)
    rows: dict[tuple[str, str], ReportRow] = {}
    page = 1
    while True:
        result = _authorised_call(
            account,
            functools.partial(_report_page, client, account_id=account.account_id, day=day, page=page),
            counter,
        )
        for row in result.rows:
            if row.day != day:
                raise ApiError(f"{account.platform}: asked for {day}, got a row of {row.day}", kind="bad_response")
            key = (row.campaign_id, row.ad_id)
            if key in rows:
                # figures shifting between pages: the whole day is fetched again later
                raise ApiError(f"{account.platform}: ad {row.ad_id} listed twice on {day}", kind="bad_response")
            rows[key] = row
        if page >= result.total_pages:
            return _Fetched(rows=rows, pages=page, requests=counter[0])
        page += 1
        if page > MAX_PAGES:
            raise ApiError(f"{account.platform}: more than {MAX_PAGES} pages", kind="error")


def _report_page(client: ReportClient, token: str, *, account_id: str, day: date, page: int) -> ReportPage:
    return client.report_page(
        access_token=token, account_id=account_id, start=day, end=day, page=page, page_size=settings.AD_API_PAGE_SIZE
    )


_FIGURES = ("cost_fen", "impressions", "clicks", "conversions")


def _day_replace(*, account: AdAccount, day: date, fetched: _Fetched, started_at: datetime) -> AdPull:
    """Replace the stored day by the fetched rows, atomically, and record the pull."""
    now = timezone.now()
    with transaction.atomic():
        AdAccount.objects.select_for_update().filter(pk=account.pk).first()
        existing = {(r.campaign_id, r.ad_id): r for r in AdReportRow.objects.filter(account=account, day=day)}
        cost_before = sum(r.cost_fen for r in existing.values())
        created, updated = [], []
        for key, row in fetched.rows.items():
            old = existing.pop(key, None)
            if old is None:
                created.append(
                    AdReportRow(
                        account=account,
                        platform=account.platform,
                        day=day,
                        campaign_id=row.campaign_id,
                        ad_id=row.ad_id,
                        cost_fen=row.cost_fen,
                        impressions=row.impressions,
                        clicks=row.clicks,
                        conversions=row.conversions,
                        pulled_at=now,
                    )
                )
            elif any(getattr(old, f) != getattr(row, f) for f in _FIGURES):
                for f in _FIGURES:
                    setattr(old, f, getattr(row, f))
                old.pulled_at = now
                updated.append(old)
        AdReportRow.objects.bulk_create(created, batch_size=500)
        AdReportRow.objects.bulk_update(updated, [*_FIGURES, "pulled_at"], batch_size=500)
        deleted = len(existing)
        if existing:
            AdReportRow.objects.filter(pk__in=[r.pk for r in existing.values()]).delete()
        AdAccount.objects.filter(pk=account.pk).update(last_pull_at=now, last_error="")
        return AdPull.objects.create(
            account=account,
            day=day,
            status=PullStatus.SUCCEEDED,
            pages=fetched.pages,
            requests=fetched.requests,
            rows=len(fetched.rows),
            created=len(created),
            updated=len(updated),
            deleted=deleted,
            cost_fen_before=cost_before,
            cost_fen_after=sum(r.cost_fen for r in fetched.rows.values()),
            started_at=started_at,
            finished_at=timezone.now(),
        )


def ad_day_pull(*, account: AdAccount, day: date) -> AdPull:
    """Pull one account's day (all pages) and replace its stored rows; on failure
    record the failed pull, raise a warning, and leave the stored day as it was."""
    started_at = timezone.now()
    counter = [0]
    try:
        fetched = _fetch_day(account, day, counter)
    except ApiError as exc:
        error = str(exc)[:500]
        AdAccount.objects.filter(pk=account.pk).update(last_error=f"{day}: {error}"[:500])
        ad_alert_raise(
            key=_alert_key(WarningKind.PULL_FAILED, account),
            kind=WarningKind.PULL_FAILED,
            account=account,
            title=f"{account}: report pull of {day} failed",
            text=f"{error} ({exc.kind}); the stored figures of {day} are unchanged and the day is pulled again "
            "by the next run.",
        )
        return AdPull.objects.create(
            account=account,
            day=day,
            status=PullStatus.FAILED,
            requests=counter[0],
            error_kind=exc.kind,
            error=error,
            started_at=started_at,
            finished_at=timezone.now(),
        )
    pull = _day_replace(account=account, day=day, fetched=fetched, started_at=started_at)
    ad_alert_resolve(key=_alert_key(WarningKind.PULL_FAILED, account))
    return pull


def pull_days(*, start: date | None = None, end: date | None = None) -> list[date]:
    """The days to pull: [start, end], by default the last AD_REPORTS_DAYS local days up to today."""
    end = end or timezone.localdate()
    start = start or end - timedelta(days=settings.AD_REPORTS_DAYS - 1)
    if start > end:
        raise DomainError(_("--from %(start)s is after --to %(end)s") % {"start": start, "end": end}, code="bad_range")
    if (end - start).days > 92:
        raise DomainError(_("pull at most 93 days at once"), code="bad_range")
    return [start + timedelta(days=n) for n in range((end - start).days + 1)]


def _account_pull(account_pk: int, days: list[date]) -> list[AdPull]:
    account = AdAccount.objects.get(pk=account_pk)
    refresh_token_check(account=account)
    return [ad_day_pull(account=account, day=d) for d in days]


def _in_thread(account_pk: int, days: list[date]) -> list[AdPull]:
    close_old_connections()
    try:
        return _account_pull(account_pk, days)
    finally:
        connections.close_all()


def ad_reports_pull(
    *, account_ids: list[int] | None = None, start: date | None = None, end: date | None = None
) -> list[AdPull]:
    """Pull every active account (or the given ones, active or not) for each day of
    the range; at most AD_REPORTS_CONCURRENCY accounts at once. Returns the pulls."""
    days = pull_days(start=start, end=end)
    accounts = AdAccount.objects.all() if account_ids else AdAccount.objects.filter(active=True)
    if account_ids:
        accounts = accounts.filter(pk__in=account_ids)
    pks = list(accounts.order_by("pk").values_list("pk", flat=True))
    if account_ids and len(pks) != len(set(account_ids)):
        raise DomainError(
            _("no ad account with id %(ids)s") % {"ids": sorted(set(account_ids) - set(pks))}, code="not_found"
        )
    if len(pks) <= 1 or settings.AD_REPORTS_CONCURRENCY == 1:
        pulls = [p for pk in pks for p in _account_pull(pk, days)]
    else:
        with ThreadPoolExecutor(max_workers=settings.AD_REPORTS_CONCURRENCY, thread_name_prefix="adpull") as pool:
            pulls = [p for result in pool.map(_in_thread, pks, [days] * len(pks)) for p in result]
    for day in sorted({p.day for p in pulls if p.status == PullStatus.SUCCEEDED}):
        discrepancies_refresh(day=day)
    return pulls


# --- discrepancies ---------------------------------------------------------------
def _difference_percent(theirs: int, ours: int) -> Decimal:
    top = max(theirs, ours)
    if not top:
        return Decimal(0)
    return (Decimal(abs(theirs - ours)) * 100 / top).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def discrepancies_refresh(*, day: date) -> list[AdDiscrepancy]:
    """Compare, per registered account, their clicks with ours and their conversions
    with our successful activation postbacks on `day`; keep those beyond
    AD_DISCREPANCY_TOLERANCE_PERCENT (both sides under AD_DISCREPANCY_MIN_COUNT are
    ignored), replacing the day's earlier list, and raise an alert for each beyond
    AD_DISCREPANCY_ALERT_PERCENT (resolving the ones no longer beyond it)."""
    from adreports import selectors

    comparison = selectors.account_day_comparison(day=day)
    now = timezone.now()
    found: list[AdDiscrepancy] = []
    alerts: list[tuple[AdAccount, str, int, int, Decimal]] = []
    accounts = list(AdAccount.objects.all())
    for account in accounts:
        figures = comparison.get((account.platform, account.account_id))
        if figures is None:
            continue
        for metric_kind, theirs, ours in (
            (Metric.CLICKS, figures["their_clicks"], figures["our_clicks"]),
            (Metric.CONVERSIONS, figures["their_conversions"], figures["postbacks"]),
        ):
            percent = _difference_percent(theirs, ours)
            if max(theirs, ours) < settings.AD_DISCREPANCY_MIN_COUNT:
                continue
            if percent <= Decimal(str(settings.AD_DISCREPANCY_TOLERANCE_PERCENT)):
                continue
            large = percent > Decimal(str(settings.AD_DISCREPANCY_ALERT_PERCENT))
            found.append(
                AdDiscrepancy(
                    account=account,
                    day=day,
                    metric=metric_kind,
                    theirs=theirs,
                    ours=ours,
                    difference_percent=percent,
                    large=large,
                    checked_at=now,
                )
            )
            if large:
                alerts.append((account, metric_kind, theirs, ours, percent))
    with transaction.atomic():
        AdDiscrepancy.objects.filter(day=day).delete()
        AdDiscrepancy.objects.bulk_create(found)
    large_keys = set()
    for account, metric, theirs, ours, percent in alerts:
        key = _alert_key(WarningKind.DISCREPANCY, account, f"{day}:{metric}")
        large_keys.add(key)
        ad_alert_raise(
            key=key,
            kind=WarningKind.DISCREPANCY,
            account=account,
            title=f"{account} {day}: {Metric(metric).label} differ by {percent}% ({theirs} vs {ours})",
            text=f"Beyond AD_DISCREPANCY_ALERT_PERCENT={settings.AD_DISCREPANCY_ALERT_PERCENT}%. "
            "Check the tracking link's click URL macros, postback failures, or invalid-click refunds.",
        )
    for account in accounts:
        for metric in Metric.values:
            key = _alert_key(WarningKind.DISCREPANCY, account, f"{day}:{metric}")
            if key not in large_keys:
                ad_alert_resolve(key=key)
    return found


# --- manual cost -----------------------------------------------------------------
def ad_manual_cost_set(*, link: TrackingLink, day: date, cost_fen: int, note: str = "") -> AdManualCost:
    """Spend of a tracking link on a day, typed in by hand (platforms without a
    reporting API): one figure per link and day, replaced when set again."""
    if cost_fen < 0:
        raise DomainError(_("cost must not be negative"), code="invalid")
    with transaction.atomic():
        cost, _created = AdManualCost.objects.update_or_create(
            link=link, day=day, defaults={"cost_fen": cost_fen, "note": note[:200]}
        )
    return cost


def ad_manual_cost_delete(*, cost: AdManualCost) -> None:
    AdManualCost.objects.filter(pk=cost.pk).delete()
