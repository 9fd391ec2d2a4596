"""Probes for process managers and load balancers (no authentication, no data).

``/healthz``: the web process is up and answering (liveness). ``/readyz``: it
can do its work: the database answers a query and the broker accepts a
connection (readiness); 503 naming what is down otherwise. Neither reveals
anything but ``ok``/``down`` per dependency.
"""

from __future__ import annotations

import logging

from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from console.celery import app

log = logging.getLogger(__name__)
BROKER_TIMEOUT_S = 2.0


@never_cache
@require_GET
def healthz(request):
    return JsonResponse({"status": "ok"})


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except Exception as exc:  # any driver error means not ready
        log.warning("readyz: database down: %s", exc)
        return False


def _broker_ok() -> bool:
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=BROKER_TIMEOUT_S)
        return True
    except Exception as exc:  # any transport error means not ready
        log.warning("readyz: broker down: %s", exc)
        return False


@never_cache
@require_GET
def readyz(request):
    checks = {"database": "ok" if _database_ok() else "down",
              "broker": "ok" if _broker_ok() else "down"}
    ready = all(v == "ok" for v in checks.values())
    return JsonResponse({"status": "ok" if ready else "down", "checks": checks},
                        status=200 if ready else 503)
