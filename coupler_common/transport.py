"""The message wire between the console and the host agents when no broker
server runs (the demo, a laptop): kombu's filesystem transport, made safe.

kombu's own filesystem channel creates a message file and only then writes
into it, so a consumer polling the folder can pick up an empty file and die
on ``JSONDecodeError`` (seen under load in the demo); it writes a queue
binding the same way, so a process declaring a queue while another publishes
can read an empty routing table and drop the message. Here messages and
bindings are written under a temporary name and renamed into place:
``os.replace`` is atomic within a folder, so a reader sees all or nothing.

Importing this module registers the ``atomicfs://`` transport with kombu;
both the console (``console/settings.py``) and the agent
(``hostagent/agent_tasks.py``) build their broker settings with
``filesystem_broker_config`` so they always agree on folders and polling.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from time import monotonic
from typing import Any

from kombu.transport import TRANSPORT_ALIASES, filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

ALIAS = "atomicfs"
BROKER_URL = f"{ALIAS}://localhost//"
# Folder polling period: kombu's default of 1 s per hop made submit→running
# take seconds; listing a small folder 10 times a second costs nothing.
POLLING_INTERVAL_S = 0.1


class Channel(filesystem.Channel):
    def _put(self, queue: str, payload: Any, **kwargs: Any) -> None:
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        # A leading dot keeps the partial file out of every queue's pattern.
        partial = os.path.join(self.data_folder_out, f".{uuid.uuid4()}.partial")
        try:
            with open(partial, "wb") as handle:
                handle.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            raise filesystem.ChannelError(f"Cannot add file {final!r} to directory") from exc


    def queue_bind(self, queue: str, exchange: str | None = None, routing_key: str = "",
                   arguments: Any = None, **kwargs: Any) -> None:
        super().queue_bind(queue, exchange, routing_key, arguments, **kwargs)
        # kombu skips the table file when this process's shared in-memory state
        # already knows the binding, even if the thread that declared it has not
        # written the file yet: a publish in between found no queue and the
        # message was dropped. Make sure the file has it before returning.
        exchange = exchange or "amq.direct"
        meta = self.typeof(exchange).prepare_bind(queue, exchange, routing_key, arguments)
        self._queue_bind(exchange, *meta)

    def _queue_bind(self, exchange: str, routing_key: str, pattern: str, queue: str) -> None:
        table_file = self._exchange_file(exchange)
        self.control_folder.mkdir(parents=True, exist_ok=True)
        entry = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")
        # One writer at a time across processes; readers never need the lock.
        with open(self.control_folder / ".bindings.lock", "a") as guard:
            filesystem.lock(guard, filesystem.LOCK_EX)
            try:
                queues = self.get_table(exchange)
                if entry in queues:
                    return
                queues.insert(0, entry)
                partial = self.control_folder / f".{uuid.uuid4()}.partial"
                partial.write_bytes(str_to_bytes(dumps(queues)))
                os.replace(partial, table_file)
            finally:
                filesystem.unlock(guard)


class Transport(filesystem.Transport):
    Channel = Channel


def register() -> None:
    TRANSPORT_ALIASES[ALIAS] = "coupler_common.transport:Transport"


def filesystem_broker_options(folder: Path | str) -> dict[str, Any]:
    folder = Path(folder)
    options = {
        "data_folder_in": str(folder / "out"),
        "data_folder_out": str(folder / "out"),
        "processed_folder": str(folder / "processed"),
        "control_folder": str(folder / "control"),
        "store_processed": False,
        "polling_interval": POLLING_INTERVAL_S,
    }
    return options


def ensure_folders(options: dict[str, Any]) -> None:
    for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
        if options.get(key):
            Path(options[key]).mkdir(parents=True, exist_ok=True)


register()
