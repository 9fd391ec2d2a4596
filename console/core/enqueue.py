"""Send Celery work after the transaction that made it necessary commits.

Tasks are imported lazily: the actions layer must not import Celery task
modules at import time (they import actions themselves).

Scheduling cycles are **coalesced**: every submit, cancel, finish or host change
asks for a cycle, but at most one cycle message waits in the queue at a time. A
request sets a "cycle pending" flag next to the broker (a Redis key with
``SET NX``, or a file created with ``O_EXCL`` beside the filesystem broker's
folders) and sends the task only if the flag was not already set; the task
clears the flag *before* it reads the database, so a change committed after that
point sets the flag again and gets its own cycle, and a change committed before
it is seen by the cycle that is about to read. The flag expires after
``PENDING_TTL_S`` so a lost message costs at most that long (beat also sends a
cycle every ``COUPLER_SCHEDULE_INTERVAL_S``).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from django.db import transaction

CYCLE_TASK = "console.core.tasks.scheduling.run_scheduling_cycle"
PENDING_KEY = "coupler:scheduler:cycle-pending"
PENDING_TTL_S = 30

_redis_clients: dict[str, object] = {}
_redis_lock = threading.Lock()


def _task(task_path: str):
    module_name, _, task_name = task_path.rpartition(".")
    module = __import__(module_name, fromlist=[task_name])
    return getattr(module, task_name)


def _send(task_path: str, *args) -> None:
    _task(task_path).delay(*args)


def on_commit_send(task_path: str, *args) -> None:
    transaction.on_commit(lambda: _send(task_path, *args))


def _app():
    from console.celery import app

    return app


def _redis(url: str):
    with _redis_lock:
        client = _redis_clients.get(url)
        if client is None:
            import redis

            client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
            _redis_clients[url] = client
        return client


def _flag_file() -> Path:
    options = _app().conf.broker_transport_options or {}
    folder = options.get("control_folder") or options.get("data_folder_out") or "."
    return Path(folder).parent / "scheduler-cycle.pending"


def set_cycle_pending() -> bool:
    """Set the "cycle pending" flag; True if it was not set (the caller sends the task)."""
    url = str(_app().conf.broker_url or "")
    if url.startswith(("redis://", "rediss://", "unix://")):
        import redis

        try:
            return bool(_redis(url).set(PENDING_KEY, "1", nx=True, ex=PENDING_TTL_S))
        except redis.RedisError:
            return True  # no flag to share: send, the cycle is idempotent
    path = _flag_file()
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        try:
            if time.time() - path.stat().st_mtime < PENDING_TTL_S:
                return False
        except FileNotFoundError:
            pass  # cleared meanwhile
        # A stale flag: its message was lost. Take it over.
        path.touch()
        return True
    except OSError:
        return True
    os.close(fd)
    return True


def clear_cycle_pending() -> None:
    """Called by the cycle task before it reads the database."""
    url = str(_app().conf.broker_url or "")
    if url.startswith(("redis://", "rediss://", "unix://")):
        import redis

        try:
            _redis(url).delete(PENDING_KEY)
        except redis.RedisError:
            pass
        return
    try:
        _flag_file().unlink()
    except OSError:
        pass


def send_scheduling_cycle() -> None:
    """Send one cycle unless one is already waiting in the queue (eager: run it now)."""
    app = _app()
    if app.conf.task_always_eager or set_cycle_pending():
        _task(CYCLE_TASK).delay()


def request_scheduling_cycle() -> None:
    transaction.on_commit(send_scheduling_cycle)


def request_teardown(job_id: int) -> None:
    on_commit_send("console.core.tasks.workflow.teardown_job", job_id)
