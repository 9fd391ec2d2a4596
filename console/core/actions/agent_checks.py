"""Host checks run by the agents: the inputs of a check round (the check root, the
firmware baseline, the latency peers the heartbeat answers carry) and the results the
agents send back (``CheckResult`` rows, a cycle when a critical check changes).
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from console.core import enqueue
from console.core.agent_input import latency_endpoint_allowed
from console.core.choices import (
    EventKind,
    HostState,
)
from console.core.models import CheckResult, Event, FirmwareBaseline, Host
from hostagent.protocol import CheckResult as CheckMessage
from hostagent.protocol import ChecksResult, decode

log = logging.getLogger(__name__)


# How many peers an agent measures network.hop_latency against.
LATENCY_PEERS = 3


def clean_latency_endpoint(value: object) -> str:
    """``host:port`` of an agent's echo responder, or "" when absent or malformed."""
    text = str(value or "").strip()
    host, sep, port = text.rpartition(":")
    if not sep or not host or len(text) > 255 or not port.isdigit() or not 0 < int(port) < 65536:
        return ""
    if not latency_endpoint_allowed(text):  # outside the cluster's networks: never dialled
        log.warning("latency endpoint %r is outside COUPLER_AGENT_NETWORKS: ignored", text)
        return ""
    return text


def latency_peers(host: Host, limit: int = LATENCY_PEERS) -> list[str]:
    """The echo responders ``host`` measures ``network.hop_latency`` against: up to
    ``limit`` distinct endpoints of other READY hosts of its cluster whose agent
    advertised one (``Host.latency_endpoint``), hosts of its own group (rack)
    first, then by name. Never the host itself, never an offline host."""
    return _peers_of(host, _ready_endpoints(host.cluster_id), limit)


def record_checks(host: Host, checks: tuple[CheckMessage, ...], now: datetime) -> bool:
    """Store the latest result per check; True when a critical check changed status."""
    changed = False
    for msg in checks:
        previous = CheckResult.objects.filter(host=host, check_id=msg.id).first()
        evidence = dict(msg.evidence)
        if msg.reason:
            evidence.setdefault("reason", msg.reason)
        CheckResult.objects.update_or_create(
            host=host, check_id=msg.id,
            defaults={"status": msg.status, "risk": msg.risk, "title": msg.title[:200],
                      "evidence": evidence, "remediation": msg.remediation,
                      "measured_at": now},
        )
        if msg.risk == "critical" and (previous is None or previous.status != msg.status):
            changed = True
            Event.objects.create(host=host, kind=EventKind.CHECK, actor=f"agent:{host.name}",
                                 reason=f"{msg.id}: {msg.status}", data={"check": msg.id})
    return changed


# FirmwareBaseline fields → the keys the agent's firmware.baseline check observes.
_BASELINE_KEYS = {"board_name": "board_name", "bios_version": "bios_version",
                  "gpu_vbios": "vbios_version", "driver_version": "driver_version"}


def checks_root(host: Host) -> str | None:
    """The root an admin pinned the host's checks to (``facts["checks_root"]``, e.g. a
    captured tree to re-check); None: the agent's own configured root (``/`` on a real
    host, its machine's tree on a simulated one)."""
    return str((host.facts or {}).get("checks_root") or "") or None


def firmware_baseline(host: Host) -> dict[str, str] | None:
    """The admin's firmware baseline for the host's board, in the check's keys."""
    board = host.board_name
    row = FirmwareBaseline.objects.filter(board_name=board).first() if board else None
    if row is None:
        return None
    return {_BASELINE_KEYS[k]: v for k, v in row.as_dict().items() if v}


def host_check_inputs(host: Host) -> dict:
    """The fully specified inputs of ``hostagent.run_checks`` for this host: its check
    root, its board's firmware baseline and the peers its heartbeats are answered with
    (``latency_peers``; none → ``network.hop_latency`` is ``unknown``, never a pass)."""
    return {"root": checks_root(host), "baseline": firmware_baseline(host),
            "peers": latency_peers(host)}


def do_request_host_checks(host: Host, *, actor: str) -> Event:
    """Audit an admin's request to re-run the host's checks (the task is sent on commit)."""
    return Event.objects.create(host=host, kind=EventKind.CHECKS_REQUESTED, actor=actor,
                                reason=f"checks re-run requested by {actor}")


def do_record_host_checks(host_id: int, payload: ChecksResult | dict, *,
                          requested_by: str = "") -> bool:
    """Apply the answer of a re-run (``ChecksResult``, decoded first: a malformed one
    raises SpecError and changes nothing): refresh CheckResult rows, record an Event
    with the outcome, and re-plan when a critical check changed. False if the host is
    gone."""
    result = decode(ChecksResult, payload)
    host = Host.objects.filter(pk=host_id).first()
    if host is None:
        return False
    checks = result.checks
    actor = f"agent:{host.name}"
    with transaction.atomic():
        if not result.ok or not checks:
            Event.objects.create(host=host, kind=EventKind.CHECKS_RESULT, actor=actor,
                                 reason=f"checks re-run failed: {result.error or 'no results'}"
                                 [:1000], data={"requested_by": requested_by})
            return False
        changed = record_checks(host, checks, timezone.now())
        counts = {s: sum(1 for c in checks if c.status == s)
                  for s in ("pass", "fail", "unknown")}
        failing = sorted(c.id for c in checks if c.status == "fail")
        reason = (f"checks re-run: {counts['pass']} pass, {counts['fail']} fail, "
                  f"{counts['unknown']} unknown" + (f"; failing: {', '.join(failing)}"
                                                    if failing else ""))
        Event.objects.create(host=host, kind=EventKind.CHECKS_RESULT, actor=actor, reason=reason[:1000],
                             data={"requested_by": requested_by, "counts": counts,
                                   "failing": failing})
        if changed:
            enqueue.request_scheduling_cycle()
    return True


def check_inputs_for_agent(host: Host, *, fresh: bool = False) -> dict:
    """What registration and heartbeat answers carry for the agent's own check rounds:
    the same ``peers`` and firmware ``baseline`` as ``run_host_checks`` sends.

    Every heartbeat asks for them, and reading them from the database each time was
    more than half of a quiet heartbeat's CPU at 1,000 hosts (``manage.py
    bench_heartbeats``). So what they are made of — the cluster's advertised endpoints,
    the board's baseline — is kept in the cache for ``COUPLER_CHECK_INPUTS_CACHE_S``
    (``fresh``: read anew, as a registration does); a check round measuring against
    peers up to that old loses nothing."""
    ttl = 0 if fresh else settings.COUPLER_CHECK_INPUTS_CACHE_S
    if not ttl:
        return {"peers": latency_peers(host), "baseline": firmware_baseline(host)}
    endpoints = cache.get_or_set(f"coupler:latency-endpoints:{host.cluster_id}",
                                 lambda: _ready_endpoints(host.cluster_id), ttl)
    board = host.board_name or ""
    board_key = hashlib.sha256(board.encode()).hexdigest()[:16]  # board names have spaces
    baseline = cache.get_or_set(f"coupler:baseline:{board_key}",
                                lambda: {"value": firmware_baseline(host)}, ttl)["value"]
    return {"peers": _peers_of(host, endpoints), "baseline": baseline}


def _ready_endpoints(cluster_id: int) -> list[tuple[str, str, int, str]]:
    """(group, name, id, endpoint) of the cluster's READY hosts that advertise an echo
    responder, by name."""
    rows = (Host.objects.filter(cluster_id=cluster_id, state=HostState.READY)
            .exclude(latency_endpoint="")
            .order_by("name").values_list("group", "name", "pk", "latency_endpoint"))
    return [(group, name, pk, endpoint) for group, name, pk, endpoint in rows]


def _peers_of(host: Host, endpoints: list[tuple[str, str, int, str]],
              limit: int = LATENCY_PEERS) -> list[str]:
    """The peers of ``latency_peers`` among ``endpoints`` (``_ready_endpoints``, read
    anew or kept): same rack first, then by name, never the host itself, each endpoint
    once (one agent may serve several hosts, as in the demo)."""
    peers: list[str] = []
    for same_rack in (True, False):
        for group, _name, pk, endpoint in endpoints:
            if pk == host.pk or (group == host.group) != same_rack:
                continue
            endpoint = clean_latency_endpoint(endpoint)
            if endpoint and endpoint not in peers:
                peers.append(endpoint)
                if len(peers) >= limit:
                    return peers
    return peers
