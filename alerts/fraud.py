"""Fraud rules judged at attribution time (called from attribution's matching
service on each attributed install).

- click injection: the install came less than `min_ctit_seconds` (default 10 s)
  after its click: a malicious app saw the install starting and fired a click.
- click flooding: the winning device clicked far more often than a person would
  (`max_clicks_per_device`, default 20 clicks on the device key before the install),
  or the install came after the long tail (`long_tail_seconds`, default 24 h) on a
  link whose click-to-install rate over the last day is below `min_install_rate`
  (default 0.001); the link-level picture is watched by the `click_flooding` detector.
- deny list: the click's (or, without one, the activation's) source address is in a
  CIDR range of `cidrs` (data centres, known farms).

Each rule's mode (off / flag / reject) is per app with an app-less default row;
without any row the defaults are injection and flooding "flag", deny list "reject".
Every change goes through `fraud_rule_set`, which writes the audit row."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from alerts.models import FRAUD_DEFAULT_MODES, FraudMode, FraudRule, FraudRuleChange, FraudRuleKind
from core.errors import DomainError

DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    FraudRuleKind.INJECTION: {"min_ctit_seconds": 10},
    FraudRuleKind.FLOODING: {"max_clicks_per_device": 20, "long_tail_seconds": 86400, "min_install_rate": 0.001},
    FraudRuleKind.DENYLIST: {"cidrs": []},
}
_CACHE_KEY = "alerts:fraud-rules:v1"


@dataclass(frozen=True)
class FraudVerdict:
    rule: str
    mode: str  # flag | reject
    reason: str


def _params_clean(kind: str, params: dict[str, Any]) -> dict[str, Any]:
    merged = {**DEFAULT_PARAMS[kind], **(params or {})}
    unknown = set(merged) - set(DEFAULT_PARAMS[kind])
    if unknown:
        raise DomainError(
            _("unknown parameters for %(kind)s: %(names)s") % {"kind": kind, "names": ", ".join(sorted(unknown))},
            code="invalid",
        )
    if kind == FraudRuleKind.DENYLIST:
        cidrs = merged["cidrs"]
        if isinstance(cidrs, str):
            cidrs = [c.strip() for c in cidrs.replace("\n", ",").split(",") if c.strip()]
        try:
            merged["cidrs"] = [str(ipaddress.ip_network(c, strict=False)) for c in cidrs]
        except (ValueError, TypeError) as exc:
            raise DomainError(_("not a CIDR range: %(error)s") % {"error": exc}, code="invalid") from exc
    else:
        for name, value in merged.items():
            if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                raise DomainError(_("%(name)s must be a number >= 0") % {"name": name}, code="invalid")
    return merged


@transaction.atomic
def fraud_rule_set(
    *,
    kind: str,
    app_id: str = "",
    mode: str,
    params: dict[str, Any] | None = None,
    user: User | AnonymousUser | None = None,
) -> FraudRule:
    """Create or change a fraud rule; audited (who, when, before, after)."""
    if kind not in FraudRuleKind.values:
        raise DomainError(_("unknown fraud rule %(kind)s") % {"kind": repr(kind)}, code="invalid")
    if mode not in FraudMode.values:
        raise DomainError(_("unknown mode %(mode)s") % {"mode": repr(mode)}, code="invalid")
    clean = _params_clean(kind, params or {})
    now = timezone.now()
    rule = FraudRule.objects.select_for_update().filter(kind=kind, app_id=app_id).first()
    before = {"mode": rule.mode, "params": rule.params} if rule else {}
    if rule is None:
        rule = FraudRule.objects.create(kind=kind, app_id=app_id, mode=mode, params=clean, updated_at=now)
    else:
        rule.mode, rule.params, rule.updated_at = mode, clean, now
        rule.save(update_fields=["mode", "params", "updated_at"])
    FraudRuleChange.objects.create(
        rule=rule,
        kind=kind,
        app_id=app_id,
        changed_by=user if isinstance(user, User) and user.pk else None,
        changed_at=now,
        before=before,
        after={"mode": mode, "params": clean},
    )
    cache.delete(_CACHE_KEY)  # now (this transaction reads its own change) and after commit (others)
    transaction.on_commit(lambda: cache.delete(_CACHE_KEY))
    return rule


FraudRules = dict[tuple[str, str], tuple[str, dict[str, Any]]]


def fraud_rules() -> FraudRules:
    """Every fraud rule by (kind, app id): one cache read (the rows, on a miss). A batch of
    activations reads it once and passes it to each `fraud_judge`."""
    rules = cache.get(_CACHE_KEY)
    if rules is None:
        rules = {(r.kind, r.app_id): (r.mode, r.params) for r in FraudRule.objects.all()}
        cache.set(_CACHE_KEY, rules, 60)
    return rules


def fraud_rule_effective(*, kind: str, app_id: str, rules: FraudRules | None = None) -> tuple[str, dict[str, Any]]:
    rules = fraud_rules() if rules is None else rules
    mode, params = rules.get((kind, app_id)) or rules.get((kind, "")) or (FRAUD_DEFAULT_MODES[kind], {})
    return mode, {**DEFAULT_PARAMS[kind], **params}


def _in_ranges(ip: str, cidrs: list[str]) -> str | None:
    try:
        address = ipaddress.ip_address((ip or "").strip())
    except ValueError:
        return None
    for cidr in cidrs:
        network = ipaddress.ip_network(cidr, strict=False)
        if address.version == network.version and address in network:
            return cidr
    return None


LINK_RATE_HOURS = 24
LINK_RATE_MIN_CLICKS = 1000  # fewer clicks in a day: too little to call a link's rate low


def link_install_rate_of(*, link_id: int) -> float | None:
    """Installs ÷ clicks of a link over the last day (hourly rollups), None with
    fewer than LINK_RATE_MIN_CLICKS clicks; cached five minutes per link."""
    from django.db.models import Sum

    from analytics.models import LinkRollup

    key = f"alerts:link-install-rate:{link_id}"
    cached = cache.get(key)
    if cached is not None:
        return cached if cached >= 0 else None
    since = timezone.now() - timedelta(hours=LINK_RATE_HOURS)
    sums = LinkRollup.objects.filter(link_id=link_id, bucket_minutes=60, bucket_start__gte=since).aggregate(
        c=Sum("clicks"), a=Sum("attributed")
    )
    clicks = sums["c"] or 0
    rate = (sums["a"] or 0) / clicks if clicks >= LINK_RATE_MIN_CLICKS else None
    cache.set(key, -1.0 if rate is None else rate, 300)
    return rate


def fraud_judge(
    *,
    app_id: str,
    ctit_seconds: int,
    click_ip: str,
    activation_ip: str,
    clicks_on_key: int,
    link_install_rate: float | None = None,
    link_id: int | None = None,
    rules: FraudRules | None = None,
) -> FraudVerdict | None:
    """The strongest verdict of the rules that hit (reject beats flag), or None.
    With `link_id`, an install past the long tail looks up its link's click-to-install
    rate (`link_install_rate_of`) for the flooding rule. `rules` (`fraud_rules()`) is
    read once here when not given."""
    rules = fraud_rules() if rules is None else rules
    verdicts: list[FraudVerdict] = []
    mode, p = fraud_rule_effective(kind=FraudRuleKind.DENYLIST, app_id=app_id, rules=rules)
    if mode != FraudMode.OFF and p["cidrs"]:
        for label, ip in (("click", click_ip), ("activation", activation_ip)):
            hit = _in_ranges(ip, p["cidrs"])
            if hit:
                verdicts.append(FraudVerdict("denylist", mode, f"{label} address {ip} in deny-listed range {hit}"))
                break
    mode, p = fraud_rule_effective(kind=FraudRuleKind.INJECTION, app_id=app_id, rules=rules)
    if mode != FraudMode.OFF and ctit_seconds < p["min_ctit_seconds"]:
        verdicts.append(
            FraudVerdict(
                "injection", mode, f"click-to-install {ctit_seconds} s < {p['min_ctit_seconds']} s (click injection)"
            )
        )
    mode, p = fraud_rule_effective(kind=FraudRuleKind.FLOODING, app_id=app_id, rules=rules)
    if mode != FraudMode.OFF:
        if clicks_on_key > p["max_clicks_per_device"]:
            verdicts.append(
                FraudVerdict(
                    "flooding",
                    mode,
                    f"the device clicked {clicks_on_key} times before installing (> {p['max_clicks_per_device']})",
                )
            )
        else:
            rate = link_install_rate
            if rate is None and link_id is not None and ctit_seconds > p["long_tail_seconds"]:
                rate = link_install_rate_of(link_id=link_id)
            if ctit_seconds > p["long_tail_seconds"] and rate is not None and rate < p["min_install_rate"]:
                verdicts.append(
                    FraudVerdict(
                        "flooding",
                        mode,
                        f"install {ctit_seconds // 3600} h after the click on a link converting "
                        f"{rate:.4%} of clicks (< {p['min_install_rate']:.2%})",
                    )
                )
    if not verdicts:
        return None
    verdicts.sort(key=lambda v: v.mode != FraudMode.REJECT)
    return verdicts[0]


def moment_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)
