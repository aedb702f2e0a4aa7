"""Detectors over the 5-minute `LinkRollup` series (reads only; `alerts.checks`
turns their findings into alerts).

Every traffic detector compares the last `window_minutes` (default 15: three closed
5-minute buckets) with the same window at the same time of day on each of the
previous `baseline_days` days (default 14): the baseline is the median of those
daily values, its spread the MAD (median absolute deviation, ×1.4826 to compare
with a standard deviation). A series fires only with enough volume (`min_volume`
in the baseline), a relative change past the rule's ratio AND a robust z-score past
`min_z` (so a noisy series needs a bigger move). Thresholds live in each rule's
`params` (admin, `AlertRule`), defaults in `DEFAULTS`."""

from __future__ import annotations

import re
import statistics
from collections import defaultdict
from collections.abc import Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.db.models import Case, Count, IntegerField, Q, Sum, Value, When
from django.urls import reverse
from django.utils import timezone

from alerts.models import AlertRule, Severity
from analytics.models import LinkRollup
from attribution.models import FraudStatus

BUCKET = timedelta(minutes=5)
GRACE = timedelta(seconds=60)  # a 5-minute bucket is rolled about a minute after it closes

DEFAULTS: dict[str, dict] = {
    "os_activation_drop": {
        "severity": Severity.CRITICAL,
        "window_minutes": 15,
        "baseline_days": 14,
        "min_baseline_days": 3,
        "min_volume": 20,  # baseline activations in the window
        "drop_ratio": 0.5,  # fires below (1 - 0.5) × baseline
        "min_z": 3.0,
        "clicks_tolerance": 0.3,  # the OS's clicks within 30% of their baseline: "clicks normal"
    },
    "click_spike": {
        "severity": Severity.WARNING,
        "window_minutes": 15,
        "baseline_days": 14,
        "min_baseline_days": 3,
        "min_volume": 300,  # clicks in the window (the current value)
        "spike_ratio": 3.0,
        "min_z": 4.0,
    },
    "reject_spike": {
        "severity": Severity.WARNING,
        "window_minutes": 15,
        "baseline_days": 14,
        "min_baseline_days": 3,
        "min_volume": 100,
        "spike_ratio": 3.0,
        "min_z": 4.0,
    },
    "source_range_spike": {
        "severity": Severity.WARNING,
        "window_minutes": 15,
        "baseline_days": 14,
        "min_baseline_days": 3,
        "min_volume": 300,  # clicks from the range in the window (the current value)
        "spike_ratio": 3.0,
        "min_z": 4.0,
        "keep_min": 5,  # a closed bucket keeps only ranges with at least this many clicks (memory bound)
    },
    "click_flooding": {
        "severity": Severity.WARNING,
        "hours": 24,
        "min_clicks": 5000,
        "max_install_rate": 0.001,
        "min_long_tail_share": 0.5,  # installs more than an hour after their click
    },
    "postback_failures": {"severity": Severity.WARNING, "window_minutes": 30, "min_attempts": 20, "max_rate": 0.2},
    "fraud_installs": {"severity": Severity.WARNING, "window_minutes": 60, "min_installs": 5},
    "pipeline_health": {
        "severity": Severity.CRITICAL,
        "dead_letters_15m": 10,
        "click_503_window_minutes": 15,
        "click_503_min": 20,  # 503s in the window
        "click_503_rate": 0.01,  # of the click door's answers (503s + clicks counted in the rollups)
        "beat_grace_seconds": 120,  # a beat job is late once its next run is this much overdue
    },
}


@dataclass
class Finding:
    rule: str
    key: str  # the series: "link 12 (tok…) ios", "app com.x ios", "platform tencent"
    fingerprint: str
    severity: str
    title: str
    text: str
    labels: dict = field(default_factory=dict)
    value: float | None = None
    baseline: float | None = None
    url: str = ""

    def line(self) -> str:
        return f"{self.rule}\t{self.severity}\t{self.key}\t{self.title}"


def _finding(
    rule: str,
    params: dict,
    series: tuple,
    *,
    key: str,
    title: str,
    text: str,
    labels: dict,
    value: float | None = None,
    baseline: float | None = None,
    url: str = "",
) -> Finding:
    """A finding of `rule` on one series; its fingerprint (the alert's dedup key) is
    the rule and the series' identity, e.g. `click_flooding:12`."""
    return Finding(
        rule=rule,
        key=key,
        fingerprint=":".join([rule, *(str(part) for part in series)]),
        severity=params["severity"],
        title=title,
        text=text,
        labels=labels,
        value=value,
        baseline=baseline,
        url=url,
    )


def rule_params(rule: str, overrides: dict | None = None) -> dict | None:
    """The rule's thresholds, None when disabled in the admin."""
    params = dict(DEFAULTS[rule])
    stored = AlertRule.objects.filter(key=rule).first()
    if stored is not None:
        if not stored.enabled:
            return None
        params.update(stored.params or {})
        params["severity"] = stored.severity
    params.update(overrides or {})
    return params


def window_end(at: datetime) -> datetime:
    """The end of the newest 5-minute bucket closed and rolled at `at`."""
    ready = at - GRACE
    return ready.replace(minute=ready.minute - ready.minute % 5, second=0, microsecond=0)


def robust(values: Sequence[float]) -> tuple[float, float]:
    """median and MAD scaled to a standard deviation"""
    median = statistics.median(values)
    mad = statistics.median([abs(v - median) for v in values]) * 1.4826
    return median, mad


def series_url(*, at: datetime, app_id="", platform="", link_id=None, os="") -> str:
    """The analytics dashboard filtered to the series, hour by hour over the local
    day of `at` and the day before (the change against yesterday at a glance)."""
    day = timezone.localdate(at)
    query = {
        "from": (day - timedelta(days=1)).isoformat(),
        "to": day.isoformat(),
        "granularity": "hour",
        "app": app_id,
        "platform": platform,
        "link": "" if link_id is None else link_id,
        "os": os,
    }
    query = {k: v for k, v in query.items() if v != ""}
    return settings.SITE_URL + reverse("admin:analytics_dashboard") + "?" + urlencode(query)


def _window_starts(end: datetime, minutes: int, days: int) -> dict[datetime, int]:
    """bucket start -> day offset (0 = now, 1 = yesterday, …)."""
    starts = {}
    for day in range(days + 1):
        day_end = end - timedelta(days=day)
        for i in range(minutes // 5):
            starts[day_end - BUCKET * (i + 1)] = day
    return starts


_LINK_FILTER_MAX = 500  # more spike candidates than this: read every link's history, keep theirs
_run_memo: ContextVar[dict | None] = ContextVar("alerts_run_memo", default=None)


@contextmanager
def one_read_per_window():
    """Within a traffic_check run, detectors asking for the same totals (the same
    window, days, grouping and fields) share one query."""
    token = _run_memo.set({})
    try:
        yield
    finally:
        _run_memo.reset(token)


def _window_totals(
    *,
    end: datetime,
    minutes: int,
    days: int,
    group: tuple[str, ...],
    fields: tuple[str, ...],
    from_day: int = 0,
    to_day: int | None = None,
    at_least: tuple[str, int] | None = None,
    link_ids: frozenset[int] | None = None,
) -> list[tuple]:
    """(day offset, *group values, *field totals): the 5-minute rows of the window on
    each day from `from_day` to `to_day` (0 = now, 1 = yesterday, …, default `days`),
    summed per day and series by the database (one GROUP BY; the day is a CASE on the
    bucket start). `at_least` (field, n) keeps the series whose total reaches n
    (HAVING); `link_ids` reads only those links."""
    to_day = days if to_day is None else to_day
    memo = _run_memo.get()
    key = (end, minutes, from_day, to_day, group, fields, at_least, link_ids)
    if memo is not None and key in memo:
        return memo[key]
    starts = {s: d for s, d in _window_starts(end, minutes, days).items() if from_day <= d <= to_day}
    by_day: dict[int, list[datetime]] = defaultdict(list)
    for start, day in starts.items():
        by_day[day].append(start)
    day_case = Case(
        *(When(bucket_start__in=bucket_starts, then=Value(day)) for day, bucket_starts in sorted(by_day.items())),
        output_field=IntegerField(),
    )
    rows = LinkRollup.objects.filter(bucket_minutes=5, bucket_start__in=list(starts))
    if link_ids is not None:
        rows = rows.filter(link_id__in=sorted(link_ids))
    totals = rows.annotate(day=day_case).values("day", *group).annotate(**{f"t_{f}": Sum(f) for f in fields})
    if at_least is not None:
        totals = totals.filter(**{f"t_{at_least[0]}__gte": at_least[1]})
    out = [(r["day"], *(r[g] for g in group), *(r[f"t_{f}"] or 0 for f in fields)) for r in totals.order_by()]
    if memo is not None:
        memo[key] = out
    return out


def _series(
    rows: list[tuple], *, days: int, group: tuple[str, ...], fields: tuple[str, ...]
) -> tuple[dict[tuple, dict[str, list[int]]], dict[tuple, set[int]]]:
    """{group values: {field: [value on day 0, day 1, …]}} and the days each series
    has rows, from `_window_totals` rows."""
    out: dict[tuple, dict[str, list[int]]] = defaultdict(lambda: {f: [0] * (days + 1) for f in fields})
    present: dict[tuple, set[int]] = defaultdict(set)
    width = len(group)
    for row in rows:
        day, key = row[0], tuple(row[1 : 1 + width])
        values = out[key]
        for i, f in enumerate(fields):
            values[f][day] = row[1 + width + i]
        present[key].add(day)
    return out, present


def _since(end: datetime, minutes: int) -> datetime:
    return end - timedelta(minutes=minutes)


_OS_VERSION = re.compile(r"(?:iPhone OS|CPU OS|Android)[ /]?(\d+)")


def os_version(ua: str) -> str | None:
    match = _OS_VERSION.search(ua or "")
    return match.group(1) if match else None


def _version_shift(*, app_id: str, os: str, end: datetime, minutes: int, days: int) -> str:
    """The OS version whose share of attributed installs fell most against the
    baseline windows (from the clicks' user agents), e.g. "iOS 13: 41% → 0%"."""
    from attribution.models import Conversion

    def shares(q: Q) -> tuple[dict[str, float], int]:
        counts: dict[str, int] = defaultdict(int)
        total = 0
        for click in Conversion.objects.filter(q, app_id=app_id, os=os).values_list("click", flat=True)[:5000]:
            version = os_version((click or {}).get("ua", ""))
            if version:
                counts[version] += 1
                total += 1
        return ({v: c / total for v, c in counts.items()} if total else {}), total

    now_q = Q(activated_at__gte=_since(end, minutes), activated_at__lt=end)
    base_q = Q()
    for day in range(1, days + 1):
        day_end = end - timedelta(days=day)
        base_q |= Q(activated_at__gte=_since(day_end, minutes), activated_at__lt=day_end)
    now, _ = shares(now_q)
    base, base_total = shares(base_q)
    if not base_total:
        return ""
    version, fall = max(((v, share - now.get(v, 0.0)) for v, share in base.items()), key=lambda x: x[1])
    if fall < 0.2:
        return ""
    name = "iOS" if os == "ios" else "Android"
    return f"{name} {version}: {base[version]:.0%} of installs at baseline → {now.get(version, 0.0):.0%} now"


def os_activation_drop(*, at: datetime, params: dict) -> list[Finding]:
    """Activations of one OS of an app fell while that OS's clicks stayed normal."""
    end, minutes, days = window_end(at), params["window_minutes"], params["baseline_days"]
    group, fields = ("app_id", "os"), ("clicks", "activations")
    rows = _window_totals(end=end, minutes=minutes, days=days, group=group, fields=fields)
    series, present = _series(rows, days=days, group=group, fields=fields)
    findings = []
    for (app_id, os), values in series.items():
        if not os:
            continue
        base_days = sorted(d for d in present[(app_id, os)] if d > 0)
        if len(base_days) < params["min_baseline_days"]:
            continue
        acts = [values["activations"][d] for d in base_days]
        clicks = [values["clicks"][d] for d in base_days]
        base, mad = robust(acts)
        click_base, _ = robust(clicks)
        now, now_clicks = values["activations"][0], values["clicks"][0]
        if base < params["min_volume"] or now >= base * (1 - params["drop_ratio"]):
            continue
        if (base - now) < params["min_z"] * max(mad, 1.0):
            continue
        if now_clicks < click_base * (1 - params["clicks_tolerance"]):
            continue  # the clicks fell too: a traffic drop, not an activation drop
        others = []
        for (other_app, other_os), other in series.items():
            if other_app == app_id and other_os not in (os, ""):
                days_present = sorted(d for d in present[(other_app, other_os)] if d > 0)
                other_base = robust([other["activations"][d] for d in days_present])[0] if days_present else 0
                others.append(f"{other_os}: {other['activations'][0]} vs {other_base:.0f}")
        version = _version_shift(app_id=app_id, os=os, end=end, minutes=minutes, days=days)
        change = (now - base) / base
        os_name = {"ios": "iOS", "android": "Android"}.get(os, os)
        title = f"{os_name} activations down {abs(change):.0%} for {app_id}" + (
            f" ({version.split(':')[0]})" if version else ""
        )
        text = (
            f"Activations of {os_name} in the last {minutes} min: {now} vs baseline {base:.0f} "
            f"(median of the same time on {len(base_days)} previous days, MAD {mad:.1f}): {change:+.0%}, "
            f"since {_since(end, minutes):%Y-%m-%d %H:%M} UTC. "
            f"Clicks of {os_name} normal: {now_clicks} vs {click_base:.0f}."
        )
        if others:
            text += " Other OS: " + "; ".join(others) + "."
        if version:
            text += f" OS version: {version}."
        findings.append(
            _finding(
                "os_activation_drop",
                params,
                (app_id, os),
                key=f"app {app_id} os {os}",
                title=title,
                text=text,
                labels={"app": app_id, "os": os, **({"os_version": version.split(":")[0]} if version else {})},
                value=now,
                baseline=base,
                url=series_url(at=end, app_id=app_id, os=os),
            )
        )
    return findings


def _link_tokens(ids: set[int]) -> dict[int, tuple[str, str, str]]:
    from attribution.models import TrackingLink

    return {
        pk: (token, platform, app)
        for pk, token, platform, app in TrackingLink.objects.filter(pk__in=ids).values_list(
            "pk", "token", "platform", "app_id"
        )
    }


def _spike_baseline(*, now: int, by_day, present: set[int], params: dict) -> tuple[float, float] | None:
    """(baseline, MAD) when `now` is a spike against the same window on the previous
    days (`by_day[d]` the value `d` days ago, `present` the days with data), else
    None. A series with too little history is judged against nothing (0)."""
    if now < params["min_volume"]:
        return None
    days = [d for d in range(1, params["baseline_days"] + 1) if d in present]
    history = [by_day[d] for d in days] if len(days) >= params["min_baseline_days"] else [0]
    base, mad = robust(history)
    if now <= base * params["spike_ratio"] or (now - base) < params["min_z"] * max(mad, 1.0):
        return None
    return base, mad


def _spike(*, at: datetime, params: dict, rule: str, field_name: str, noun: str) -> list[Finding]:
    end, minutes, days = window_end(at), params["window_minutes"], params["baseline_days"]
    group, fields = ("link_id", "os"), (field_name,)
    # Only a series at or above min_volume now can be a spike: find those with one
    # GROUP BY of the current window, then read the previous days of their links only.
    current = _window_totals(
        end=end,
        minutes=minutes,
        days=days,
        group=group,
        fields=fields,
        to_day=0,
        at_least=(field_name, params["min_volume"]),
    )
    if not current:
        return []
    candidates = {(row[1], row[2]) for row in current}
    link_ids = frozenset(link for link, _ in candidates)
    history = _window_totals(
        end=end,
        minutes=minutes,
        days=days,
        group=group,
        fields=fields,
        from_day=1,
        link_ids=link_ids if len(link_ids) <= _LINK_FILTER_MAX else None,
    )
    rows = current + [row for row in history if (row[1], row[2]) in candidates]
    series, present = _series(rows, days=days, group=group, fields=fields)
    hits = []
    for (link_id, os), values in series.items():
        verdict = _spike_baseline(
            now=values[field_name][0], by_day=values[field_name], present=present[(link_id, os)], params=params
        )
        if verdict is not None:
            hits.append((link_id, os, values[field_name][0], *verdict))
    tokens = _link_tokens({h[0] for h in hits})
    findings = []
    for link_id, os, now, base, mad in hits:
        token, platform, app_id = tokens.get(link_id, ("?", "", ""))
        findings.append(
            _finding(
                rule,
                params,
                (link_id, os),
                key=f"link {link_id} ({token}) {os}",
                title=f"{noun} spike on link {link_id} ({token}) {os}: {now} in {minutes} min vs {base:.0f}",
                text=(
                    f"{noun} on link {link_id} ({token}, {platform}, {app_id}, {os}) in the last {minutes} min: "
                    f"{now} vs baseline {base:.0f} (median of the same time on previous days, MAD {mad:.1f}), "
                    f"×{now / max(base, 1):.1f}, since {_since(end, minutes):%Y-%m-%d %H:%M} UTC."
                ),
                labels={"app": app_id, "platform": platform, "os": os, "link": str(link_id)},
                value=now,
                baseline=base,
                url=series_url(at=end, link_id=link_id, os=os),
            )
        )
    return findings


def click_spike(*, at: datetime, params: dict) -> list[Finding]:
    return _spike(at=at, params=params, rule="click_spike", field_name="clicks", noun="Clicks")


def reject_spike(*, at: datetime, params: dict) -> list[Finding]:
    return _spike(at=at, params=params, rule="reject_spike", field_name="rejected_clicks", noun="Rejected clicks")


def source_range_spike(*, at: datetime, params: dict) -> list[Finding]:
    """Clicks (accepted or rejected) from one /24 or /48 far above that range's
    baseline (alerts/ranges.py: the click script counts them per 5-minute bucket;
    this detector compacts each closed bucket, then compares)."""
    from alerts import ranges
    from core.redis import get_redis

    end, minutes, days = window_end(at), params["window_minutes"], params["baseline_days"]
    client = get_redis()
    recent = [end - BUCKET * (i + 1) for i in range(ranges.RAW_TTL_SECONDS // 300 - 1)]  # catch up after a pause
    ranges.buckets_compact(client, starts=recent, keep_min=params["keep_min"], ttl_seconds=(days + 1) * 86400 + 3600)
    now_starts = [end - BUCKET * (i + 1) for i in range(minutes // 5)]
    current = {
        name: n for name, n in ranges.window_counts(client, starts=now_starts).items() if n >= params["min_volume"]
    }
    if not current:
        return []
    history_starts = {s: d for s, d in _window_starts(end, minutes, days).items() if d > 0}
    history, present = ranges.history_counts(client, starts=history_starts, names=sorted(current))
    findings = []
    for name, now in sorted(current.items()):
        verdict = _spike_baseline(now=now, by_day=history[name], present=present, params=params)
        if verdict is None:
            continue
        base, mad = verdict
        findings.append(
            _finding(
                "source_range_spike",
                params,
                (name,),
                key=f"source {name}",
                title=f"Clicks from {name}: {now} in {minutes} min vs {base:.0f}",
                text=(
                    f"Clicks (accepted or rejected) whose device address is in {name}, last {minutes} min: "
                    f"{now} vs baseline {base:.0f} (median of the same time on previous days, MAD {mad:.1f}), "
                    f"×{now / max(base, 1):.1f}, since {_since(end, minutes):%Y-%m-%d %H:%M} UTC. "
                    f"A data centre or device farm: add the range to the deny-list fraud rule."
                ),
                labels={"source_range": name},
                value=now,
                baseline=base,
                url=settings.SITE_URL + reverse("admin:alerts_fraudrule_changelist"),
            )
        )
    return findings


def click_flooding(*, at: datetime, params: dict) -> list[Finding]:
    """Links with many clicks, a tiny click-to-install rate and installs mostly in
    the long CTIT tail over the last `hours` (hourly rollups)."""
    since = at - timedelta(hours=params["hours"])
    rows = (
        LinkRollup.objects.filter(bucket_minutes=60, bucket_start__gte=since, bucket_start__lt=at)
        .values("link_id")
        .annotate(
            c=Sum("clicks"),
            a=Sum("attributed"),
            tail=Sum("ctit_1_24h") + Sum("ctit_gt_24h") + Sum("ctit_10_60m"),
        )
        .filter(c__gte=params["min_clicks"])
    )
    hits = [
        r
        for r in rows
        if r["a"]
        and r["a"] / r["c"] < params["max_install_rate"]
        and (r["tail"] or 0) / r["a"] >= params["min_long_tail_share"]
    ]
    tokens = _link_tokens({r["link_id"] for r in hits})
    findings = []
    for r in hits:
        token, platform, app_id = tokens.get(r["link_id"], ("?", "", ""))
        rate, tail = r["a"] / r["c"], r["tail"] / r["a"]
        findings.append(
            _finding(
                "click_flooding",
                params,
                (r["link_id"],),
                key=f"link {r['link_id']} ({token})",
                title=f"Click flooding suspected on link {r['link_id']} ({token}): {rate:.3%} of clicks install",
                text=(
                    f"Last {params['hours']} h on link {r['link_id']} ({token}, {platform}, {app_id}): "
                    f"{r['c']} clicks, {r['a']} installs ({rate:.3%} < {params['max_install_rate']:.2%}); "
                    f"{tail:.0%} of them more than 10 min after their click (long tail)."
                ),
                labels={"app": app_id, "platform": platform, "link": str(r["link_id"])},
                value=rate,
                url=series_url(at=at, link_id=r["link_id"]),
            )
        )
    return findings


def postback_failures(*, at: datetime, params: dict) -> list[Finding]:
    """Failed postback attempts per platform over the window."""
    end = window_end(at)
    since = _since(end, params["window_minutes"])
    rows = (
        LinkRollup.objects.filter(bucket_minutes=5, bucket_start__gte=since, bucket_start__lt=end)
        .values("platform")
        .annotate(failed=Sum("postback_attempts_failed"), ok=Sum("postbacks_succeeded"))
    )
    findings = []
    for r in rows:
        failed = r["failed"] or 0
        attempts = failed + (r["ok"] or 0)
        if attempts < params["min_attempts"] or not r["platform"] or failed / attempts <= params["max_rate"]:
            continue
        findings.append(
            _finding(
                "postback_failures",
                params,
                (r["platform"],),
                key=f"platform {r['platform']}",
                title=f"Postbacks to {r['platform']} failing: {failed / attempts:.0%} of {attempts} attempts",
                text=(
                    f"{failed} failed attempts of {attempts} since {since:%H:%M} UTC "
                    f"(threshold {params['max_rate']:.0%})."
                ),
                labels={"platform": r["platform"]},
                value=failed / attempts,
                url=series_url(at=end, platform=r["platform"]),
            )
        )
    return findings


def fraud_installs(*, at: datetime, params: dict) -> list[Finding]:
    """Links whose installs the fraud rules flagged or rejected in the window."""
    from attribution.models import Conversion

    since = at - timedelta(minutes=params["window_minutes"])
    rows = (
        Conversion.objects.filter(activated_at__gte=since, activated_at__lt=at)
        .exclude(fraud_status=FraudStatus.CLEAN)
        .values("link_id", "fraud_rule", "app_id", "platform")
        .annotate(
            flagged=Count("pk", filter=Q(fraud_status=FraudStatus.FLAGGED)),
            rejected=Count("pk", filter=Q(fraud_status=FraudStatus.REJECTED)),
        )
    )
    hits = [r for r in rows if r["flagged"] + r["rejected"] >= params["min_installs"]]
    tokens = _link_tokens({r["link_id"] for r in hits})
    findings = []
    for r in hits:
        token = tokens.get(r["link_id"], ("?",))[0]
        findings.append(
            _finding(
                f"fraud.{r['fraud_rule']}",
                params,
                (r["link_id"],),
                key=f"link {r['link_id']} ({token})",
                title=(
                    f"Fraud rule {r['fraud_rule']} on link {r['link_id']} ({token}): "
                    f"{r['flagged']} flagged, {r['rejected']} rejected"
                ),
                text=f"Installs judged by the {r['fraud_rule']} rule in the last {params['window_minutes']} min.",
                labels={"app": r["app_id"], "platform": r["platform"], "link": str(r["link_id"])},
                value=r["flagged"] + r["rejected"],
                url=reverse("admin:attribution_conversion_changelist")
                + "?"
                + urlencode({"link__id__exact": r["link_id"], "fraud_rule": r["fraud_rule"]}),
            )
        )
    return findings


def _next_run(schedule, last_run: datetime) -> datetime:
    """When a beat entry's schedule (seconds, timedelta, celery schedule or crontab)
    next fires after `last_run`."""
    import copy

    from celery.schedules import schedule as every

    if isinstance(schedule, int | float):
        return last_run + timedelta(seconds=schedule)
    if isinstance(schedule, timedelta):
        return last_run + schedule
    if type(schedule) is every:
        return last_run + schedule.run_every
    frozen = copy.copy(schedule)
    frozen.nowfun = lambda: last_run
    return last_run + frozen.remaining_estimate(last_run)


def pipeline_health(*, at: datetime, params: dict) -> list[Finding]:
    """ "We broke", not "the traffic changed": the event consumer down or lagging (its
    heartbeat and backlog as /readyz reads them), dead letters growing, the click
    door answering 503, a beat job that missed its schedule."""
    from alerts.health import beat_schedule
    from alerts.models import BeatJobRun, ClickOutage
    from core.events.liveness import consumer_status
    from core.models import DeadLetter

    findings = []

    def add(series: tuple, title: str, text: str, **labels) -> None:
        findings.append(
            _finding(
                "pipeline_health",
                params,
                series,
                key=":".join(series),
                title=title,
                text=text,
                labels={"component": series[0], **labels},
                url=settings.SITE_URL + reverse("admin:index"),
            )
        )

    try:
        status = consumer_status()
    except Exception as exc:  # Redis down: the consumer's state cannot be read
        status = {"ok": False, "detail": f"cannot tell: {type(exc).__name__}"}
    if not status.get("ok"):
        add(("consumer",), "Event consumer down or lagging", str(status.get("detail") or status)[:500])

    recent = DeadLetter.objects.filter(created_at__gte=at - timedelta(minutes=15), created_at__lt=at).count()
    if recent >= params["dead_letters_15m"]:
        add(
            ("dead_letters",),
            f"Dead letters growing: {recent} in 15 min",
            f"{recent} events dead-lettered since {at - timedelta(minutes=15):%H:%M} UTC.",
        )

    minutes = params["click_503_window_minutes"]
    current = at.replace(minute=at.minute - at.minute % 5, second=0, microsecond=0)
    since = current - timedelta(minutes=minutes)  # the open bucket counts: 503s are written within seconds
    failed = ClickOutage.objects.filter(bucket_start__gte=since, bucket_start__lte=at).aggregate(n=Sum("count"))["n"]
    if failed and failed >= params["click_503_min"]:
        answered = LinkRollup.objects.filter(bucket_minutes=5, bucket_start__gte=since, bucket_start__lt=at).aggregate(
            c=Sum("clicks"), r=Sum("rejected_clicks")
        )
        total = failed + (answered["c"] or 0) + (answered["r"] or 0)
        if failed / total >= params["click_503_rate"]:
            add(
                ("click_503",),
                f"Click door answering 503: {failed} since {since:%H:%M} UTC ({failed / total:.0%} of clicks)",
                f"{failed} clicks answered 503 (click storage unavailable) since {since:%Y-%m-%d %H:%M} UTC, "
                f"{failed / total:.1%} of {total} (threshold {params['click_503_rate']:.0%}); "
                f"the ad platforms retry some, the rest are lost. Check Redis (/readyz).",
            )

    last_runs = dict(BeatJobRun.objects.values_list("job", "last_run_at"))
    grace = timedelta(seconds=params["beat_grace_seconds"])
    for job, entry in sorted(beat_schedule().items()):
        last = last_runs.get(job)
        if last is None:
            continue  # never ran here (a new job, or beat not started yet)
        due = _next_run(entry["schedule"], last)
        if at > due + grace:
            add(
                ("beat", job),
                f"Beat job {job} missed its schedule: last ran {(at - last).total_seconds() / 60:.0f} min ago",
                f"Beat job {job} ({entry['task']}) last started at {last:%Y-%m-%d %H:%M:%S} UTC; "
                f"it was due at {due:%H:%M:%S} UTC (schedule {entry['schedule']}). Check celery beat and the workers.",
                job=job,
            )
    return findings


DETECTORS = {
    "os_activation_drop": os_activation_drop,
    "click_spike": click_spike,
    "reject_spike": reject_spike,
    "source_range_spike": source_range_spike,
    "click_flooding": click_flooding,
    "postback_failures": postback_failures,
    "fraud_installs": fraud_installs,
    "pipeline_health": pipeline_health,
}
