"""Production mode from the outside: the Procfile's web process (scripts/web.sh) starts
with DJANGO_ENV=production and no extra step, collects the static files and serves the
admin login page, its static files and the API docs (Swagger UI from our own origin,
no CDN), all under a Content-Security-Policy that forbids inline and outside scripts."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time

import pytest
import requests

from tests.config.test_settings import PRODUCTION_ENV, ROOT

HTTPS = {"X-Forwarded-Proto": "https"}  # as the TLS-terminating proxy says


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def production_site(tmp_path_factory):
    var_dir = tmp_path_factory.mktemp("production-var")
    port = _free_port()
    inherited = {
        k: v for k, v in os.environ.items() if k not in PRODUCTION_ENV and not k.endswith(("_BROKER_URL", "_URL"))
    }
    env = {
        **inherited,
        **PRODUCTION_ENV,
        # Nothing here needs the database or Redis: a local SQLite file, an unused Redis.
        "DATABASE_URL": f"sqlite:///{var_dir}/huodong.sqlite3",
        "REDIS_URL": "redis://127.0.0.1:9/0",
        "CELERY_BROKER_URL": "redis://127.0.0.1:9/1",
        "HUODONG_VAR_DIR": str(var_dir),
        "ALLOWED_HOSTS": "127.0.0.1",
        "PORT": str(port),
        "WEB_CONCURRENCY": "1",
    }
    log = (var_dir / "web.log").open("w")
    process = subprocess.Popen(
        ["bash", "scripts/web.sh"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None:
                pytest.fail("the production web process exited:\n" + (var_dir / "web.log").read_text()[-3000:])
            try:
                requests.get(base + "/healthz", headers=HTTPS, timeout=10)
                break
            except requests.RequestException:
                if time.monotonic() > deadline:
                    pytest.fail("the production web process did not start:\n" + (var_dir / "web.log").read_text())
                time.sleep(0.2)
        yield base
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        log.close()


def _script_policy(response) -> str:
    policy = response.headers["Content-Security-Policy"]
    return next(part.strip() for part in policy.split(";") if part.strip().startswith("script-src"))


def test_the_admin_login_page_and_its_static_files_serve_in_production(production_site):
    page = requests.get(production_site + "/admin/login/", headers=HTTPS, timeout=10)
    assert page.status_code == 200, page.text[:500]
    assert "Huodong" in page.text
    stylesheets = re.findall(r'href="(/static/admin/css/[^"]+\.css)"', page.text)
    assert stylesheets and all(re.search(r"\.[0-9a-f]{12}\.css$", url) for url in stylesheets), stylesheets
    css = requests.get(production_site + stylesheets[0], headers=HTTPS, timeout=10)
    assert css.status_code == 200 and css.headers["Content-Type"].startswith("text/css")
    assert "max-age" in css.headers.get("Cache-Control", "")


def test_pages_carry_a_policy_forbidding_inline_and_outside_scripts(production_site):
    for path in ("/admin/login/", "/api/docs/", "/"):
        response = requests.get(production_site + path, headers=HTTPS, timeout=10)
        assert response.status_code == 200, (path, response.status_code)
        script_src = _script_policy(response)
        assert script_src.split()[1:] == ["'self'"], (path, script_src)
        assert "object-src 'none'" in response.headers["Content-Security-Policy"]


def test_api_docs_load_only_from_our_own_origin(production_site):
    page = requests.get(production_site + "/api/docs/", headers=HTTPS, timeout=10)
    assert page.status_code == 200
    assert "<script>" not in page.text  # no inline script: the init script is its own URL
    references = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert references, page.text
    for url in references:
        assert url.startswith("/") and not url.startswith("//"), f"{url} is not on our origin"
        asset = requests.get(production_site + url.replace("&amp;", "&"), headers=HTTPS, timeout=10)
        assert asset.status_code == 200, (url, asset.status_code)
    assert any("swagger-ui-bundle" in url for url in references)
