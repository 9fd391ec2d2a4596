"""The agent's side of the console's REST API: registration and heartbeats.

``HeartbeatLoop`` registers every configured host, then heartbeats each every
interval in a daemon thread that survives any error (a libvirt failure is
reported in the beat, not raised).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hostagent import actions
from hostagent.agentconfig import AgentConfig, HostConfig
from hostagent.connections import host_config
from hostagent.protocol import (
    PROTOCOL_VERSION,
    CheckResult,
    ConsoleAnswer,
    DomainEnd,
    Heartbeat,
    Registration,
    SpecError,
    XidEvent,
    decode,
    encode,
    peer_version,
)

__all__ = ["AGENT_VERSION", "ConsoleError", "HeartbeatLoop", "heartbeat_body", "post_json"]

log = logging.getLogger("hostagent")

AGENT_VERSION = "0.2.0"


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
                   xid_events: list[dict] | None = None, latency_endpoint: str | None = None,
                   version: int = PROTOCOL_VERSION) -> dict[str, Any]:
    """One heartbeat (``Heartbeat``) as a console of ``version`` reads it. A libvirt
    failure does not stop it: the beat then carries ``libvirt_error`` and no domain
    report (the console keeps the last one)."""
    cfg = host_config(host)
    try:
        domains = actions.list_domains(host)
        error = ""
    except Exception as exc:  # the heartbeat must outlive any libvirt failure
        domains, error = [], str(exc) or type(exc).__name__
        log.warning("heartbeat of %s: libvirt: %s", host, error)
    report: dict[str, Any] = {}
    if not error:
        report = {
            "stopped_domains": tuple(d["name"] for d in domains if d["state"] != "running"),
            # libvirt's own state per domain (running, paused, blocked, shutoff, crashed, ...)
            "domain_states": {d["name"]: d["state"] for d in domains},
            # How each ended domain ended, from its state *and reason* and the guest's
            # reported exit status (hostagent.guest.outcome): the console's verdict.
            "domain_ends": {d["name"]: decode(DomainEnd, d["end"])
                            for d in domains if d.get("end")},
            "console_tail": {d["name"]: tuple(d["console"]) for d in domains
                             if d.get("console")},
        }
    beat = Heartbeat(
        host=host, sent_at=datetime.now(UTC), agent_version=AGENT_VERSION,
        domains=tuple(d["name"] for d in domains if d["state"] == "running"),
        gpus=tuple(g.get("pci_address") or g.get("pci", "")
                   for g in cfg.inventory.get("gpus", [])),
        healthy=not error, libvirt_error=error,
        hypervisor=actions.hypervisor_facts(host),
        xid_events=tuple(decode(XidEvent, x) for x in xid_events or ()),
        checks=None if checks is None else tuple(decode(CheckResult, c) for c in checks),
        latency_endpoint=latency_endpoint,
        **report,
    )
    return encode(beat, version)


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
        # The protocol version the console answered each host in (until then: ours).
        self.console_version: dict[str, int] = {}
        self.registered: set[str] = set()
        self.stop = threading.Event()
        self.beats = 0

    def _url(self, host: str, what: str) -> str:
        return f"{self.config.console_url}/api/v1/agent/hosts/{host}/{what}/"

    def _answer(self, host: str, answer: Any) -> None:
        try:
            parsed = decode(ConsoleAnswer, answer)
        except SpecError as exc:
            log.warning("console's answer for %s refused: %s", host, exc)
            return
        self.console_version[host] = peer_version(parsed.version)
        self.peers[host] = [p for p in parsed.peers if p]
        self.baselines[host] = parsed.baseline

    def register(self, host: HostConfig) -> None:
        registration = decode(Registration, {
            "inventory": host.inventory, "libvirt_uri": host.libvirt_uri,
            "agent_version": AGENT_VERSION, "latency_endpoint": self.latency_endpoint,
            "hypervisor": actions.hypervisor_facts(host.name), "version": PROTOCOL_VERSION,
        })
        self._answer(host.name, self.post(self._url(host.name, "register"), host.token,
                                          encode(registration)))
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
                    checks = actions.run_checks(host.name, peers=self.peers.get(host.name, ()),
                                        baseline=self.baselines.get(host.name))
                body = heartbeat_body(
                    host.name, checks=checks,
                    xid_events=actions.scan_kernel_log(host.name, self.state_dir),
                    latency_endpoint=self.latency_endpoint,
                    version=self.console_version.get(host.name, PROTOCOL_VERSION))
                self.host_beats[host.name] = self.host_beats.get(host.name, 0) + 1
                self._answer(host.name, self.post(self._url(host.name, "heartbeat"), host.token,
                                                  body))
            except Exception as exc:  # one host's failure never stops the others' beats
                log.warning("heartbeat of %s: %s", host.name, exc)
        self.beats += 1

    def run(self) -> None:
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                self.beat_once()
            except Exception:  # the thread must not die: log and beat again
                log.exception("heartbeat round failed")
            self.stop.wait(max(0.5, self.config.heartbeat_interval_s - (time.monotonic() - started)))

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, name="heartbeat", daemon=True)
        thread.start()
        return thread
