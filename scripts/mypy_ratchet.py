"""Which lines of the mypy ratchet (pyproject.toml) can go: `.venv/bin/python scripts/mypy_ratchet.py`.

Runs mypy twice without the ratchet's overrides (once without the strict section, once
with it) and compares with the two lists: a module listed as "errors ignored" that
passes the basic checks can move to "not yet strict" or leave; a module listed as
"not yet strict" that passes strict can leave. Prints what to delete; changes nothing.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RATCHET_MARK = "# --- The ratchet"
STRICT_MARK = "# Strict where"
STUBS_MARK = "[tool.django-stubs]"


def _failing(config_text: str) -> set[str]:
    with tempfile.NamedTemporaryFile("w", suffix=".toml", dir=ROOT, delete=False) as config:
        config.write(config_text)
    try:
        result = subprocess.run(
            [str(ROOT / ".venv/bin/mypy"), "--config-file", config.name], cwd=ROOT, capture_output=True, text=True
        )
    finally:
        Path(config.name).unlink()
    modules = set()
    for line in result.stdout.splitlines():
        match = re.match(r"^([\w/]+)\.py:\d+: error", line)
        if match:
            modules.add(match.group(1).replace("/", ".").removesuffix(".__init__"))
    return modules


def main() -> int:
    text = (ROOT / "pyproject.toml").read_text()
    overrides = tomllib.loads(text)["tool"]["mypy"].get("overrides", [])
    ignored = {m for o in overrides if o.get("ignore_errors") for m in o["module"]}
    not_strict = {m for o in overrides if o.get("disallow_untyped_defs") is False for m in o["module"]}
    without = text[: text.index(RATCHET_MARK)] + text[text.index(STUBS_MARK) :]
    basic = without[: without.index(STRICT_MARK)] + without[without.index(STUBS_MARK) :]
    failing_basic, failing_strict = _failing(basic), _failing(without)
    for module in sorted(ignored - failing_basic):
        where = "move to 'not yet strict'" if module in failing_strict else "delete its line"
        print(f"{module}: passes the basic checks now: {where}")
    for module in sorted(not_strict - failing_strict):
        print(f"{module}: passes strict now: delete its line")
    unlisted = sorted(failing_strict - ignored - not_strict)
    for module in unlisted:
        print(f"{module}: FAILS and is not in the ratchet: fix it (`.venv/bin/mypy`)")
    return 1 if unlisted else 0


if __name__ == "__main__":
    sys.exit(main())
