"""Attribution benchmark.

- `attribution.clicks_per_s`: click callbacks per second through gunicorn (the
  Procfile's 2 workers x 4 threads), driven by `wrk` on loopback with a fresh device
  id per request; baseline: a minimal WSGI app in the same gunicorn setup doing the
  same Redis write (the click's Lua script with the same arguments), side by side in
  interleaved rounds, the median round of each reported.
- `attribution.clicks_per_s_traced` (`attribution.click_p99_ms_traced`): the same
  click door with tracing on (OTLP export to a loopback sink, the default sampled
  share of clicks, TRACING_CLICK_SAMPLE_RATIO); baseline: `attribution.clicks_per_s`
  (tracing off) of the same interleaved rounds.
- `attribution.click_p50_ms`, `attribution.click_p99_ms`: wrk's latency percentiles
  of that run (baseline: the minimal app's).
- `attribution.activations_per_s`: app.activated events matched per second by one
  event consumer (the worker's own, on EVENTS_BROKER_URL, with its batch settings)
  draining a queued backlog of ACTIVATIONS, each matching a click stored in Redis;
  baseline: the same consumer draining the same number of no-op events of the same
  bodies and contract (bench/_events.py), in interleaved rounds (the round with the median ratio);
  app.activated has a batch handler (`activations_record_many`), so `noop_like` gives
  the no-op type a no-op batch handler: both go the consumer's batch-handler path.
  The entry also records both rates one event per transaction (`one_by_one`).
  `BENCH_ATTRIBUTION_ONLY=activations` runs this figure alone (no wrk rounds).

wrk is Debian's package, installed by apt-get when missing (needs root).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DURATION_S = int(os.environ.get("BENCH_ATTRIBUTION_SECONDS", "5"))
ROUNDS = int(os.environ.get("BENCH_ATTRIBUTION_ROUNDS", "3"))
CONNECTIONS = 32
# Events per drain: 2,000 (was 400). At 1,000-4,000 events/s a drain of 400 lasted
# 0.1-0.4 s, and the consumer's start (first fetch, prefetch filling) weighed on the
# no-op side most: single rounds ranged 0.23-0.96 at the same load. A backlog of
# 2,000 measures the steady drain a real backlog is (rounds 0.50, 0.50, 0.34 at load 2).
ACTIVATIONS = int(os.environ.get("BENCH_ATTRIBUTION_ACTIVATIONS", "2000"))
ONE_BY_ONE = min(ACTIVATIONS, 400)  # the one-event-per-transaction rates beside it (slower: fewer events)

# --- the baseline WSGI app (imported by gunicorn as bench.attribution:baseline_app) --
_baseline = {}


def baseline_app(environ, start_response):
    """The floor: the same Lua script with the same kind of arguments, nothing else."""
    if not _baseline:
        import redis

        from attribution.clicks import _SCRIPT

        client = redis.Redis.from_url(os.environ["REDIS_URL"], socket_timeout=2)
        _baseline["script"] = client.register_script(_SCRIPT)
        _baseline["token"] = os.environ["BENCH_LINK_TOKEN"]
        _baseline["prefix"] = os.environ["ATTRIBUTION_REDIS_PREFIX"]
    query = environ.get("QUERY_STRING", "")
    now = time.time()
    device = query.rsplit("=", 1)[-1]
    record = json.dumps({"id": uuid.uuid4().hex[:20], "at": int(now * 1000), "cb": "x", "ua": "bench"})
    _baseline["script"](
        keys=[f"{_baseline['prefix']}:link:{_baseline['token']}"],
        args=[
            _baseline["token"],
            "oceanengine",
            int(now * 1000),
            "127.0.0.1",
            10**9,
            time.strftime("%Y%m%d%H", time.gmtime(now)),
            record,
            "ios",
            _baseline["prefix"],
            "",  # no reject reason decided before the script (the click's layout)
            "",  # no ad ids
            "",  # no source-range counter: the bare floor (the click door counts its /24)
            "idfa",
            device,
            "ipua",
            device,
        ],
    )
    body = b'{"code": 0}'
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


# --- helpers -----------------------------------------------------------------------
def _ensure_wrk() -> str:
    path = shutil.which("wrk")
    if path:
        return path
    subprocess.run(["apt-get", "install", "-y", "wrk"], check=True, stdout=subprocess.DEVNULL)
    path = shutil.which("wrk")
    if not path:
        raise RuntimeError("wrk could not be installed (apt-get install wrk needs root)")
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_gunicorn(app: str, port: int, env: dict) -> subprocess.Popen:
    proc = subprocess.Popen(
        [
            str(ROOT / ".venv/bin/gunicorn"),
            app,
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "--threads",
            "4",
            "--log-level",
            "warning",
            "--backlog",
            "2048",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"gunicorn {app} did not start")


_WRK_SCRIPT = """
local counter = 0
local prefix = "%s"
request = function()
  counter = counter + 1
  local idfa = string.format("%%08X-0000-4000-8000-%%012d", math.random(0, 2147483647), counter)
  return wrk.format("GET", prefix .. idfa)
end
"""


def _wrk(wrk: str, url: str, path_prefix: str, *, warm_up: bool) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_WRK_SCRIPT % path_prefix)
    try:
        if warm_up:
            subprocess.run([wrk, "-t2", "-c8", "-d2s", "-s", script.name, url], check=True, capture_output=True)
        out = subprocess.run(
            [wrk, "-t2", f"-c{CONNECTIONS}", f"-d{DURATION_S}s", "--latency", "-s", script.name, url],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    finally:
        os.unlink(script.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    return {
        "rps": rps,
        "p50": _ms(re.search(r"50%\s+([\d.]+\w+)", out).group(1)),
        "p99": _ms(re.search(r"99%\s+([\d.]+\w+)", out).group(1)),
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": errors.group(0) if errors else "",
    }


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


# --- the benchmark -------------------------------------------------------------------
def run() -> dict[str, dict]:
    from bench import _events
    from bench.support import bench_database, figure

    _events.use_own_queues()
    only_events = os.environ.get("BENCH_ATTRIBUTION_ONLY") == "activations"
    wrk = None if only_events else _ensure_wrk()
    with bench_database():
        from django.conf import settings

        from attribution import services
        from core.redis import get_redis

        # The configured Redis, under a key prefix of this run only (never a flush:
        # other suites may share the server), removed at the end.
        redis_url = settings.REDIS_URL
        key_prefix = f"bench-{uuid.uuid4().hex[:8]}:att"
        settings.ATTRIBUTION_REDIS_PREFIX = key_prefix
        settings.ATTRIBUTION_CLICK_RATE_PER_IP = 10**9
        client = get_redis()
        link = services.tracking_link_create(
            platform="oceanengine",
            app_id="com.bench.app",
            os="ios",
            campaign_name="bench",
            rate_limit_per_second=10**9,
            postback_activate=False,
        )
        services.tracking_link_sync(link=link)
        env = {
            **os.environ,
            "REDIS_URL": redis_url,
            "ATTRIBUTION_CLICK_RATE_PER_IP": str(10**9),
            "BENCH_LINK_TOKEN": link.token,
            "ATTRIBUTION_REDIS_PREFIX": key_prefix,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "PYTHONPATH": str(ROOT),
        }
        query = "ip=203.0.113.7&ua=Mozilla%2F5.0%20(iPhone)&callback=EJiw267wvfQCGKf2g74&os=1&ts=1764210902123&idfa="
        prefix = f"/t/oceanengine/{link.token}?{query}"
        try:
            runs = {} if only_events else _click_rounds(wrk, env, prefix)
            rejected = sum(r["non2xx"] for r in runs.get("click", []))
            if rejected:
                print(f"    WARNING: {rejected} click(s) were not accepted", file=sys.stderr)
            activations = _activations(link)
        finally:
            for key in client.scan_iter(match=f"{key_prefix}:*", count=1000):
                client.delete(key)
            _events.delete_queues()
    activations_figure = figure(
        activations["value"],
        "events/s",
        activations["baseline"],
        events=ACTIVATIONS,
        batch_size=activations["batch_size"],
        load_average=activations["load_average"],
        one_by_one=activations["one_by_one"],
    )
    if only_events:
        return {"attribution.activations_per_s": activations_figure}
    results = {name: sorted(r, key=lambda x: x["rps"])[len(r) // 2] for name, r in runs.items()}
    base, click, traced = results["baseline"], results["click"], results["click_traced"]
    return {
        "attribution.clicks_per_s": figure(click["rps"], "req/s", base["rps"]),
        "attribution.clicks_per_s_traced": figure(traced["rps"], "req/s", click["rps"]),
        "attribution.click_p99_ms_traced": figure(traced["p99"], "ms", click["p99"]),
        "attribution.click_p50_ms": figure(click["p50"], "ms", base["p50"]),
        "attribution.click_p99_ms": figure(click["p99"], "ms", base["p99"]),
        "attribution.activations_per_s": activations_figure,
    }


def _until_answering(url: str, timeout: float = 180.0) -> None:
    """Wait until the server's workers have booted (Django's start-up is slow on a
    loaded machine): several answers in a row, so that both workers are up."""
    import urllib.request

    deadline, answered = time.monotonic() + timeout, 0
    while answered < 8:
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                answered = answered + 1 if response.status == 200 else 0
        except OSError:
            answered = 0
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not answer") from None
            time.sleep(0.2)


class _OtlpSink:
    """A loopback OTLP/HTTP receiver (the collector's part): answers 200 to each
    export and counts the requests and bytes it got."""

    def __init__(self):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        sink = self
        self.requests = self.bytes = 0

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                sink.requests, sink.bytes = sink.requests + 1, sink.bytes + len(body)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def _click_rounds(wrk: str, env: dict, prefix: str) -> dict[str, list[dict]]:
    """The apps under gunicorn; interleaved rounds so that load from elsewhere on the
    machine hits them alike (the median round of each is reported). `click_traced` is
    the click door with tracing on (OTLP export to a loopback sink, the default
    TRACING_CLICK_SAMPLE_RATIO sampling)."""
    apps = {
        "baseline": "bench.attribution:baseline_app",
        "click": "config.wsgi:application",
        "click_traced": "config.wsgi:application",
    }
    servers: dict[str, tuple[subprocess.Popen, int]] = {}
    runs: dict[str, list[dict]] = {name: [] for name in apps}
    sink = _OtlpSink()
    metrics_dir = tempfile.mkdtemp(prefix="bench-prometheus-")
    env = {**env, "PROMETHEUS_MULTIPROC_DIR": metrics_dir, "OTEL_TRACES_EXPORTER": "none"}
    traced = {**env, "OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": sink.url}
    try:
        for name, app in apps.items():
            port = _free_port()
            servers[name] = (_start_gunicorn(app, port, traced if name == "click_traced" else env), port)
        for _, port in servers.values():
            _until_answering(f"http://127.0.0.1:{port}{prefix}READY")
        names = list(apps)
        for round_ in range(ROUNDS):
            # each round starts with the next app, so that no app always runs after
            # the others (Redis grows by every click stored)
            for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
                result = _wrk(wrk, f"http://127.0.0.1:{servers[name][1]}", prefix, warm_up=round_ == 0)
                runs[name].append(result)
                print(f"    round {round_ + 1} {name}: {result}", flush=True)
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait(timeout=15)
        sink.close()
        shutil.rmtree(metrics_dir, ignore_errors=True)
    print(f"    OTLP sink received {sink.requests} export(s), {sink.bytes} bytes", flush=True)
    return runs


def _activation_bodies(link, count: int) -> list[bytes]:
    """`count` app.activated bodies, each matching a click stored now for its device."""
    from attribution.clicks import click_handle

    devices_ = [str(uuid.uuid4()).upper() for _ in range(count)]
    for idfa in devices_:
        status, _ = click_handle(
            platform="oceanengine",
            token=link.token,
            query=f"idfa={idfa}&ip=203.0.113.7&ua=UA&callback=cb&os=1",
            source_ip="127.0.0.1",
        )
        assert status == 200, status
    occurred = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() + 5))
    return [
        json.dumps(
            {
                "event_id": str(uuid.uuid4()),
                "type": "app.activated",
                "occurred_at": occurred,
                "app_id": "com.bench.app",
                "os": "ios",
                "user_id": f"{i:08d}",
                "device": {"idfa": idfa},
                "ip": "198.51.100.1",
                "ua": "app",
            }
        ).encode()
        for i, idfa in enumerate(devices_)
    ]


def _activations(link) -> dict:
    """Interleaved rounds of activations and no-op events through one consumer."""
    from attribution.models import Conversion
    from bench import _events

    def activations(batch_size=None, count=ACTIVATIONS) -> float:
        bodies = _activation_bodies(link, count)
        before = Conversion.objects.filter(link=link).count()
        rate = _events.drain("user_center", "app.activated", bodies, batch_size=batch_size)
        assert Conversion.objects.filter(link=link).count() - before == count
        return rate

    def noop(batch_size=None, count=ACTIVATIONS) -> float:
        return _events.drain("user_center", _events.NOOP, _activation_bodies(link, count), batch_size=batch_size)

    load_before = _events.load_average()
    print(f"    load average before: {load_before}", flush=True)
    with _events.noop_like("app.activated"):  # a no-op batch handler too: the same consumer path
        value, base, _ = _events.interleaved(activations, noop, label="activations")
        one_value, one_base, _ = _events.interleaved(
            lambda: activations(1, ONE_BY_ONE), lambda: noop(1, ONE_BY_ONE), rounds=1, label="activations one by one"
        )
    load_after = _events.load_average()
    print(f"    load average after: {load_after}", flush=True)
    from django.conf import settings

    return {
        "value": value,
        "baseline": base,
        "batch_size": settings.EVENTS_BATCH_SIZE,
        "load_average": f"{load_before} -> {load_after}",
        "one_by_one": {"value": round(one_value, 2), "baseline": round(one_base, 2)},
    }
