#!/usr/bin/env bash
# Set up and run the demo: migrate, seed a synthetic history, train a model, create demo
# accounts, then run a Celery worker with beat, the demo partner's webhook receiver (port 8010)
# and the web server (gunicorn: 2 processes x 8 threads, as in production; SQLite in WAL mode
# takes their concurrent writes). Ctrl-C stops all three.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
export DJANGO_SETTINGS_MODULE=riskoffice.settings

$PY manage.py compile_locales -v 0  # French and English: locale/*.po -> .mo (pure Python)
$PY manage.py migrate --no-input -v 0
$PY manage.py seed_demo --individuals 4000
$PY manage.py train_model --if-no-champion
$PY manage.py train_model --if-no-champion --segment b2c
$PY manage.py setup_demo --base-url http://127.0.0.1:8000

mkdir -p var/log
.venv/bin/celery -A riskoffice worker --beat --concurrency 2 --loglevel INFO \
    --schedule var/celerybeat-schedule >var/log/worker.log 2>&1 &
WORKER=$!
# The partner's ERP, played by a small receiver: verifies each webhook's signature, prints each event.
$PY manage.py webhook_receiver --port 8010 >var/log/receiver.log 2>&1 &  # secret: var/demo-webhook-secret
RECEIVER=$!
trap 'kill $WORKER $RECEIVER 2>/dev/null || true; wait $WORKER $RECEIVER 2>/dev/null || true' EXIT INT TERM
echo "  Worker log    var/log/worker.log (Celery worker + beat, pid $WORKER)"
echo "  Receiver log  var/log/receiver.log (the demo partner's webhooks, verified; pid $RECEIVER)"
echo "  Web log       var/log/web.log (gunicorn access log; warnings and errors print here)"
echo
.venv/bin/gunicorn riskoffice.wsgi --bind 127.0.0.1:8000 --worker-class gthread --workers 2 --threads 8 \
    --access-logfile var/log/web.log
