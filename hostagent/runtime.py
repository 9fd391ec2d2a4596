"""The host agent at run time: host actions, registration and heartbeats.

One agent process serves one host in production and may serve several
simulated hosts in the demo (one libvirt connection per host). libvirt's
``test:///`` driver keeps its hypervisor inside the connection, so every
action for a host must go through the one long-lived connection this module
keeps per host name, under that host's lock: the Celery worker runs threads in
this one process (one per host, up to 8), never processes.

The agent never touches the console's database: it receives fully specified
commands on its queue(s) ``host.<name>`` (``hostagent.agent_tasks``) and talks
to the console's REST API with its per-host token (register, heartbeat).

Configuration is a JSON document (``COUPLER_AGENT_CONFIG`` names the file)::

    {"console_url": "http://127.0.0.1:8000",
     "heartbeat_interval_s": 5,
     "latency_listen": "0.0.0.0:7471", "latency_advertise": "10.1.2.3:7471",
     "hosts": [{"name": "dgx-a100-01", "token": "…",
                "libvirt_uri": "test:///…/node_dgx_a100.xml",
                "cgroup_root": "", "checks_root": "…/sim/roots/good",
                "kernel_log": "", "inventory": {…}}]}

``latency_listen`` is where the agent's echo responder (``network.hop_latency``:
peers measure to it) listens, default ``0.0.0.0:7471``; "" or ``off`` runs none.
``latency_advertise`` is the ``host:port`` peers reach it at, reported to the
console at registration and in every heartbeat; default: the listen address (a
wildcard host becomes this machine's FQDN; port 0 or no port: the bound port).
The console answers registrations and heartbeats with ``peers`` (the endpoints
this host's check rounds measure against) and ``baseline`` (the admin's firmware
baseline for its board, or null). One responder serves every host of
the process (the demo's single agent: every simulated host advertises it).

A host not in the configuration gets ``COUPLER_AGENT_DEFAULT_LIBVIRT_URI`` or,
by default, a blank ``test:///`` node of its own: that is what eager-mode
tests use.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from hostagent import cgroups, mdev
from hostagent import libvirt_driver as lv
from hostagent.protocol import Heartbeat, ProvisionResult, ProvisionSpec, SpecError

log = logging.getLogger("hostagent")

AGENT_VERSION = "0.1.0"
DOMAIN_PREFIX = "coupler-job-"


@dataclass
class HostConfig:
    name: str
    libvirt_uri: str = "test:///default"
    token: str = ""
    cgroup_root: str = ""
    checks_root: str = ""
    kernel_log: str = ""
    # Where the GPUs' sysfs lives for mediated devices (GPU shares): "/" on a
    # KVM host; empty on the test driver, whose simulated hypervisor has no mdev
    # bus (then the share is only a hostdev in the domain's definition).
    mdev_root: str = ""
    inventory: dict[str, Any] = field(default_factory=dict)

    @property
    def domain_type(self) -> str:
        return "test" if self.libvirt_uri.startswith("test:") else "kvm"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HostConfig:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


DEFAULT_LATENCY_LISTEN = "0.0.0.0:7471"  # every address: peers on other hosts connect


@dataclass
class AgentConfig:
    console_url: str = "http://127.0.0.1:8000"
    heartbeat_interval_s: float = 5.0
    hosts: list[HostConfig] = field(default_factory=list)
    latency_listen: str = DEFAULT_LATENCY_LISTEN
    latency_advertise: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AgentConfig:
        return cls(
            console_url=str(data.get("console_url", cls.console_url)).rstrip("/"),
            heartbeat_interval_s=float(data.get("heartbeat_interval_s", 5.0)),
            hosts=[HostConfig.from_dict(h) for h in data.get("hosts", [])],
            latency_listen=str(data.get("latency_listen", DEFAULT_LATENCY_LISTEN) or ""),
            latency_advertise=str(data.get("latency_advertise") or ""),
        )

    @classmethod
    def load(cls, path: str | os.PathLike | None = None) -> AgentConfig:
        path = path or os.environ.get("COUPLER_AGENT_CONFIG")
        if not path:
            return cls()
        return cls.from_dict(json.loads(Path(path).read_text()))


# --- per-host state: configuration, one connection, one lock ------------------------------

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
    """The long-lived libvirt connection of host ``name`` (opened on first use)."""
    with _registry_lock:
        conn = _connections.get(name)
    if conn is not None:
        return conn
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


# --- actions ----------------------------------------------------------------------------


def provision(host: str, spec: dict[str, Any]) -> dict[str, Any]:
    """Create the job's cgroup, define and start its domain. Idempotent.

    A failure leaves nothing behind on this host (the partial domain and cgroup
    are removed) and is reported, not raised: the console decides what follows.
    """
    job_id = str(spec.get("job_id", "")) if isinstance(spec, dict) else ""
    try:
        parsed = ProvisionSpec.from_dict(spec)
    except SpecError as exc:
        return ProvisionResult(job_id=job_id, host=host, ok=False, error=f"bad spec: {exc}").to_dict()
    cfg = host_config(host)
    with _lock(host):
        try:
            injected = _injected_failures.pop((host, "provision"), None)
            if injected:
                raise lv.DriverError(injected)
            conn = connection(host)
            if cfg.cgroup_root:
                cgroups.apply_spec(cfg.cgroup_root, parsed)
            root = _mdev_root(cfg)
            if root is not None:
                for share in parsed.gpu_shares:
                    mdev.create(root, share.pci, share.mdev_uuid, milli=share.milli,
                                mdev_type=share.mdev_type)
            state = lv.provision(conn, parsed, domain_type=cfg.domain_type)
        except (lv.DriverError, cgroups.CgroupError, mdev.MdevError, OSError) as exc:
            log.warning("provision of %s on %s failed: %s", parsed.name, host, exc)
            _clean(host, parsed.name)
            return ProvisionResult(job_id=parsed.job_id, host=host, ok=False,
                                   domain=parsed.name, error=str(exc)).to_dict()
    return ProvisionResult(job_id=parsed.job_id, host=host, ok=True, domain=parsed.name,
                           state=state).to_dict()


def _mdev_root(cfg: HostConfig) -> Path | None:
    if cfg.mdev_root:
        return Path(cfg.mdev_root)
    return Path("/") if cfg.domain_type == "kvm" else None


def _mdev_uuids(host: str, name: str) -> list[str]:
    """The mediated devices a defined domain uses (read before it is undefined)."""
    try:
        xml = lv.domain_xml(connection(host), name)
    except lv.DriverError:
        return []
    if not xml:
        return []
    dom = ET.fromstring(xml)  # noqa: S314 - libvirt's copy of our own document
    return [a.get("uuid", "") for a in dom.findall("./devices/hostdev[@type='mdev']/source/address")
            if a.get("uuid")]


def _remove_mdevs(cfg: HostConfig, uuids: list[str]) -> None:
    root = _mdev_root(cfg)
    if root is None:
        return
    for uuid in uuids:
        mdev.remove(root, uuid)


def _clean(host: str, name: str) -> None:
    cfg = host_config(host)
    uuids = _mdev_uuids(host, name)
    try:
        lv.teardown(connection(host), name)
        _remove_mdevs(cfg, uuids)
    except (lv.DriverError, mdev.MdevError) as exc:
        log.warning("cleanup of %s on %s: %s", name, host, exc)
    if cfg.cgroup_root:
        try:
            cgroups.remove_job_cgroup(cfg.cgroup_root, name)
        except cgroups.CgroupError as exc:
            log.warning("cgroup cleanup of %s on %s: %s", name, host, exc)


def teardown(host: str, name: str, job_id: str = "") -> dict[str, Any]:
    """Destroy and undefine the domain, remove the cgroup. Safe to repeat."""
    cfg = host_config(host)
    with _lock(host):
        try:
            injected = _injected_failures.pop((host, "teardown"), None)
            if injected:
                raise lv.DriverError(injected)
            uuids = _mdev_uuids(host, name)
            lv.teardown(connection(host), name)
            _remove_mdevs(cfg, uuids)
            if cfg.cgroup_root:
                cgroups.remove_job_cgroup(cfg.cgroup_root, name)
        except (lv.DriverError, cgroups.CgroupError, mdev.MdevError, SpecError, OSError) as exc:
            return ProvisionResult(job_id=job_id, host=host, ok=False, domain=name,
                                   error=str(exc)).to_dict()
    return ProvisionResult(job_id=job_id, host=host, ok=True, domain=name,
                           state="absent").to_dict()


def domain_xml(host: str, name: str) -> str:
    """The definition libvirt holds for one domain (what was really defined)."""
    with _lock(host):
        return lv.domain_xml(connection(host), name)


def list_domains(host: str) -> list[dict[str, str]]:
    """Coupler's domains on the host with their states."""
    with _lock(host):
        conn = connection(host)
        return [
            {"name": name, "state": lv.domain_state(conn, name) or "absent"}
            for name in lv.list_domains(conn)
            if name.startswith(DOMAIN_PREFIX)
        ]


def run_checks(host: str, *, root: str | None = None, baseline: dict[str, str] | None = None,
               peers: list[str] | tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """The host checklist (CHECKS.md) against ``root`` (default: the host's configured
    root, a sim tree in the demo), with the admin's firmware ``baseline`` and the
    ``peers`` (``host:port`` echo responders) to measure hop latency against."""
    from hostagent.checks import run_checks as run

    cfg = host_config(host)
    gpus = cfg.inventory.get("gpus") or None
    facts = cfg.inventory.get("facts") or {}
    return [r.to_dict() for r in run(root or cfg.checks_root or "/", gpus=gpus,
                                     driver_version=facts.get("driver_version"),
                                     baseline=baseline or None, peers=peers or ())]


def scan_kernel_log(host: str, state_dir: Path) -> list[dict[str, Any]]:
    cfg = host_config(host)
    if not cfg.kernel_log or not Path(cfg.kernel_log).exists():
        return []
    from hostagent.xid import XidScanner

    scanner = XidScanner(cfg.kernel_log, state_dir / f"{host}.xid-cursor.json", host=host)
    return [e.to_dict() for e in scanner.scan()]


# --- the echo responder peers measure hop latency to ---------------------------------------

_WILDCARDS = ("", "0.0.0.0", "::", "*")  # noqa: S104 - compared, not bound


def split_endpoint(text: str, default_port: int = 0) -> tuple[str, int]:
    """``host:port`` (``[v6]:port``, or a bare host) → (host, port)."""
    text = text.strip()
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or (host.count(":") and not host.startswith("[")):
        host, port = text, ""
    return host.strip("[]"), int(port) if port else default_port


class LatencyResponder:
    """``hostagent.checks.echo_responder`` in a daemon thread of the agent process."""

    def __init__(self, listen: str = DEFAULT_LATENCY_LISTEN, advertise: str = "") -> None:
        self.listen = listen
        self.advertise = advertise
        self.stop = threading.Event()
        self.port = 0
        self.endpoint = ""  # what peers connect to, once started

    def start(self, timeout: float = 5.0) -> str:
        """Bind and serve; returns the advertised ``host:port``. Raises OSError when the
        address cannot be bound."""
        from hostagent.checks import echo_responder

        host, port = split_endpoint(self.listen, 7471)
        ready, bound, errors = threading.Event(), [], []

        def serve() -> None:
            try:
                echo_responder(host or "0.0.0.0", port, stop=self.stop, ready=ready,  # noqa: S104
                               bound=bound)
            except OSError as exc:
                errors.append(exc)
                ready.set()

        threading.Thread(target=serve, name="latency-responder", daemon=True).start()
        if not ready.wait(timeout):
            raise OSError(f"echo responder on {self.listen} did not start")
        if errors:
            raise errors[0]
        self.port = bound[0]
        a_host, a_port = split_endpoint(self.advertise or self.listen, 0)
        if a_host in _WILDCARDS:
            a_host = socket.getfqdn()
        a_host = f"[{a_host}]" if ":" in a_host else a_host
        self.endpoint = f"{a_host}:{a_port or self.port}"
        return self.endpoint


def start_latency_responder(config: AgentConfig) -> LatencyResponder | None:
    """The agent's responder per its configuration, or None (disabled, or the address
    is taken: the agent runs on and advertises nothing, so peers skip it)."""
    if config.latency_listen.strip().lower() in ("", "off", "none"):
        return None
    responder = LatencyResponder(config.latency_listen, config.latency_advertise)
    try:
        endpoint = responder.start()
    except (OSError, ValueError) as exc:
        log.warning("no latency echo responder on %s: %s", config.latency_listen, exc)
        return None
    log.info("latency echo responder on %s, advertised as %s", config.latency_listen, endpoint)
    return responder


# --- talking to the console ---------------------------------------------------------------


class ConsoleError(RuntimeError):
    pass


def post_json(url: str, token: str, body: dict[str, Any], *, timeout: float = 10.0) -> dict:
    data = json.dumps(body).encode()
    request = urllib.request.Request(  # noqa: S310 - the configured console URL
        url, data=data, method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        raise ConsoleError(f"{url}: HTTP {exc.code} {exc.read()[:300]!r}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise ConsoleError(f"{url}: {exc}") from exc


def heartbeat_body(host: str, *, checks: list[dict] | None = None,
                   xid_events: list[dict] | None = None) -> dict[str, Any]:
    domains = list_domains(host)
    cfg = host_config(host)
    beat = Heartbeat(
        host=host, sent_at=time.time(), agent_version=AGENT_VERSION,
        domains=tuple(d["name"] for d in domains if d["state"] == "running"),
        gpus=tuple(g.get("pci_address") or g.get("pci", "")
                   for g in cfg.inventory.get("gpus", [])),
        healthy=True,
    ).to_dict()
    beat["stopped_domains"] = [d["name"] for d in domains if d["state"] != "running"]
    # libvirt's own state per domain (running, paused, blocked, shutoff, crashed, ...):
    # the console ends a job SUCCEEDED only on shutoff, FAILED on crashed.
    beat["domain_states"] = {d["name"]: d["state"] for d in domains}
    beat["xid_events"] = xid_events or []
    if checks is not None:
        beat["checks"] = checks
    return beat


class HeartbeatLoop:
    """Registers every configured host, then heartbeats each every interval."""

    def __init__(self, config: AgentConfig, *, state_dir: Path | None = None,
                 post: Callable[[str, str, dict], dict] = post_json,
                 checks_every: int = 12, latency_endpoint: str = "") -> None:
        self.config = config
        self.state_dir = state_dir or Path(os.environ.get("COUPLER_AGENT_STATE_DIR", "var/agent"))
        self.post = post
        self.checks_every = max(1, checks_every)
        self.latency_endpoint = latency_endpoint  # our echo responder, "" for none
        # From the console's last answer per host: the peers (echo responders) and the
        # firmware baseline its check rounds measure against.
        self.peers: dict[str, list[str]] = {}
        self.baselines: dict[str, dict[str, str] | None] = {}
        self.host_beats: dict[str, int] = {}  # heartbeats sent per host since it registered
        self.registered: set[str] = set()
        self.stop = threading.Event()
        self.beats = 0

    def _url(self, host: str, what: str) -> str:
        return f"{self.config.console_url}/api/v1/agent/hosts/{host}/{what}/"

    def _answer(self, host: str, answer: Any) -> None:
        if not isinstance(answer, dict):
            return
        if isinstance(answer.get("peers"), list):
            self.peers[host] = [str(p) for p in answer["peers"] if p]
        if "baseline" in answer:
            baseline = answer["baseline"]
            self.baselines[host] = ({str(k): str(v) for k, v in baseline.items()}
                                    if isinstance(baseline, dict) else None)

    def register(self, host: HostConfig) -> None:
        self._answer(host.name, self.post(self._url(host.name, "register"), host.token, {
            "inventory": host.inventory, "libvirt_uri": host.libvirt_uri,
            "agent_version": AGENT_VERSION, "latency_endpoint": self.latency_endpoint,
        }))
        self.registered.add(host.name)

    def checks_due(self, host: str) -> bool:
        """Every ``checks_every``-th heartbeat of the host, the first on its second one:
        by then every host of this agent has tried to register and the console's
        answer to the first heartbeat carries the peers to measure against."""
        return self.host_beats.get(host, 0) % self.checks_every == 1 % self.checks_every

    def beat_once(self) -> None:
        for host in self.config.hosts:  # all registered first: each is a peer of the others
            if host.name not in self.registered:
                try:
                    self.register(host)
                except (ConsoleError, OSError, ValueError) as exc:
                    log.warning("registration of %s: %s", host.name, exc)
        for host in self.config.hosts:
            if host.name not in self.registered:
                continue
            try:
                checks = None
                if self.checks_due(host.name):
                    checks = run_checks(host.name, peers=self.peers.get(host.name, ()),
                                        baseline=self.baselines.get(host.name))
                body = heartbeat_body(host.name, checks=checks,
                                      xid_events=scan_kernel_log(host.name, self.state_dir))
                body["latency_endpoint"] = self.latency_endpoint
                self.host_beats[host.name] = self.host_beats.get(host.name, 0) + 1
                self._answer(host.name, self.post(self._url(host.name, "heartbeat"), host.token,
                                                  body))
            except (ConsoleError, lv.DriverError, OSError, ValueError) as exc:
                log.warning("heartbeat of %s: %s", host.name, exc)
        self.beats += 1

    def run(self) -> None:
        while not self.stop.is_set():
            started = time.monotonic()
            self.beat_once()
            self.stop.wait(max(0.5, self.config.heartbeat_interval_s - (time.monotonic() - started)))

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, name="heartbeat", daemon=True)
        thread.start()
        return thread


def main(args: Any = None) -> int:
    """``python -m hostagent run``: heartbeats in a thread, the Celery worker in front.

    The worker consumes ``host.<name>`` for every configured host with a thread
    pool (``COUPLER_AGENT_THREADS``, default one per host up to 8; 1: the solo
    pool), so each host's libvirt connection lives in this one process.
    """
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"))
    config = AgentConfig.load(getattr(args, "config", None))
    if not config.hosts:
        log.error("no hosts configured: set COUPLER_AGENT_CONFIG to the agent's JSON config")
        return 2
    configure(config)
    responder = start_latency_responder(config)
    loop = HeartbeatLoop(config, latency_endpoint=responder.endpoint if responder else "")
    loop.start()
    from hostagent.agent_tasks import app

    queues = ",".join(f"host.{h.name}" for h in config.hosts)
    # Hosts do not wait for each other: a thread per host (up to 8; every action
    # on one host holds that host's lock, so one host's commands stay in order).
    threads = int(os.environ.get("COUPLER_AGENT_THREADS") or min(len(config.hosts), 8))
    pool = ["--pool=solo", "--concurrency=1"] if threads <= 1 else [
        "--pool=threads", f"--concurrency={threads}"]
    argv = ["worker", *pool, f"--queues={queues}",
            f"--hostname=agent-{config.hosts[0].name}@%h", "--loglevel=INFO",
            "--without-gossip", "--without-mingle"]
    try:
        app.worker_main(argv)
    finally:
        loop.stop.set()
        if responder is not None:
            responder.stop.set()
    return 0
