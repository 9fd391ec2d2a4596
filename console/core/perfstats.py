"""Per-process work counters for the load test (``manage.py loadtest --live --rate``).

Off unless ``COUPLER_PERF_STATS_DIR`` is set (``rundemo --perf-stats`` sets it for
its children). Then every Django process (web workers, the orchestrator, beat)
counts the SQL statements it runs (a wrapper on each new database connection)
and the Celery messages it publishes and receives (``before_task_publish`` /
``task_prerun``), and a daemon thread writes them with the process's CPU time to
``<dir>/<role>-<pid>.json`` twice a second. The load test adds the files up
before and after a run: counts, not samples, so they are exact whatever else
loads the machine.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import threading
import time
from pathlib import Path

ENV = "COUPLER_PERF_STATS_DIR"
FLUSH_S = 0.5

_counts = {"queries": 0, "published": 0, "received": 0, "agent_answers": 0}
# Tasks only host agents send (their answers): messages no console process published.
AGENT_ANSWERS = ("console.core.tasks.workflow.host_result",
                 "console.core.tasks.hosts.host_checks_result")
_lock = threading.Lock()
_installed = False


def _bump(key: str) -> None:
    with _lock:
        _counts[key] += 1


def _count_query(execute, sql, params, many, context):
    _bump("queries")
    return execute(sql, params, many, context)


def role() -> str:
    argv = " ".join(sys.argv)
    if "celery" in argv and " beat" in argv:
        return "beat"
    if "celery" in argv and " worker" in argv:
        return "orchestrator"
    if "gunicorn" in argv or "runserver" in argv or "wsgi" in argv:
        return "web"
    return os.path.basename(sys.argv[0] or "python") or "python"


def snapshot() -> dict:
    with _lock:
        counts = dict(_counts)
    return {"pid": os.getpid(), "role": role(), "cpu_s": round(time.process_time(), 4),
            "at": time.time(), **counts}


def _write(folder: Path) -> None:
    data = snapshot()
    path = folder / f"{data['role']}-{data['pid']}.json"
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(data))
    os.replace(partial, path)


def _flusher(folder: Path) -> None:
    while True:
        time.sleep(FLUSH_S)
        try:
            _write(folder)
        except OSError:
            pass


def install() -> bool:
    """Hook the counters into this process when ``COUPLER_PERF_STATS_DIR`` is set."""
    global _installed
    folder = os.environ.get(ENV)
    if not folder or _installed:
        return False
    _installed = True
    from celery.signals import before_task_publish, task_prerun
    from django.db.backends.signals import connection_created

    def on_connection(sender, connection, **_kwargs):
        if _count_query not in connection.execute_wrappers:
            connection.execute_wrappers.append(_count_query)

    connection_created.connect(on_connection, weak=False)
    before_task_publish.connect(lambda **_k: _bump("published"), weak=False)
    def on_prerun(sender=None, **_kwargs):
        _bump("received")
        if getattr(sender, "name", "") in AGENT_ANSWERS:
            _bump("agent_answers")

    task_prerun.connect(on_prerun, weak=False)
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    threading.Thread(target=_flusher, args=(path,), daemon=True, name="perfstats").start()
    atexit.register(lambda: _write(path))
    return True


def read_all(folder: Path) -> dict[str, dict]:
    """Every process's last counters, by file name."""
    out = {}
    for path in Path(folder).glob("*.json"):
        try:
            out[path.stem] = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
    return out
