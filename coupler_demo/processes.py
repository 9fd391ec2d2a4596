"""Run a set of long-lived processes in the foreground (``rundemo``, ``runprod``):
each logs to ``<logs>/<name>.log``; all stop together on SIGTERM/SIGINT, when one
exits, or after ``duration`` seconds."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path


def workflow_commands(py: str, beat_schedule: Path) -> dict[str, list[str]]:
    """The orchestrator (a Celery worker on ``scheduler,workflow``, threads) and beat,
    as both ``rundemo`` and ``runprod`` start them."""
    return {
        "orchestrator": [py, "-m", "celery", "-A", "console", "worker",
                         "-Q", "scheduler,workflow", "--pool=threads", "--concurrency=4",
                         "--hostname=orchestrator@%h", "--loglevel=INFO",
                         "--without-gossip", "--without-mingle"],
        "beat": [py, "-m", "celery", "-A", "console", "beat", "--loglevel=INFO",
                 "-s", str(beat_schedule)],
    }


def run_processes(commands: dict[str, list[str]], *, cwd: Path, env: dict[str, str],
                  logs: Path, duration: float | None,
                  on_started: Callable[[dict[str, subprocess.Popen]], None],
                  warn: Callable[[str], None], grace_s: float = 10) -> None:
    children: dict[str, subprocess.Popen] = {}
    stopping = False

    def stop(*_args):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        for name, argv in commands.items():
            # The child keeps its own descriptor of the log once started.
            with open(logs / f"{name}.log", "ab") as log:
                children[name] = subprocess.Popen(argv, cwd=cwd, env=env, stdout=log,
                                                  stderr=subprocess.STDOUT)
        on_started(children)
        started = time.monotonic()
        while not stopping:
            for name, child in children.items():
                if child.poll() is not None:
                    warn(f"{name} exited with {child.returncode}; "
                         f"see {logs / (name + '.log')}. Stopping.")
                    stopping = True
            if duration and time.monotonic() - started > duration:
                break
            time.sleep(0.5)
    finally:
        for child in children.values():
            if child.poll() is None:
                child.terminate()
        deadline = time.monotonic() + grace_s
        for child in children.values():
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
