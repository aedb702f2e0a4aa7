#!/usr/bin/env bash
# `make run`'s foreground part: web, worker and beat under honcho. Ctrl-C stops
# them all, and the embedded Redis too when this run is on the embedded defaults.
set -u
cd "$(dirname "$0")/.."
PORT="${PORT:-8000}"
export PORT SITE_URL="${SITE_URL:-http://127.0.0.1:$PORT}"
token=$(.venv/bin/python manage.py mint_user_token demo-user 2>/dev/null)
cat <<INFO

  Huodong is starting (Ctrl-C stops everything):
    site         http://127.0.0.1:$PORT/
    demo page    http://127.0.0.1:$PORT/a/demo/#token=$token
                 (signed in as end user "demo-user")
    admin        http://127.0.0.1:$PORT/admin/    operator / operator-demo-2026, analyst / analyst-demo-2026
    analytics    http://127.0.0.1:$PORT/admin/analytics/linkrollup/dashboard/   (14 days of demo history)
    API docs     http://127.0.0.1:$PORT/api/docs/
    readiness    http://127.0.0.1:$PORT/readyz
    metrics      http://127.0.0.1:$PORT/metrics   (Prometheus; docs/observability.md)
    daily report .venv/bin/python manage.py report_daily --to you@example.com [--date YYYY-MM-DD] [--force]
                 (no EMAIL_HOST: the mail is written under var/mail/; archive in the admin)

INFO
# Prometheus multiprocess files of an earlier run would be added to this run's figures.
metrics_dir="${PROMETHEUS_MULTIPROC_DIR:-${HUODONG_VAR_DIR:-var}/prometheus}"
rm -rf "$metrics_dir" && mkdir -p "$metrics_dir"
trap 'true' INT TERM
.venv/bin/honcho start -f Procfile
if [ -z "${REDIS_URL:-}" ]; then
  .venv/bin/python -c "from pathlib import Path; from core.embedded_redis import stop; stop(Path('${HUODONG_VAR_DIR:-var}'))" \
    && echo "embedded Redis stopped"
fi
