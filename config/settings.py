"""Huodong settings: one module, everything from the environment.

With no variable set the platform runs on embedded defaults (SQLite and an
embedded Redis under var/). With DJANGO_ENV=production it refuses to start on any
insecure default and names the variable to set.

Importing this module has no side effects: it starts no server and creates no
folder. The entry points (manage.py, config/wsgi.py, the Celery worker and beat,
tests/conftest.py, bench) call `core.boot.process_prepare()`, which makes the
folders under var/ and starts the embedded Redis when REDIS_URL is not set.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from csp.constants import NONE, SELF, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured

from components.storage_url import media_storage
from config.env import env_bool, env_choice, env_float, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("HUODONG_VAR_DIR", str(BASE_DIR / "var")))  # made by core.boot.process_prepare

DJANGO_ENV = env_choice("DJANGO_ENV", "development", ("development", "test", "production"))
PRODUCTION = DJANGO_ENV == "production"

_problems: list[str] = []

# --- core -------------------------------------------------------------------
_DEV_SECRET = "dev-insecure-secret-key-change-me-0123456789abcdefghijklmnopqrstuvwxyz"
SECRET_KEY = env_str("SECRET_KEY", "" if PRODUCTION else _DEV_SECRET)
DEBUG = env_bool("DEBUG", not PRODUCTION)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [] if PRODUCTION else ["127.0.0.1", "localhost", "testserver", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
SITE_URL = env_str("SITE_URL", "" if PRODUCTION else "http://127.0.0.1:" + env_str("PORT", "8000")).rstrip("/")

if PRODUCTION:
    if not SECRET_KEY or SECRET_KEY == _DEV_SECRET or len(SECRET_KEY) < 50:
        _problems.append("SECRET_KEY: set a random secret of at least 50 characters")
    if DEBUG:
        _problems.append("DEBUG: set DEBUG=0 in production")
    if not ALLOWED_HOSTS:
        _problems.append("ALLOWED_HOSTS: list the host names the site is served on")
    if not SITE_URL:
        _problems.append("SITE_URL: the public base URL (https://...), used in links we hand out")

INSTALLED_APPS = [
    "core.admin_site.HuodongAdminConfig",  # django.contrib.admin on our site class
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's files, served by us (no CDN)
    "django_filters",
    "csp",
    "import_export",
    "axes",
    "core",  # the platform app (its label stays "config": no table moved)
    "activities",
    "components",
    "listings",
    "coupons",
    "attribution",
    "payments",
    "adreports",
    "analytics",
    "exports",
    "alerts",
]

MIDDLEWARE = [
    "core.middleware.JsonErrorShapeMiddleware",
    "core.observability.RequestMetricsMiddleware",
    "core.middleware.RequestLogMiddleware",
    "core.profiling.ProfilingMiddleware",
    "core.middleware.JsonPathMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # Simplified Chinese by default; a user's choice (admin language switch) or the
    # browser's Accept-Language picks English.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "core.middleware.JsonErrorMiddleware",
    "axes.middleware.AxesMiddleware",  # last: turns a login lock-out into its answer
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- database ---------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL", "")
if DATABASE_URL:
    try:
        _db = dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60, minimum=0))
    except Exception as exc:  # dj-database-url raises several types
        raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}") from None
else:
    if PRODUCTION:
        _problems.append("DATABASE_URL: the embedded SQLite database is not for production")
    _db = {"ENGINE": "django.db.backends.sqlite3", "NAME": str(VAR_DIR / "huodong.sqlite3")}

if _db["ENGINE"] == "django.db.backends.sqlite3":
    _db.setdefault("OPTIONS", {}).update(
        {
            # BEGIN IMMEDIATE takes the write lock up front, so concurrent writers
            # queue on the busy timeout instead of failing on lock upgrade.
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
    _db["TEST"] = {"NAME": str(VAR_DIR / (env_str("TEST_DATABASE_NAME", "test") + ".sqlite3"))}
elif _db["ENGINE"] == "django.db.backends.mysql":
    _db.setdefault("OPTIONS", {}).update(
        {
            "charset": "utf8mb4",
            "isolation_level": "read committed",
            "init_command": "SET sql_mode='STRICT_TRANS_TABLES'",
        }
    )
    _db["TEST"] = {"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"}
    if env_str("TEST_DATABASE_NAME"):
        _db["TEST"]["NAME"] = env_str("TEST_DATABASE_NAME")
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- redis, celery, events --------------------------------------------------
REDIS_URL = env_str("REDIS_URL", "")
EMBEDDED_REDIS = not REDIS_URL
if EMBEDDED_REDIS:
    if PRODUCTION:
        _problems.append("REDIS_URL: the embedded Redis is not for production")
    from core.embedded_redis import socket_path

    # started by the entry points (core.boot.process_prepare), not here
    _sock = socket_path(VAR_DIR)
    REDIS_URL = f"unix://{_sock}?db=0"
    _default_broker = f"redis+socket://{_sock}?virtual_host=1"
else:
    _default_broker = REDIS_URL

CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", _default_broker)
EVENTS_BROKER_URL = env_str("EVENTS_BROKER_URL", CELERY_BROKER_URL)
# Queue names are prefixed so that tests (and a second deployment on one broker)
# never consume each other's messages.
EVENTS_QUEUE_PREFIX = env_str("EVENTS_QUEUE_PREFIX", "huodong")
EVENTS_MAX_ATTEMPTS = env_int("EVENTS_MAX_ATTEMPTS", 5, minimum=1)
EVENTS_CONSUMER_ENABLED = env_bool("EVENTS_CONSUMER_ENABLED", True)
# Bounds checked on the raw body before it is parsed (core/events/decode.py).
EVENTS_MAX_BODY_BYTES = env_int("EVENTS_MAX_BODY_BYTES", 65536, minimum=1024)
EVENTS_MAX_DEPTH = env_int("EVENTS_MAX_DEPTH", 16, minimum=2, maximum=100)
# A failed handler is retried after this delay (doubled per attempt, at most 60 s),
# waiting in the retry queue, never in the consumer thread.
EVENTS_RETRY_DELAY_MS = env_int("EVENTS_RETRY_DELAY_MS", 1000, minimum=0)
# A handler running longer is stopped (HandlerTimeout) and its event retried; 0: no limit.
EVENTS_HANDLER_TIME_LIMIT = env_int("EVENTS_HANDLER_TIME_LIMIT", 30, minimum=0)
# Events are applied in batches: up to EVENTS_BATCH_SIZE already-delivered messages
# (waiting at most EVENTS_BATCH_WAIT_MS for more) in one transaction, acked after its
# commit (core/events/consumer.py, docs/events.md). 1: one event per transaction. 100:
# a type with a batch handler pays its fixed statements once per batch (idle MariaDB,
# 2026-12-02: 1,323 payment results/s at 50 against 784/s at 20; 2026-12-03: 1,741-1,967
# activations/s at 100 against 1,504-1,663/s at 50, 2,246-2,268 results/s against
# 1,753-2,216/s; 200 was no faster). A batch holds its rows' locks for its own time
# (~25 ms for 100 activations in one process).
EVENTS_BATCH_SIZE = env_int("EVENTS_BATCH_SIZE", 100, minimum=1, maximum=500)
EVENTS_BATCH_WAIT_MS = env_int("EVENTS_BATCH_WAIT_MS", 5, minimum=0, maximum=1000)
# /readyz fails when the consumer's heartbeat, its loop or its backlog has not moved
# for this long.
EVENTS_STALL_SECONDS = env_int("EVENTS_STALL_SECONDS", 60, minimum=1)
# Redis brokers only: how long an unacked event waits before another consumer may
# take it (RabbitMQ redelivers as soon as the consumer's connection drops).
EVENTS_VISIBILITY_TIMEOUT = env_int("EVENTS_VISIBILITY_TIMEOUT", 120, minimum=1)
# Housekeeping (core/tasks.py, nightly): platform records older than this many days are
# deleted. A redelivered event is recognised by its ProcessedEvent marker only while the
# marker is kept, and a retried POST replays its answer only while its IdempotencyRecord is.
IDEMPOTENCY_RETENTION_DAYS = env_int("IDEMPOTENCY_RETENTION_DAYS", 7, minimum=1)
EVENTS_PROCESSED_RETENTION_DAYS = env_int("EVENTS_PROCESSED_RETENTION_DAYS", 30, minimum=1)
EVENTS_DEAD_LETTER_RETENTION_DAYS = env_int("EVENTS_DEAD_LETTER_RETENTION_DAYS", 90, minimum=1)
# The Redis database the test suite uses (and flushes); parallel suites on one
# machine each take their own.
TEST_REDIS_DB = env_int("TEST_REDIS_DB", 15, minimum=0, maximum=15)

CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = "Asia/Shanghai"
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 300, minimum=1)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 240, minimum=1)
CELERY_WORKER_PREFETCH_MULTIPLIER = 4
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False  # keep Django's JSON log lines
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# Each app adds its periodic tasks in its own `beat.py` (collected in config.celery).
CELERY_BEAT_SCHEDULE: dict = {}

# Outbound mail (the daily report, contract §8): Django's standard EMAIL_* names. With
# EMAIL_HOST set, SMTP in every environment; without it, development writes each mail
# as a file under var/mail/.
EMAIL_HOST = env_str("EMAIL_HOST", "")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1, maximum=65535)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 30, minimum=1)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "huodong@localhost")
EMAIL_FILE_PATH = str(VAR_DIR / "mail")
if EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
elif not PRODUCTION:
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
# The daily marketing report: local send time (HH:MM, TIME_ZONE) and default recipients.
REPORT_DAILY_AT = env_str("REPORT_DAILY_AT", "09:00")
REPORT_RECIPIENTS = env_list("REPORT_RECIPIENTS", [])

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "huodong"),
        "TIMEOUT": 300,
    }
}

# --- activities -------------------------------------------------------------
# How long the public page and the API's snapshot stay cached; publishing and
# status changes invalidate them at once, so this only bounds memory use.
ACTIVITY_CACHE_SECONDS = env_int("ACTIVITY_CACHE_SECONDS", 600, minimum=1)
# Lifetime of the signed preview links the admin hands out.
ACTIVITY_PREVIEW_TTL_SECONDS = env_int("ACTIVITY_PREVIEW_TTL_SECONDS", 72 * 3600, minimum=60)

# --- secrets shared with other teams ---------------------------------------
USER_TOKEN_SECRET = env_str("USER_TOKEN_SECRET", "" if PRODUCTION else "dev-user-token-secret-0123456789abcdef")
if PRODUCTION and not USER_TOKEN_SECRET:
    _problems.append("USER_TOKEN_SECRET: set the HS256 secret shared with the user center")
# The sandbox payment service (payments app) is served under /sandbox/pay/ and is
# the default counterpart outside production; production must name the real one.
PAYMENT_SANDBOX_ENABLED = env_bool("PAYMENT_SANDBOX_ENABLED", not PRODUCTION)
PAYMENT_SERVICE_URL = env_str("PAYMENT_SERVICE_URL", "" if PRODUCTION else SITE_URL + "/sandbox/pay").rstrip("/")
if PRODUCTION and not PAYMENT_SERVICE_URL:
    _problems.append("PAYMENT_SERVICE_URL: set the payment service's base URL")
PAYMENT_SECRET = env_str("PAYMENT_SECRET", "" if PRODUCTION else "dev-payment-secret-0123456789abcdef")
if PRODUCTION and not PAYMENT_SECRET:
    _problems.append("PAYMENT_SECRET: set the HMAC secret shared with the payment service")
PAYMENT_TIMEOUT_SECONDS = env_float("PAYMENT_TIMEOUT_SECONDS", 5.0)
# How long an order holds its stock waiting for payment (also the paycode's expire_seconds).
PAYMENT_ORDER_TTL_SECONDS = env_int("PAYMENT_ORDER_TTL_SECONDS", 900, minimum=60)
SERVICE_TOKEN = env_str("SERVICE_TOKEN", "" if PRODUCTION else "dev-service-token")
if PRODUCTION and not SERVICE_TOKEN:
    _problems.append("SERVICE_TOKEN: set the token other services use to call Huodong's service APIs")
# Shared secrets shorter than this are guessable offline (HS256, HMAC): refused in production.
MIN_SECRET_LENGTH = 32
if PRODUCTION:
    for _name, _value in (
        ("USER_TOKEN_SECRET", USER_TOKEN_SECRET),
        ("PAYMENT_SECRET", PAYMENT_SECRET),
        ("SERVICE_TOKEN", SERVICE_TOKEN),
    ):
        if _value and len(_value) < MIN_SECRET_LENGTH:
            _problems.append(f"{_name}: too short ({len(_value)} characters); use {MIN_SECRET_LENGTH} or more")

# Ad platforms' postback endpoints (contracts §3); tests point them at loopback.
# Outside production they default to the built-in sandbox ad platform (/sandbox/ads/,
# attribution/sandbox/), which records what it receives: the demo never calls the
# real platforms. Base URLs set here are trusted as configured.
AD_SANDBOX_ENABLED = env_bool("AD_SANDBOX_ENABLED", not PRODUCTION)
if PRODUCTION and AD_SANDBOX_ENABLED:
    _problems.append("AD_SANDBOX_ENABLED: the sandbox ad platform is not for production (unset it)")
_AD_SANDBOX_URL = SITE_URL + "/sandbox/ads"
POSTBACK_OCEANENGINE_URL = env_str(
    "POSTBACK_OCEANENGINE_URL",
    _AD_SANDBOX_URL + "/oceanengine/track/activate/"
    if AD_SANDBOX_ENABLED
    else "https://ad.oceanengine.com/track/activate/",
)
POSTBACK_KUAISHOU_URL = env_str(
    "POSTBACK_KUAISHOU_URL",
    _AD_SANDBOX_URL + "/kuaishou/track/activate"
    if AD_SANDBOX_ENABLED
    else "https://ad.partner.gifshow.com/track/activate",
)
# Callback URLs come from the clicks (outside input): a postback to one goes only to a
# host on its platform's allow-list ("host", "*.domain", an IP), and never to a loopback,
# private, link-local or metadata address unless POSTBACK_ALLOW_PRIVATE_HOSTS is on (in
# development, for the sandbox and the tests' stand-ins; refused in production). An IP
# address listed here is trusted as configured. Generic links add their own hosts.
POSTBACK_ALLOW_PRIVATE_HOSTS = env_bool("POSTBACK_ALLOW_PRIVATE_HOSTS", not PRODUCTION)
if PRODUCTION and POSTBACK_ALLOW_PRIVATE_HOSTS:
    _problems.append(
        "POSTBACK_ALLOW_PRIVATE_HOSTS: callbacks to private addresses are refused in production (unset it)"
    )
# Outside production (sandbox on) the default allow-lists name only the sandbox's host.
_sandbox_hosts = [urlsplit(SITE_URL).hostname or "127.0.0.1"] if AD_SANDBOX_ENABLED else None
POSTBACK_CALLBACK_HOSTS = {
    "oceanengine": env_list(
        "POSTBACK_OCEANENGINE_CALLBACK_HOSTS", _sandbox_hosts or ["*.oceanengine.com", "*.toutiao.com"]
    ),
    "tencent": env_list("POSTBACK_TENCENT_CALLBACK_HOSTS", _sandbox_hosts or ["*.e.qq.com", "*.gdt.qq.com"]),
    "kuaishou": env_list("POSTBACK_KUAISHOU_CALLBACK_HOSTS", _sandbox_hosts or ["*.gifshow.com", "*.kuaishou.com"]),
    "generic": env_list("POSTBACK_GENERIC_CALLBACK_HOSTS", _sandbox_hosts or []),
}
POSTBACK_TIMEOUT_SECONDS = env_float("POSTBACK_TIMEOUT_SECONDS", 5.0)

# Listings bulk import (docs/listings.md).
LISTINGS_IMPORT_MAX_BYTES = env_int("LISTINGS_IMPORT_MAX_BYTES", 50 * 1024 * 1024, minimum=1024)
LISTINGS_XLSX_MAX_UNPACKED_BYTES = env_int("LISTINGS_XLSX_MAX_UNPACKED_BYTES", 200 * 1024 * 1024, minimum=1024)
LISTINGS_MAX_CITIES = env_int("LISTINGS_MAX_CITIES", 200, minimum=1)
LISTINGS_IMPORT_KEEP_DAYS = env_int("LISTINGS_IMPORT_KEEP_DAYS", 30, minimum=1)

# Click callbacks allowed per second from one source address (all links together);
# each tracking link has its own per-second limit in the admin (docs/attribution.md).
ATTRIBUTION_CLICK_RATE_PER_IP = env_int("ATTRIBUTION_CLICK_RATE_PER_IP", 5000, minimum=1)
# Prefix of attribution's Redis keys (clicks, link replicas, counters).
ATTRIBUTION_REDIS_PREFIX = env_str("ATTRIBUTION_REDIS_PREFIX", "att")

# --- ad reporting APIs (contracts §10, docs/adreports.md) --------------------
# Fernet key(s) encrypting ad accounts' app secrets and OAuth tokens at rest;
# comma-separated for rotation (the first encrypts, all decrypt).
_DEV_AD_SECRETS_KEY = "ZGV2LWFkLXNlY3JldHMta2V5LW5vdC1mb3ItcHJvZCE="
AD_SECRETS_KEY = env_str("AD_SECRETS_KEY", "" if PRODUCTION else _DEV_AD_SECRETS_KEY)
if PRODUCTION and (not AD_SECRETS_KEY or _DEV_AD_SECRETS_KEY in AD_SECRETS_KEY):
    _problems.append("AD_SECRETS_KEY: set a Fernet key (Fernet.generate_key()) encrypting ad-account secrets")
else:
    from cryptography.fernet import Fernet

    try:
        [Fernet(key.strip().encode()) for key in AD_SECRETS_KEY.split(",") if key.strip()]
    except ValueError:
        raise ImproperlyConfigured("AD_SECRETS_KEY is not a Fernet key (32 url-safe base64-encoded bytes)") from None
# The sandbox reporting APIs of the three platforms are served under /sandbox/adapi/
# while AD_SANDBOX_ENABLED (above); the base URLs default there outside production.
_ad_sandbox = SITE_URL + "/sandbox/adapi/"
AD_API_OCEANENGINE_URL = env_str(
    "AD_API_OCEANENGINE_URL", "https://ad.oceanengine.com" if PRODUCTION else _ad_sandbox + "oceanengine"
).rstrip("/")
AD_API_TENCENT_URL = env_str(
    "AD_API_TENCENT_URL", "https://api.e.qq.com" if PRODUCTION else _ad_sandbox + "tencent"
).rstrip("/")
AD_API_KUAISHOU_URL = env_str(
    "AD_API_KUAISHOU_URL", "https://ad.e.kuaishou.com" if PRODUCTION else _ad_sandbox + "kuaishou"
).rstrip("/")
AD_API_TIMEOUT_SECONDS = env_float("AD_API_TIMEOUT_SECONDS", 20.0)
AD_API_PAGE_SIZE = env_int("AD_API_PAGE_SIZE", 200, minimum=1, maximum=1000)
# Transient failures (network, 5xx, garbage) retried per request; rate-limit answers backed off.
AD_API_RETRIES = env_int("AD_API_RETRIES", 3, minimum=0)
AD_API_RATE_LIMIT_RETRIES = env_int("AD_API_RATE_LIMIT_RETRIES", 6, minimum=0)
AD_API_BACKOFF_SECONDS = env_float("AD_API_BACKOFF_SECONDS", 2.0)
# Accounts pulled at once by one pull job.
AD_REPORTS_CONCURRENCY = env_int("AD_REPORTS_CONCURRENCY", 2, minimum=1, maximum=16)
AD_REPORTS_DAYS = env_int("AD_REPORTS_DAYS", 7, minimum=1, maximum=60)
# Refresh an access token this long before it expires; warn this long before a refresh token does.
AD_TOKEN_REFRESH_MARGIN_SECONDS = env_int("AD_TOKEN_REFRESH_MARGIN_SECONDS", 1800, minimum=0)
AD_REFRESH_TOKEN_WARN_DAYS = env_int("AD_REFRESH_TOKEN_WARN_DAYS", 5, minimum=0)
# Their figures vs ours: listed beyond TOLERANCE percent, alerted beyond ALERT percent,
# ignored while both sides are under MIN_COUNT.
AD_DISCREPANCY_TOLERANCE_PERCENT = env_float("AD_DISCREPANCY_TOLERANCE_PERCENT", 10.0)
AD_DISCREPANCY_ALERT_PERCENT = env_float("AD_DISCREPANCY_ALERT_PERCENT", 30.0)
AD_DISCREPANCY_MIN_COUNT = env_int("AD_DISCREPANCY_MIN_COUNT", 20, minimum=0)
# Analytics rollups (docs/analytics.md)
ANALYTICS_RETENTION_DAYS = env_int("ANALYTICS_RETENTION_DAYS", 400, minimum=400)
ANALYTICS_FIVE_MINUTE_RETENTION_DAYS = env_int("ANALYTICS_FIVE_MINUTE_RETENTION_DAYS", 35, minimum=1)
ANALYTICS_CATCH_UP_HOURS = env_int("ANALYTICS_CATCH_UP_HOURS", 48, minimum=1)
# Days of ad and campaign history seed_demo makes once (0: none; the test suite uses 0).
ANALYTICS_DEMO_DAYS = env_int("ANALYTICS_DEMO_DAYS", 14, minimum=0, maximum=60)
# Raw data for the big-data platform (contracts §9, docs/export.md): a local folder
# or s3://bucket/prefix; S3 endpoint and keys for any S3-compatible store.
EXPORT_URL = env_str("EXPORT_URL", str(VAR_DIR / "export"))
EXPORT_DELAY_MINUTES = env_int("EXPORT_DELAY_MINUTES", 15, minimum=0)
EXPORT_S3_ENDPOINT_URL = env_str("EXPORT_S3_ENDPOINT_URL", "")
EXPORT_S3_REGION = env_str("EXPORT_S3_REGION", "us-east-1")
AWS_ACCESS_KEY_ID = env_str("AWS_ACCESS_KEY_ID", "")
AWS_SECRET_ACCESS_KEY = env_str("AWS_SECRET_ACCESS_KEY", "")
EXPORT_PART_ROWS = env_int("EXPORT_PART_ROWS", 2_000_000, minimum=1)
EXPORT_CATCHUP_HOURS = env_int("EXPORT_CATCHUP_HOURS", 24, minimum=1)
EXPORT_CLICK_LOG_KEEP_HOURS = env_int("EXPORT_CLICK_LOG_KEEP_HOURS", 72, minimum=1)
EXPORT_DRAIN_BATCH = env_int("EXPORT_DRAIN_BATCH", 10_000, minimum=1)
EXPORT_DRAIN_SECONDS = env_int("EXPORT_DRAIN_SECONDS", 60, minimum=1)
EXPORT_DRAIN_LOCK_SECONDS = env_int("EXPORT_DRAIN_LOCK_SECONDS", 60, minimum=1)
EXPORT_PARTITION_LOCK_SECONDS = env_int("EXPORT_PARTITION_LOCK_SECONDS", 1800, minimum=1)

# --- auth, i18n, static -----------------------------------------------------
# Admin login throttling (django-axes, core/auth_backends.py): after
# ADMIN_LOGIN_FAILURE_LIMIT wrong passwords a username (or an address) is locked for
# ADMIN_LOGIN_LOCKOUT_MINUTES; an operator unlocks it earlier in the admin
# (Axes › Access attempts: delete) or with `manage.py axes_reset_username <name>`.
AUTHENTICATION_BACKENDS = [
    "core.auth_backends.LoginThrottleBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"  # our database, either backend
AXES_FAILURE_LIMIT = env_int("ADMIN_LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("ADMIN_LOGIN_LOCKOUT_MINUTES", 30, minimum=1))
# Each counts on its own: one address guessing many accounts, or one account guessed from many addresses.
AXES_LOCKOUT_PARAMETERS = ["ip_address", "username"]
AXES_RESET_ON_SUCCESS = True
AXES_HTTP_RESPONSE_CODE = 429
AXES_COOLOFF_MESSAGE = (
    f"This account is locked after {AXES_FAILURE_LIMIT} failed logins. Try again in "
    f"{env_int('ADMIN_LOGIN_LOCKOUT_MINUTES', 30, minimum=1)} minutes, or ask an operator to unlock it."
)
AXES_VERBOSE = False

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
# Our translations (model and field names, help texts, messages, pages): `make` compiles
# locale/*/LC_MESSAGES/django.po into .mo files (compilemessages).
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
MEDIA_URL = "media/"
MEDIA_ROOT = VAR_DIR / "media"
STORAGES = {
    # Uploaded images (banners...): the local media folder, or an S3-compatible
    # bucket named by MEDIA_STORAGE_URL (components/storage_url.py).
    "default": media_storage(env_str("MEDIA_STORAGE_URL", "")),
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = not PRODUCTION
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
# Largest image an operator may upload (banners).
UPLOAD_IMAGE_MAX_BYTES = env_int("UPLOAD_IMAGE_MAX_BYTES", 2 * 1024 * 1024, minimum=1024)
# Largest body the JSON paths (API, sandbox payment service) accept: more is a 413.
API_MAX_BODY_BYTES = env_int("API_MAX_BODY_BYTES", 1024 * 1024, minimum=1024)

# --- REST API ---------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["core.auth.UserTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["core.parsers.BoundedJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "core.pagination.PageNumberPagination",
    "PAGE_SIZE": 20,
    "EXCEPTION_HANDLER": "core.errors.api_exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Huodong API",
    "DESCRIPTION": "Campaign platform: activities, listings, coupon packs, paid sales, ad attribution.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "core.schema.error_responses"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- security (production) --------------------------------------------------
if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]

# --- Content-Security-Policy (django-csp 4): on every answer, the public pages and the
# admin included. Scripts only from our own origin (no inline script, no outside script
# host, no eval); inline styles stay allowed (templates use style attributes); images
# may come from any https host (banners and listing covers live on CDNs).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:", "blob:", "https:", "http:"],
        "font-src": [SELF, "data:"],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "frame-ancestors": [SELF],
    }
}

# --- logging: one JSON object per line --------------------------------------
LOG_LEVEL = env_choice("LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR"))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        # Elastic Common Schema names (@timestamp, log.level, log.logger, message,
        # trace.id, span.id, ...): docs/observability.md
        "json": {"()": "core.logs.EcsJsonFormatter"}
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.server": {"level": "WARNING"},
        "django.request": {"level": "ERROR"},
        # its DEBUG lines carry whole URLs: Tencent's reporting API takes access_token in the query
        "urllib3": {"level": "WARNING"},
    },
}

# --- observability (docs/observability.md) ----------------------------------
# Tracing is configured by the standard OTEL_* variables (core/telemetry.py);
# this is the share of click callbacks that get a span when it is on.
TRACING_CLICK_SAMPLE_RATIO = env_float("TRACING_CLICK_SAMPLE_RATIO", 0.01)
# Prometheus metrics at /metrics: every process (gunicorn workers, Celery workers)
# writes its figures under this directory; scripts/run.sh empties it at start.
# (core/metrics.py makes the folder and exports the variable before prometheus-client loads.)
PROMETHEUS_MULTIPROC_DIR = Path(env_str("PROMETHEUS_MULTIPROC_DIR", str(VAR_DIR / "prometheus")))
METRICS_TOKEN = env_str("METRICS_TOKEN", "")
if PRODUCTION and len(METRICS_TOKEN) < 16:
    _problems.append("METRICS_TOKEN: set a random token of at least 16 characters (Prometheus sends it as Bearer)")
# Profiles (pyinstrument, stored in the admin): signed per-request tokens live this
# long; a share of requests is profiled and kept when slower than the threshold;
# Celery tasks named here (or "*") are profiled on every run.
PROFILE_TOKEN_TTL_SECONDS = env_int("PROFILE_TOKEN_TTL_SECONDS", 3600, minimum=60)
PROFILE_SLOW_REQUEST_MS = env_int("PROFILE_SLOW_REQUEST_MS", 1000, minimum=1)
PROFILE_SLOW_SAMPLE_RATIO = env_float("PROFILE_SLOW_SAMPLE_RATIO", 0.0)
PROFILE_CELERY_TASKS = env_list("PROFILE_CELERY_TASKS", [])

if _problems:
    raise ImproperlyConfigured("DJANGO_ENV=production refuses insecure defaults; set:\n  - " + "\n  - ".join(_problems))

# --- alerts (contracts §7): mail channels go through this SMTP server ---------------
# (SMTP_* override the standard EMAIL_* names read above, which the daily report uses.)
_REPORT_SMTP = bool(EMAIL_HOST or env_str("SMTP_HOST", ""))
EMAIL_HOST = env_str("SMTP_HOST", EMAIL_HOST or "localhost")
EMAIL_PORT = env_int("SMTP_PORT", EMAIL_PORT, minimum=1, maximum=65535)
EMAIL_HOST_USER = env_str("SMTP_USER", EMAIL_HOST_USER)
EMAIL_HOST_PASSWORD = env_str("SMTP_PASSWORD", EMAIL_HOST_PASSWORD)
EMAIL_USE_TLS = env_bool("SMTP_USE_TLS", EMAIL_USE_TLS)
DEFAULT_FROM_EMAIL = env_str("SMTP_FROM", DEFAULT_FROM_EMAIL)
if _REPORT_SMTP:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
