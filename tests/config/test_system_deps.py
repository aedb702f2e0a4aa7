"""scripts/ensure-system-deps.sh: no apt at all when nothing is missing; otherwise it
waits (bounded) for another apt/dpkg's lock. apt-get is a recording stand-in here."""

import fcntl
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MISSING = "huodong-test-not-a-package"


@pytest.fixture
def apt(tmp_path):
    """A PATH whose apt-get (and sudo) only record their arguments."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "apt.log"
    for name in ("apt-get", "sudo"):
        tool = bin_dir / name
        tool.write_text(f'#!/bin/sh\necho "{name} $*" >> {log}\n' + ('exec "$@"\n' if name == "sudo" else ""))
        tool.chmod(0o755)
    lock = tmp_path / "lock-frontend"
    lock.write_text("")
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "APT_LOCK_FILES": str(lock)}
    env.pop("WITH_BROWSER", None)
    return env, log, lock


def _run(env: dict, **extra) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(ROOT / "scripts" / "ensure-system-deps.sh")],
        env={**env, **extra},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_nothing_missing_means_apt_is_never_run(apt):
    env, log, _ = apt
    result = _run(env)
    assert result.returncode == 0, result.stderr
    assert not log.exists()


def test_a_held_apt_lock_is_waited_for_and_then_apt_runs(apt):
    env, log, lock = apt
    with open(lock, "r+") as held:
        fcntl.lockf(held, fcntl.LOCK_EX)  # as apt/dpkg hold it
        script = subprocess.Popen(
            ["bash", str(ROOT / "scripts" / "ensure-system-deps.sh")],
            env={**env, "HUODONG_EXTRA_SYSTEM_PACKAGES": MISSING, "APT_LOCK_TIMEOUT": "60"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        # Release the lock only once the script says it is waiting for it (however slow
        # the machine is), so the wait is always observed.
        first_line = script.stdout.readline()
        fcntl.lockf(held, fcntl.LOCK_UN)
        _, stderr = script.communicate(timeout=60)
    assert script.returncode == 0, stderr
    assert "waiting for another apt/dpkg to finish" in first_line
    calls = log.read_text().splitlines()
    assert any("update" in call for call in calls)
    install = [call for call in calls if call.startswith("apt-get") and " install " in call]
    assert len(install) == 1 and MISSING in install[0] and "DPkg::Lock::Timeout=" in install[0]


def test_a_lock_held_past_the_time_out_fails_clearly_without_running_apt(apt):
    env, log, lock = apt
    with open(lock, "r+") as held:
        fcntl.lockf(held, fcntl.LOCK_EX)
        result = _run(env, HUODONG_EXTRA_SYSTEM_PACKAGES=MISSING, APT_LOCK_TIMEOUT="1")
    assert result.returncode != 0
    assert "apt/dpkg is busy" in result.stderr and MISSING in result.stderr
    assert not log.exists()
