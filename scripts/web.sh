#!/usr/bin/env bash
# The web process (Procfile `web`): collect static files (WhiteNoise serves them from
# STATIC_ROOT with hashed names in production), then run gunicorn.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python manage.py collectstatic --noinput -v 0
exec .venv/bin/gunicorn config.wsgi:application --bind "127.0.0.1:${PORT:-8000}" \
  --workers "${WEB_CONCURRENCY:-2}" --threads 4 --access-logfile - --log-level warning
