"""The agent's hosts: configuration, one libvirt connection and one lock per host.

One agent process serves one host in production and may serve several
simulated hosts in the demo (one libvirt connection per host). libvirt's
``test:///`` driver keeps its hypervisor inside the connection, so every
action for a host goes through the one long-lived connection kept here per
host name (the Celery worker runs with ``--pool=solo``).  A connection whose
libvirtd went away is reopened (``connection`` checks ``isAlive``;
``with_connection`` retries an action once after a lost connection).

A host not in the configuration gets ``COUPLER_AGENT_DEFAULT_LIBVIRT_URI`` or,
by default, a blank ``test:///`` node of its own: that is what eager-mode
tests use.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from hostagent import libvirt_driver as lv
from hostagent.agentconfig import AgentConfig, HostConfig

__all__ = ["blank_node_uri", "configure", "configure_host", "connection", "drop_connection", "host_config",
           "inject_failure", "reset", "with_connection"]

log = logging.getLogger("hostagent")

_hosts: dict[str, HostConfig] = {}
_connections: dict[str, Any] = {}
_locks: dict[str, threading.Lock] = {}
_registry_lock = threading.Lock()
# Test and drill hook: (host, op) -> error message to report instead of acting.
_injected_failures: dict[tuple[str, str], str] = {}


def configure(config: AgentConfig) -> None:
    with _registry_lock:
        for host in config.hosts:
            _hosts[host.name] = host


def configure_host(host: HostConfig) -> None:
    """Add or replace one host's configuration (its connection is reopened when its
    libvirt URI changed: a ``test://`` node file's domains live in the connection)."""
    with _registry_lock:
        previous = _hosts.get(host.name)
    if previous is None or previous.libvirt_uri != host.libvirt_uri:
        drop_connection(host.name)
    with _registry_lock:
        _hosts[host.name] = host


def reset() -> None:
    """Forget every host, connection and injected failure (tests)."""
    with _registry_lock:
        for conn in _connections.values():
            try:
                conn.close()
            except Exception:  # noqa: S110 - closing a dead connection
                pass
        _hosts.clear()
        _connections.clear()
        _locks.clear()
        _injected_failures.clear()


def inject_failure(host: str, op: str, message: str = "injected failure") -> None:
    """Make the next ``op`` (provision, teardown) on ``host`` fail with ``message``."""
    _injected_failures[(host, op)] = message


# A blank simulated node. libvirt shares one hypervisor among all connections to
# test:///default in a process, but gives each connection to a node *file* its
# own: unconfigured hosts get this file so their domains stay apart.
_BLANK_NODE = (
    "<node><cpu><mhz>2000</mhz><model>coupler-sim</model><active>256</active>"
    "<nodes>1</nodes><sockets>1</sockets><cores>256</cores><threads>1</threads></cpu>"
    "<memory>4294967296</memory></node>\n"
)


def blank_node_uri() -> str:
    path = Path(tempfile.gettempdir()) / f"coupler-blank-node-{os.getuid()}.xml"
    if not path.exists() or path.read_text() != _BLANK_NODE:
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(_BLANK_NODE)
        os.replace(tmp, path)
    return f"test://{path}"


def default_libvirt_uri() -> str:
    return os.environ.get("COUPLER_AGENT_DEFAULT_LIBVIRT_URI") or blank_node_uri()


def host_config(name: str) -> HostConfig:
    with _registry_lock:
        if name not in _hosts:
            uri = default_libvirt_uri()
            _hosts[name] = HostConfig(name=name, libvirt_uri=uri)
        return _hosts[name]


def _lock(name: str) -> threading.Lock:
    with _registry_lock:
        return _locks.setdefault(name, threading.Lock())


def connection(name: str) -> Any:
    """The long-lived libvirt connection of host ``name`` (opened on first use,
    reopened when libvirtd went away: a restarted daemon closes every client)."""
    with _registry_lock:
        conn = _connections.get(name)
    if conn is not None:
        if conn_alive(conn):
            return conn
        log.warning("libvirt connection of %s lost; reconnecting", name)
        drop_connection(name)
    cfg = host_config(name)
    try:
        conn = lv.connect(cfg.libvirt_uri)
    except lv.DriverError:
        if not cfg.libvirt_uri.startswith("test:"):
            raise
        # A simulated host whose node file libvirt refuses still needs a hypervisor.
        log.warning("libvirt refused %s for %s; using a blank node", cfg.libvirt_uri, name)
        conn = lv.connect(blank_node_uri())
    with _registry_lock:
        return _connections.setdefault(name, conn)




def conn_alive(conn: Any) -> bool:
    try:
        return bool(conn.isAlive())
    except Exception:
        return False


def drop_connection(name: str) -> None:
    """Forget (and close) the host's connection; the next use reopens it."""
    with _registry_lock:
        conn = _connections.pop(name, None)
    if conn is not None:
        try:
            conn.close()
        except Exception:  # noqa: S110 - closing a dead connection
            pass


T = TypeVar("T")


def with_connection(name: str, action: Callable[[Any], T]) -> T:
    """``action(conn)``; when it fails because the connection is gone (libvirtd
    restarted: ``client socket is closed``), reconnect once and repeat it — every
    driver action is idempotent."""
    conn = connection(name)
    try:
        return action(conn)
    except Exception as exc:
        if not lv.is_connection_lost(exc, conn):
            raise
        log.warning("libvirt connection of %s lost (%s); reconnecting", name, exc)
        drop_connection(name)
        return action(connection(name))
