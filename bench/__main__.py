"""`make bench [ONLY=name]`: run benchmarks and record their figures.

Each benchmark is a module `bench/<name>.py` with `run() -> dict[str, dict]`,
mapping metric names (`<name>.<metric>`) to
`{"value": float, "unit": str, "baseline": float | None}`. The runner adds
`ratio` (value / baseline), merges into var/bench/results.json and prints a table.
Benchmarks set up their own data (a fresh test database; see bench/support.py).
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "var" / "bench" / "results.json"


def discover() -> list[str]:
    return sorted(
        m.name
        for m in pkgutil.iter_modules([str(Path(__file__).parent)])
        if m.name != "support" and not m.name.startswith("_")
    )


def main(argv: list[str]) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from core.boot import process_prepare

    process_prepare()  # folders under var/, the embedded Redis when REDIS_URL is unset
    names = [a for a in argv if a] or discover()
    unknown = sorted(set(names) - set(discover()))
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; available: {', '.join(discover())}")
        return 2
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    fresh: dict[str, dict] = {}
    for name in names:
        print(f"--- bench {name}", flush=True)
        started = time.monotonic()
        module = importlib.import_module(f"bench.{name}")
        figures = module.run()
        for metric, figure in figures.items():
            baseline = figure.get("baseline")
            figure["ratio"] = round(figure["value"] / baseline, 4) if baseline else None
            figure["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            fresh[metric] = figure
        print(f"    ({time.monotonic() - started:.1f}s)")
    results.update(fresh)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, sort_keys=True))
    print(f"\n{'metric':40} {'value':>14} {'unit':10} {'baseline':>14} {'ratio':>8}")
    for metric, f in sorted(fresh.items()):
        base = "" if f.get("baseline") is None else f"{f['baseline']:.4g}"
        ratio = "" if f.get("ratio") is None else f"{f['ratio']:.3f}"
        print(f"{metric:40} {f['value']:>14.4g} {f['unit']:10} {base:>14} {ratio:>8}")
    print(f"\nwritten to {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
