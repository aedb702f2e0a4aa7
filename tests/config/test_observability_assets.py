"""The shipped Grafana dashboard and Prometheus alert rules parse and name only
metrics that core/metrics.py defines."""

import json
import re
from pathlib import Path

import yaml
from prometheus_client import Counter, Histogram

from core import metrics

ROOT = Path(__file__).resolve().parents[2]


def _known() -> set[str]:
    names = set()
    for value in vars(metrics).values():
        if isinstance(value, Histogram):
            names |= {value._name + suffix for suffix in ("_bucket", "_count", "_sum")}
        elif isinstance(value, Counter):
            names.add(value._name + "_total")
    return names


def _used(text: str) -> set[str]:
    return set(re.findall(r"\bhuodong_[a-z_]+", text))


def test_alert_rules_parse_and_use_only_defined_metrics():
    rules = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())
    exprs = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    assert len(exprs) >= 10 and all(rule.get("alert") for group in rules["groups"] for rule in group["rules"])
    used = set().union(*(_used(e) for e in exprs))
    assert used and used <= _known(), used - _known()


def test_dashboard_parses_and_uses_only_defined_metrics():
    dashboard = json.loads((ROOT / "deploy/grafana/huodong-pipeline.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    used = set().union(*(_used(e) for e in exprs))
    assert used <= _known(), used - _known()
    # every metric has a panel
    counters = {n for n in _known() if n.endswith("_total")}
    histograms = {n.removesuffix("_bucket") for n in _known() if n.endswith("_bucket")}
    assert counters <= used, counters - used
    assert all(f"{h}_bucket" in used or f"{h}_count" in used for h in histograms)
