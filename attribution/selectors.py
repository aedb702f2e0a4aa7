"""Reads: click candidates from Redis, conversions by device or user, reports."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from attribution import devices
from attribution.clicks import hour_bucket, index_key, stat_key
from attribution.models import (
    CandidateVerdict,
    Conversion,
    DeviceKey,
    MatchOutcome,
    MatchTrace,
    PendingEvent,
    PendingEventKey,
    PendingEventStatus,
    TestDevice,
    TrackingLink,
)
from core.redis import get_redis

REINSTALL_DAYS = 90


@dataclass
class Candidate:
    link_id: int
    platform: str
    kind: str
    key: str
    click_id: str = ""
    click_at_ms: int | None = None
    click: dict = field(default_factory=dict)
    verdict: str = CandidateVerdict.REJECTED
    reason: str = ""
    clicks_on_key: int = 0

    def as_dict(self) -> dict:
        # dataclasses.asdict's field order, without its deep copy (a stored click is flat
        # JSON): a batch of activations builds one per candidate of each trace.
        return {
            "link_id": self.link_id,
            "platform": self.platform,
            "kind": self.kind,
            "key": self.key,
            "click_id": self.click_id,
            "click_at_ms": self.click_at_ms,
            "click": dict(self.click),
            "verdict": self.verdict,
            "reason": self.reason,
            "clicks_on_key": self.clicks_on_key,
            "click_at": (
                datetime.fromtimestamp(self.click_at_ms / 1000, tz=timezone.get_current_timezone()).isoformat()
                if self.click_at_ms
                else None
            ),
        }


@dataclass
class MatchResult:
    winner: Candidate | None
    candidates: list[Candidate]
    reason: str


def links_for(*, app_id: str, os: str | None) -> list[TrackingLink]:
    return links_among(list(TrackingLink.objects.filter(app_id=app_id)), app_id=app_id, os=os)


def links_among(links: list[TrackingLink], *, app_id: str, os: str | None) -> list[TrackingLink]:
    """The links an activation of `app_id` on `os` can match, in the given order (newest
    first, the model's): the app's links of that OS, every app link when the OS is unknown."""
    return [link for link in links if link.app_id == app_id and (os not in ("ios", "android") or link.os == os)]


def _window_text(seconds: int) -> str:
    return f"{seconds // 86400} d" if seconds % 86400 == 0 else f"{seconds // 3600} h"


ClickLookup = tuple[TrackingLink, str, str, int]  # link, kind, value, window (s)


def click_candidates(*, links: list[TrackingLink], keys: dict[str, list[str]], activated_ms: int) -> MatchResult:
    """Every click stored under the activation's keys on the app's links, each with a
    verdict; the winner is the last eligible click before the activation, device-id
    matches taking precedence over IP+UA. One Redis pipeline (`click_lookups`, then
    `click_candidates_judge`; a batch of activations pipelines all its lookups at once)."""
    lookups, notes = click_lookups(links=links, keys=keys)
    return click_candidates_judge(
        lookups=lookups, results=click_sets_read(lookups), notes=notes, activated_ms=activated_ms
    )


def click_sets_read(lookups: list[ClickLookup]) -> list[list]:
    """The stored clicks (member, score) of each lookup, in one pipeline; a set several
    lookups name (e.g. one IP+UA behind many devices of a batch) is read once."""
    if not lookups:
        return []
    keys = [index_key(link.id, kind, value) for link, kind, value, _ in lookups]
    distinct = list(dict.fromkeys(keys))
    pipe = get_redis().pipeline(transaction=False)
    for key in distinct:
        pipe.zrange(key, 0, -1, withscores=True)
    read = dict(zip(distinct, pipe.execute(), strict=True))
    return [read[key] for key in keys]


def click_lookups(
    *, links: list[TrackingLink], keys: dict[str, list[str]]
) -> tuple[list[ClickLookup], list[Candidate]]:
    """The click sets to read for these keys on these links (each with its window), and a
    note for each key whose window is off on a link."""
    lookups: list[ClickLookup] = []
    notes: list[Candidate] = []
    for link in links:
        for kind in (*devices.DEVICE_KINDS, devices.IPUA):
            window = link.device_window_days * 86400 if kind != devices.IPUA else link.ipua_window_hours * 3600
            for value in keys.get(kind, []):
                if window == 0:
                    notes.append(
                        Candidate(link.id, link.platform, kind, value, reason="IP+UA matching is off for this link")
                    )
                    continue
                lookups.append((link, kind, value, window))
    return lookups, notes


def click_candidates_judge(
    *, lookups: list[ClickLookup], results: list[list], notes: list[Candidate], activated_ms: int
) -> MatchResult:
    """The verdict on each stored click and the winner (the rules of `click_candidates`)."""
    candidates: list[Candidate] = []
    for (link, kind, value, window), members in zip(lookups, results, strict=True):
        before = sum(1 for _, score in members if score <= activated_ms)
        for member, score in members:
            try:
                click = json.loads(member)
            except ValueError:
                continue
            cand = Candidate(
                link.id,
                link.platform,
                kind,
                value,
                click_id=str(click.get("id", "")),
                click_at_ms=int(score),
                click=click,
                clicks_on_key=before,
            )
            age_ms = activated_ms - int(score)
            if age_ms < 0:
                cand.reason = "clicked after the activation"
            elif age_ms > window * 1000:
                cand.reason = f"outside the {_window_text(window)} window ({age_ms / 3600000:.1f} h before)"
            else:
                cand.verdict = CandidateVerdict.ELIGIBLE
                cand.reason = f"{kind} within the {_window_text(window)} window"
            candidates.append(cand)
    eligible = [c for c in candidates if c.verdict == CandidateVerdict.ELIGIBLE]
    by_device = [c for c in eligible if c.kind != devices.IPUA]
    pool = by_device or eligible
    winner = None
    if pool:
        order = {kind: i for i, kind in enumerate((*devices.DEVICE_KINDS, devices.IPUA))}
        winner = max(pool, key=lambda c: (c.click_at_ms, c.click.get("us", 0), -order[c.kind]))
        winner.verdict = CandidateVerdict.MATCHED
        winner.reason = f"last click before the activation ({winner.reason})"
        for c in eligible:
            if c is winner:
                continue
            c.verdict = CandidateVerdict.REJECTED
            if c.click_id == winner.click_id:
                c.reason = f"same click, matched by {winner.kind} first"
            elif by_device and c.kind == devices.IPUA:
                c.reason = "a device-id match takes precedence over IP+UA"
            else:
                c.reason = "a later click won (last click before the activation wins)"
        reason = f"matched by {winner.kind}"
    else:
        reason = "no click within any window: organic" if candidates else "no click under any of the device's keys"
    ordered = sorted(candidates, key=lambda c: -(c.click_at_ms or 0)) + notes
    return MatchResult(winner, ordered, reason)


@dataclass
class MatchExplanation:
    """Why an activation of a device at a moment is attributed, organic or a reinstall."""

    outcome: MatchOutcome
    reason: str
    winner: Candidate | None  # the click attributed (outcome attributed only)
    candidates: list[Candidate]  # newest first, each with its verdict and why
    links: list[TrackingLink]
    previous: Conversion | None  # the device's conversion within REINSTALL_DAYS (reinstall)
    test_device: TestDevice | None


def activation_explain(
    *, app_id: str, os: str | None, keys: dict[str, list[str]], activated_at: datetime
) -> MatchExplanation:
    """The matching decision, in one place: the matcher (services.activation_record)
    records it, the admin's device page shows it for an activation now."""
    test_device = test_device_matching(app_id=app_id, keys=keys)
    links = links_for(app_id=app_id, os=os)
    match = click_candidates(links=links, keys=keys, activated_ms=int(activated_at.timestamp() * 1000))
    previous = attributed_conversion(app_id=app_id, keys=keys, since=reinstall_since(activated_at))
    return activation_decide(match=match, links=links, previous=previous, test_device=test_device)


def reinstall_since(activated_at: datetime) -> datetime:
    """A device attributed since this moment is a reinstall, not a new install."""
    return activated_at - timedelta(days=REINSTALL_DAYS)


def activation_decide(
    *, match: MatchResult, links: list[TrackingLink], previous: Conversion | None, test_device: TestDevice | None
) -> MatchExplanation:
    """The outcome from what was read: a device attributed within REINSTALL_DAYS is a
    reinstall (the click that would have won is rejected), else the match's winner, else organic."""
    if previous is not None:
        reason = f"device already attributed to conversion {previous.pk} within {REINSTALL_DAYS} days"
        if match.winner is not None:
            match.winner.verdict = CandidateVerdict.REJECTED
            match.winner.reason = f"reinstall rule: {reason} · would have won: {match.winner.reason}"
        return MatchExplanation(MatchOutcome.REINSTALL, reason, None, match.candidates, links, previous, test_device)
    if match.winner is None:
        return MatchExplanation(MatchOutcome.ORGANIC, match.reason, None, match.candidates, links, None, test_device)
    return MatchExplanation(
        MatchOutcome.ATTRIBUTED, match.reason, match.winner, match.candidates, links, None, test_device
    )


def test_device_note(device: TestDevice) -> str:
    return f" · test device “{device.label}”: never posted back"


def device_conversions(*, app_id: str, keys: list[str], limit: int = 20) -> list[Conversion]:
    return list(Conversion.objects.filter(app_id=app_id, keys__key__in=keys).distinct()[:limit])


def device_traces(*, app_id: str, keys: list[str], limit: int = 20) -> list[MatchTrace]:
    return list(MatchTrace.objects.filter(app_id=app_id, conversion__keys__key__in=keys).distinct()[:limit])


def attributed_conversion(*, app_id: str, keys: dict[str, list[str]], since: datetime | None) -> Conversion | None:
    """The device's latest conversion for the app (by any device key, never IP+UA)."""
    flat = devices.flat_keys(keys)
    if not flat:
        return None
    rows = DeviceKey.objects.filter(app_id=app_id, key__in=flat)
    if since is not None:
        rows = rows.filter(activated_at__gte=since)
    return latest_conversion_among(list(rows.select_related("conversion")), app_id=app_id, keys=flat, since=since)


def latest_conversion_among(
    rows: list[DeviceKey], *, app_id: str, keys: list[str], since: datetime | None
) -> Conversion | None:
    """The conversion of the latest device-key row of `app_id` under `keys` activated at or
    after `since` (ties: the newer conversion). `rows` may hold other devices' rows (a batch's)."""
    wanted = set(keys)
    found = [
        row
        for row in rows
        if row.app_id == app_id and row.key in wanted and (since is None or row.activated_at >= since)
    ]
    if not found:
        return None
    return max(found, key=lambda row: (row.activated_at, row.conversion_id)).conversion


def conversion_for_event(*, app_id: str, keys: dict[str, list[str]], user_id: str | None) -> Conversion | None:
    """The conversion a registration or payment belongs to: the device's, else the user's."""
    conversion = attributed_conversion(app_id=app_id, keys=keys, since=None)
    if conversion is None and user_id:
        conversion = Conversion.objects.filter(app_id=app_id, user_id=user_id).order_by("-activated_at").first()
    return conversion


def pending_event_ids_with_conversion() -> list[int]:
    """Waiting events whose device key or user now has a conversion of their app, oldest first."""
    key_converted = Exists(DeviceKey.objects.filter(app_id=OuterRef("app_id"), key=OuterRef("key")))
    user_converted = Exists(Conversion.objects.filter(app_id=OuterRef("app_id"), user_id=OuterRef("user_id")))
    by_key = Q(pk__in=PendingEventKey.objects.filter(key_converted).values("event_id"))
    by_user = ~Q(user_id="") & Q(user_converted)
    waiting = PendingEvent.objects.filter(by_key | by_user, status=PendingEventStatus.PENDING).order_by(
        "created_at", "pk"
    )
    return list(waiting.values_list("pk", flat=True))


def test_device_matching(*, app_id: str, keys: dict[str, list[str]]) -> TestDevice | None:
    if not devices.flat_keys(keys):
        return None
    return test_device_among(list(TestDevice.objects.filter(Q(app_id="") | Q(app_id=app_id))), app_id=app_id, keys=keys)


def test_device_among(test_devices: list[TestDevice], *, app_id: str, keys: dict[str, list[str]]) -> TestDevice | None:
    """The first test device (the model's order, by label) of the app or of every app that
    shares a device key with the activation."""
    flat = set(devices.flat_keys(keys))
    if not flat:
        return None
    for device in test_devices:
        if device.app_id in ("", app_id) and flat.intersection(device.keys):
            return device
    return None


def link_click_stats(*, link_id: int, hours: int = 24, now: datetime | None = None) -> list[dict]:
    """Hourly counters of a link from Redis, newest first: [{"hour", "clicks", "os", ...}]."""
    now = now or timezone.now()
    buckets = [hour_bucket((now - timedelta(hours=h)).timestamp()) for h in range(hours)]
    pipe = get_redis().pipeline(transaction=False)
    for bucket in buckets:
        pipe.hgetall(stat_key(link_id, bucket))
    rows = []
    for bucket, data in zip(buckets, pipe.execute(), strict=True):
        counters = {k.decode(): int(v) for k, v in data.items()}
        rows.append({"hour": bucket, **counters})
    return rows
