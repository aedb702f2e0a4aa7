"""`traffic_check`: every detector once (as of `at`), findings fired as alerts
(deduplicated by fingerprint), alerts whose condition is gone resolved."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from alerts import detectors, services
from alerts.models import FraudRuleKind

FRAUD_RULES = tuple(f"fraud.{kind}" for kind in FraudRuleKind.values)


def traffic_check(
    *, at: datetime | None = None, only: list[str] | None = None, fire: bool = True
) -> list[detectors.Finding]:
    at = at or timezone.now()
    with detectors.one_read_per_window():
        return _check(at=at, only=only, fire=fire)


def _check(*, at: datetime, only: list[str] | None, fire: bool) -> list[detectors.Finding]:
    findings: list[detectors.Finding] = []
    for name, detector in detectors.DETECTORS.items():
        if only and name not in only:
            continue
        params = detectors.rule_params(name)
        found = detector(at=at, params=params) if params is not None else []
        findings.extend(found)
        if not fire:
            continue
        for finding in found:
            services.alert_fire(
                detection=services.Detection(
                    rule=finding.rule,
                    fingerprint=finding.fingerprint,
                    severity=finding.severity,
                    title=finding.title,
                    text=finding.text,
                    labels=finding.labels,
                    value=finding.value,
                    baseline=finding.baseline,
                    url=finding.url,
                ),
                now=at,
            )
        firing = {f.fingerprint for f in found}
        for rule in FRAUD_RULES if name == "fraud_installs" else (name,):
            services.alerts_reconcile(rule=rule, firing=firing, now=at)
    return findings
