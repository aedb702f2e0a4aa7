"""The test run stops the embedded Redis server it started (no orphan after `make test`)."""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEST = "tests/config/test_health.py::test_healthz_answers_without_touching_dependencies"
EMBEDDED_ENV = ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "EVENTS_BROKER_URL", "TEST_DATABASE_NAME")


def _servers_of(var_dir: Path) -> list[int]:
    """Pids of redis-server processes serving var_dir's socket."""
    sock = str(var_dir / "redis" / "redis.sock")
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        try:
            in_var_dir = (entry / "cwd").resolve() == var_dir / "redis"
        except OSError:
            in_var_dir = False
        if "redis-server" in cmdline and (sock in cmdline or in_var_dir):
            pids.append(int(entry.name))
    return pids


def _pytest_run(var_dir: Path) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key not in EMBEDDED_ENV}
    env["HUODONG_VAR_DIR"] = str(var_dir)
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # a lean run: pytest-django only
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "pytest_django.plugin", TEST],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_test_run_stops_the_embedded_redis_it_started():
    with tempfile.TemporaryDirectory(prefix="hd-") as tmp:  # short: a Unix socket path is limited
        var_dir = Path(tmp).resolve()
        try:
            result = _pytest_run(var_dir)
            assert result.returncode == 0, result.stdout + result.stderr
            assert (var_dir / "redis" / "redis.log").exists()  # it did start one
            assert _servers_of(var_dir) == []
        finally:
            for pid in _servers_of(var_dir):  # never leave one behind, even when failing
                os.kill(pid, 15)
