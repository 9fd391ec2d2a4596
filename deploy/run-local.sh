#!/usr/bin/env bash
# The production stack on one machine (`make prod`): gunicorn + WhiteNoise,
# the Celery orchestrator and beat, and the simulated host agent, with the
# production settings (DEBUG off) against this machine's PostgreSQL and Redis.
#
#   DATABASE_URL=postgres://postgres@127.0.0.1:5432/coupler \
#   REDIS_URL=redis://127.0.0.1:6379/1 deploy/run-local.sh [--port 8000]
#
# Served over plain HTTP on loopback, so TLS redirects and Secure cookies are
# off unless set; behind a TLS proxy leave them on (deploy/coupler.env.example).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${DATABASE_URL:?set DATABASE_URL=postgres://USER@HOST:5432/DB}"
: "${REDIS_URL:?set REDIS_URL=redis://HOST:6379/N}"
export COUPLER_VAR_DIR="${COUPLER_VAR_DIR:-$PWD/var}"
mkdir -p -m 700 "$COUPLER_VAR_DIR"
if [ -z "${SECRET_KEY:-}" ]; then
  key_file="$COUPLER_VAR_DIR/secret-key"
  if [ ! -s "$key_file" ]; then
    (umask 077; python3 -c 'import secrets; print(secrets.token_urlsafe(50))' > "$key_file")
  fi
  SECRET_KEY="$(cat "$key_file")"
  export SECRET_KEY
fi
export DJANGO_SETTINGS_MODULE=console.settings
export DEBUG=0
export ALLOWED_HOSTS="${ALLOWED_HOSTS:-127.0.0.1,localhost}"
export SECURE_SSL_REDIRECT="${SECURE_SSL_REDIRECT:-0}"
export SECURE_COOKIES="${SECURE_COOKIES:-0}"
export SECURE_HSTS_SECONDS="${SECURE_HSTS_SECONDS:-0}"
exec "${PYTHON:-.venv/bin/python}" manage.py runprod "$@"
