#!/usr/bin/env bash
# `make dev`: the product on the local platform. Runs the migrations, then the API and console
# (gunicorn on http://127.0.0.1:8000), a Celery worker and the InferenceEndpoint controller, with their output
# prefixed by name. Ctrl-C stops all three; the platform keeps running (`make devstack-down`).
set -euo pipefail
cd "$(dirname "$0")/.."
set -a
# shellcheck disable=SC1091
. .devstack/env
set +a
# Production settings by default: no debug pages (DJANGO_DEBUG=true turns them on, for this
# machine's browser only: the server listens on loopback). Plain-HTTP cookies, since the
# development site has no TLS, and static files straight from the source tree.
export DJANGO_DEBUG="${DJANGO_DEBUG:-false}"
export DJANGO_SECURE_COOKIES="${DJANGO_SECURE_COOKIES:-false}"
export IMM_STATIC_AUTOREFRESH="${IMM_STATIC_AUTOREFRESH:-true}"
# A random key made once for this checkout (never a known one: a known key forges sessions).
if [ -z "${DJANGO_SECRET_KEY:-}" ] && [ -z "${DJANGO_SECRET_KEY_FILE:-}" ]; then
  key_file=.devstack/django-secret-key
  if [ ! -s "$key_file" ]; then
    (umask 077; .venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(50))' >"$key_file")
  fi
  export DJANGO_SECRET_KEY_FILE="$PWD/$key_file"
fi
PY=.venv/bin/python

$PY manage.py migrate --noinput

pids=()
run() {
  local name=$1; shift
  ( "$@" 2>&1 | sed -u "s/^/[$name] /" ) &
  pids+=($!)
}
stop() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do pkill -TERM -P "$pid" 2>/dev/null || true; kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop INT TERM EXIT

# -B: the periodic tasks (the stale-upload reaper) run inside this one worker.
# Each serves its metrics on the port the devstack's Prometheus scrapes (.devstack/env).
run worker env IMM_METRICS_PORT="${IMM_DEVSTACK_WORKER_METRICS_PORT:-0}" $PY -m celery -A inferencemgmt worker -B --schedule .devstack/celerybeat-schedule --pool=threads --concurrency=4 -l INFO
run controller env IMM_METRICS_PORT="${IMM_DEVSTACK_CONTROLLER_METRICS_PORT:-0}" $PY manage.py run_controller --kubeconfig "$IMM_CONTROLLER_KUBECONFIG"
# The production server (the Dockerfile's gunicorn settings), reloading on code changes, so what
# is measured and seen here is what a deployment does.
run api .venv/bin/gunicorn inferencemgmt.wsgi:application --bind=127.0.0.1:8000 --workers=2 --threads=4 \
  --timeout=300 --access-logfile=- --no-control-socket --reload
echo "[dev] console and API on http://127.0.0.1:8000 (demo users: see README); Ctrl-C to stop" >&2
wait -n
echo "[dev] a process exited; stopping the others" >&2
