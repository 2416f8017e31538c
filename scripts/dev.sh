#!/usr/bin/env bash
# `make dev`: the product on the local platform. Runs the migrations, then the API and console
# (http://127.0.0.1:8000), a Celery worker and the InferenceEndpoint controller, with their output
# prefixed by name. Ctrl-C stops all three; the platform keeps running (`make devstack-down`).
set -euo pipefail
cd "$(dirname "$0")/.."
set -a
# shellcheck disable=SC1091
. .devstack/env
set +a
export DJANGO_DEBUG="${DJANGO_DEBUG:-true}"
export DJANGO_SECRET_KEY="${DJANGO_SECRET_KEY:-dev-only-not-secret}"
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
run worker $PY -m celery -A inferencemgmt worker -B --schedule .devstack/celerybeat-schedule --pool=threads --concurrency=4 -l INFO
run controller $PY manage.py run_controller --kubeconfig "$IMM_CONTROLLER_KUBECONFIG"
run api $PY manage.py runserver --noreload 127.0.0.1:8000
echo "[dev] console and API on http://127.0.0.1:8000 (demo users: see README); Ctrl-C to stop" >&2
wait -n
echo "[dev] a process exited; stopping the others" >&2
