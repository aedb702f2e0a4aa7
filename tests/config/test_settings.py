"""Configuration from the environment: typed helpers, and production's refusal
of insecure defaults (run as real `manage.py` processes)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_choice, env_int, env_list

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_ENV = {
    "DJANGO_ENV": "production",
    "SECRET_KEY": "k" * 20 + "-production-secret-from-the-vault-0123456789",
    "DEBUG": "0",
    "ALLOWED_HOSTS": "huodong.example.com",
    "SITE_URL": "https://huodong.example.com",
    "DATABASE_URL": "mysql://huodong:pw@db.internal:3306/huodong",
    "REDIS_URL": "redis://cache.internal:6379/0",
    "CELERY_BROKER_URL": "amqp://huodong:pw@mq.internal:5672//",
    "USER_TOKEN_SECRET": "user-center-shared-secret-0123456789abcdef",
    "PAYMENT_SECRET": "payment-shared-secret-0123456789abcdef",
    "PAYMENT_SERVICE_URL": "https://pay.internal",
    "SERVICE_TOKEN": "order-system-token-0123456789abcdef",
    "AD_SECRETS_KEY": "cHJvZHVjdGlvbi1hZC1zZWNyZXRzLWtleS0zMmJ5dGU=",
    "METRICS_TOKEN": "prometheus-scrape-token-0123456789",
}


def _manage(*args: str, env: dict) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in PRODUCTION_ENV and not k.endswith("_BROKER_URL")}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_with_real_secrets_passes_check_deploy():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize(
    "unset, named",
    [
        ("SECRET_KEY", "SECRET_KEY"),
        ("DATABASE_URL", "DATABASE_URL: the embedded SQLite database is not for production"),
        ("REDIS_URL", "REDIS_URL: the embedded Redis is not for production"),
        ("USER_TOKEN_SECRET", "USER_TOKEN_SECRET"),
        ("PAYMENT_SERVICE_URL", "PAYMENT_SERVICE_URL"),
        ("AD_SECRETS_KEY", "AD_SECRETS_KEY"),
        ("METRICS_TOKEN", "METRICS_TOKEN"),
    ],
)
def test_production_refuses_an_insecure_default_and_names_the_variable(unset, named):
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != unset}
    result = _manage("check", env=env)
    assert result.returncode != 0
    assert "refuses insecure defaults" in result.stderr
    assert named in result.stderr


@pytest.mark.parametrize("name", ["SECRET_KEY", "USER_TOKEN_SECRET", "PAYMENT_SECRET", "SERVICE_TOKEN"])
def test_production_refuses_a_short_secret_and_names_it(name):
    result = _manage("check", env={**PRODUCTION_ENV, name: "s" * 31})
    assert result.returncode != 0
    assert f"{name}: " in result.stderr and "characters" in result.stderr


def test_production_refuses_debug_on():
    result = _manage("check", env={**PRODUCTION_ENV, "DEBUG": "1"})
    assert result.returncode != 0 and "DEBUG" in result.stderr


def test_bad_typed_value_fails_loudly():
    result = _manage("check", env={"DEBUG": "maybe"})
    assert result.returncode != 0 and "DEBUG='maybe' is not a boolean" in result.stderr


def test_env_helpers_parse_and_refuse(monkeypatch):
    monkeypatch.setenv("X_INT", "12")
    monkeypatch.setenv("X_BOOL", "yes")
    monkeypatch.setenv("X_LIST", "a, b,,c")
    assert env_int("X_INT", 0) == 12
    assert env_bool("X_BOOL") is True
    assert env_list("X_LIST", []) == ["a", "b", "c"]
    monkeypatch.setenv("X_INT", "twelve")
    with pytest.raises(ImproperlyConfigured, match="not an integer"):
        env_int("X_INT", 0)
    monkeypatch.setenv("X_INT", "0")
    with pytest.raises(ImproperlyConfigured, match="below the minimum"):
        env_int("X_INT", 5, minimum=1)
    with pytest.raises(ImproperlyConfigured, match="must be one of"):
        monkeypatch.setenv("X_CHOICE", "staging")
        env_choice("X_CHOICE", "development", ("development", "production"))


EMBEDDED_ENV = ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "EVENTS_BROKER_URL", "PROMETHEUS_MULTIPROC_DIR")


def _embedded_env(var_dir: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in EMBEDDED_ENV}
    return {**env, "HUODONG_VAR_DIR": str(var_dir), "DJANGO_SETTINGS_MODULE": "config.settings"}


def test_importing_settings_starts_no_server_and_makes_no_folder(tmp_path):
    var_dir = tmp_path / "var"
    # the settings and the Celery app (config/__init__.py imports it with the settings)
    script = "from django.conf import settings; print(settings.REDIS_URL); import config.celery"
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=_embedded_env(var_dir), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [f"unix://{var_dir}/redis/redis.sock?db=0"]  # named, not started
    assert not var_dir.exists()


def test_the_entry_point_makes_the_folders_and_starts_the_embedded_redis():
    import tempfile

    from core import embedded_redis

    with tempfile.TemporaryDirectory(prefix="hd-") as tmp:  # short: a Unix socket path is limited
        var_dir = Path(tmp).resolve() / "var"
        try:
            result = subprocess.run(
                [
                    sys.executable,
                    "manage.py",
                    "shell",
                    "-c",
                    "from core.redis import get_redis; print(get_redis().ping())",
                ],
                cwd=ROOT,
                env=_embedded_env(var_dir),
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert result.returncode == 0, result.stderr
            assert result.stdout.strip().endswith("True")
            assert (var_dir / "static").is_dir() and (var_dir / "redis" / "redis.sock").exists()
        finally:
            embedded_redis.stop(var_dir)
