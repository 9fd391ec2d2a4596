"""The embedded broker against kombu's SQLAlchemy transport on SQLite.

    .venv/bin/python bench/embedded_broker.py            # atomicfs only
    .venv/bin/pip install sqlalchemy && .venv/bin/python bench/embedded_broker.py

For each transport: three writer processes and one reader, 300 messages of
20 KB on one queue (whole and all there, or says what went wrong), and the CPU
an idle consumer of 13 host queues burns (the demo's agent) at the transport's
polling interval. kombu's SQLAlchemy transport runs as it is: its default 1 s
polling (kombu hands every transport option to ``create_engine``, so it cannot
be set), the SQLite file in WAL mode and its queue declared before the writers
start (several processes declaring one new queue at once raise IntegrityError).
"""

from __future__ import annotations

import multiprocessing as mp
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from kombu import Connection, Consumer, Queue

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from coupler_common import transport

MESSAGES = 300
HOST_QUEUES = 13


def atomicfs(folder: Path) -> tuple[str, dict]:
    options = transport.filesystem_broker_options(folder)
    transport.ensure_folders(options)
    return transport.BROKER_URL, options


def sqla(folder: Path) -> tuple[str, dict]:
    folder.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(folder / "broker.sqlite3", timeout=30)
    db.execute("PRAGMA journal_mode=WAL")
    db.close()
    return f"sqla+sqlite:///{folder}/broker.sqlite3", {"connect_args": {"timeout": 30}}


def _writer(url: str, options: dict, start: int) -> None:
    with Connection(url, transport_options=options) as conn:
        queue = conn.SimpleQueue("stress")
        for i in range(start, start + MESSAGES // 3):
            queue.put({"pad": "x" * 20000, "i": i})
        queue.close()


def three_writers(url: str, options: dict) -> str:
    with Connection(url, transport_options=options) as conn:
        conn.SimpleQueue("stress").close()  # declared once, before the writers
    started = time.monotonic()
    writers = [mp.Process(target=_writer, args=(url, options, n * (MESSAGES // 3)))
               for n in range(3)]
    for w in writers:
        w.start()
    seen: list[int] = []
    try:
        with Connection(url, transport_options=options) as conn:
            queue = conn.SimpleQueue("stress")
            while len(seen) < MESSAGES:
                message = queue.get(timeout=30)
                seen.append(message.payload["i"])
                message.ack()
            queue.close()
    except Exception as exc:  # reported, not raised: the figure is the outcome
        return f"FAILED after {len(seen)} messages: {exc!r}"
    finally:
        for w in writers:
            w.join()
    ok = sorted(seen) == list(range(MESSAGES)) and all(w.exitcode == 0 for w in writers)
    return (f"{'all' if ok else 'NOT all'} {MESSAGES} whole, writers exit "
            f"{[w.exitcode for w in writers]}, {time.monotonic() - started:.2f} s")


def idle_cpu(url: str, options: dict, seconds: float = 10.0) -> str:
    with Connection(url, transport_options=options) as conn:
        queues = [Queue(f"host.h{i}") for i in range(HOST_QUEUES)]
        with Consumer(conn, queues, callbacks=[lambda body, message: message.ack()]):
            cpu, wall = time.process_time(), time.monotonic()
            while time.monotonic() - wall < seconds:
                try:
                    conn.drain_events(timeout=1)
                except TimeoutError:
                    pass
            share = (time.process_time() - cpu) / (time.monotonic() - wall)
            return f"{100 * share:.1f} % of a core (polling every {conn.transport.polling_interval} s)"


def main() -> None:
    transports = {"atomicfs (embedded default)": atomicfs}
    try:
        import sqlalchemy  # noqa: F401
        transports["kombu sqla+sqlite, as it is"] = sqla
    except ImportError:
        print("(SQLAlchemy is not installed: kombu's sqla transport is not measured)")
    for name, make in transports.items():
        folder = Path(tempfile.mkdtemp(prefix="coupler-broker-bench-"))
        try:
            url, options = make(folder)
            print(f"{name}: three writers + reader: {three_writers(url, options)}")
            print(f"{name}: idle consumer of {HOST_QUEUES} queues: {idle_cpu(url, options)}")
        finally:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
