import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
from core.boot import heap_freeze, process_prepare
from core.telemetry import tracing_setup

process_prepare()  # folders under var/, the embedded Redis when REDIS_URL is unset
tracing_setup()  # on only when OTEL_TRACES_EXPORTER is set (core/telemetry.py)
_django = get_wsgi_application()
heap_freeze()  # loaded: full collections skip the start-up objects (core/boot.py)


def application(environ, start_response):
    # Ad-platform click callbacks (/t/..., contracts §1) are the one high-volume path:
    # they skip Django's request stack and go straight to attribution's lean WSGI door
    # (Redis only, no database; see docs/attribution.md). Everything else is Django.
    if environ.get("PATH_INFO", "").startswith("/t/"):
        from attribution.clicks import wsgi_app

        return wsgi_app(environ, start_response)
    return _django(environ, start_response)
