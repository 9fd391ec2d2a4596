"""What host agents report: registration, heartbeats, check results, Xid events.

Agents authenticate with a per-host token (``Host.set_agent_token``); the API
layer checks it before calling these. Every state change is recorded as an
``Event``; a fatal Xid cordons its GPU (or the host when the GPU is unknown)
and opens an ``Incident`` with the evidence and the jobs and tenants it hits.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Case, IntegerField, Value, When
from django.utils import timezone
from django.utils.translation import gettext_noop

from console.core import enqueue
from console.core.actions.hosts import do_cordon_gpu, do_cordon_host
from console.core.actions.inventory import do_register_host
from console.core.actions.workflow import do_begin_teardown
from console.core.agent_input import latency_endpoint_allowed
from console.core.choices import (
    ACTIVE_JOB_STATES,
    EventKind,
    FaultKind,
    HostState,
    Hypervisor,
    JobState,
    TeardownOutcome,
)
from console.core.models import CheckResult, Event, FirmwareBaseline, Gpu, Host, Incident, Job
from coupler_common.naming import job_id_of_domain
from hostagent import sim
from hostagent.protocol import CheckResult as CheckMessage
from hostagent.protocol import ChecksResult, Heartbeat, XidEvent, decode
from hostagent.sim import roots as sim_roots
from hostagent.xid import HARDWARE_XIDS, LAUNCH_FAILED_XIDS

log = logging.getLogger(__name__)



def do_issue_agent_token(host: Host, *, actor: str) -> str:
    """A new token for the host's agent (the old one stops working); returns it once."""
    with transaction.atomic():
        host = Host.objects.select_for_update().get(pk=host.pk)
        token = host.set_agent_token()
        host.save(update_fields=["agent_token_hash"])
        Event.objects.create(host=host, kind=EventKind.AGENT_TOKEN, actor=actor,
                             reason="agent token issued")
    return token


# Host.facts keys the watchdog leaves on an OFFLINE host: the state (and its reason)
# it had, restored on the first heartbeat so an admin's or a fault's cordon survives.
STATE_BEFORE_OFFLINE = "state_before_offline"
REASON_BEFORE_OFFLINE = "state_reason_before_offline"


def _mark_online(host: Host, now: datetime) -> None:
    """Record the heartbeat; an OFFLINE host gets back the state it had when the
    watchdog took it offline (READY only if it was READY). ``host`` must be locked;
    its in-memory ``facts`` are kept in step with the row."""
    fields: dict = {"last_heartbeat": now}
    if host.state == HostState.OFFLINE:
        facts = dict(host.facts or {})
        before = facts.pop(STATE_BEFORE_OFFLINE, None)
        reason = str(facts.pop(REASON_BEFORE_OFFLINE, "") or "")
        if before not in (HostState.READY, HostState.CORDONED, HostState.DRAINING):
            # Offline before this was recorded (or by hand): keep it out of service
            # rather than guess it was READY; an admin uncordons it.
            before = HostState.CORDONED if before else HostState.READY
            if before == HostState.CORDONED:
                reason = "back online; state before going offline unknown"
        if before == HostState.READY:
            reason = ""
        host.facts = facts
        fields.update(state=before, state_reason=reason[:500], facts=facts)
        Event.objects.create(host=host, kind=EventKind.ONLINE, from_state=HostState.OFFLINE,
                             to_state=before, actor=f"agent:{host.name}",
                             reason=("heartbeats resumed" if before == HostState.READY
                                     else f"heartbeats resumed; {before} again: {reason}")
                             [:1000])
        host.state, host.state_reason = before, reason[:500]
        enqueue.request_scheduling_cycle()
    Host.objects.filter(pk=host.pk).update(**fields)


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
    candidates = (
        Host.objects.filter(cluster_id=host.cluster_id, state=HostState.READY)
        .exclude(pk=host.pk).exclude(latency_endpoint="")
        .annotate(other_rack=Case(When(group=host.group, then=Value(0)), default=Value(1),
                                  output_field=IntegerField()))
        .order_by("other_rack", "name")
        .values_list("latency_endpoint", flat=True)
    )
    peers: list[str] = []
    for endpoint in candidates.iterator():
        endpoint = clean_latency_endpoint(endpoint)
        # One agent may serve several hosts (the demo): measure each endpoint once.
        if endpoint and endpoint not in peers:
            peers.append(endpoint)
            if len(peers) >= limit:
                break
    return peers


def do_agent_register(host: Host, *, inventory: dict, libvirt_uri: str = "",
                      agent_version: str = "", latency_endpoint: str = "",
                      protocol_version: int = 1, hypervisor: dict | None = None) -> Host:
    """The agent (re)starts: refresh the inventory if it sent one; the host is online.
    ``latency_endpoint`` (its echo responder, "" for none) replaces the stored one;
    ``protocol_version`` (the registration's) is the one commands are written in;
    ``hypervisor`` (its KVM probe, hostagent.actions.hypervisor_facts) sets
    ``Host.hypervisor`` before the first heartbeat."""
    with transaction.atomic():
        if inventory and inventory.get("gpus") is not None:
            host = do_register_host(cluster=host.cluster, name=host.name, inventory=inventory,
                                    actor=f"agent:{host.name}", simulated=host.simulated,
                                    libvirt_uri=libvirt_uri)
        elif libvirt_uri:
            Host.objects.filter(pk=host.pk).update(libvirt_uri=libvirt_uri)
        host = Host.objects.select_for_update().get(pk=host.pk)
        facts = dict(host.facts or {})
        facts["agent_version"] = agent_version
        facts["protocol_version"] = protocol_version
        if isinstance(hypervisor, dict):
            facts["hypervisor"] = hypervisor
        host.latency_endpoint = clean_latency_endpoint(latency_endpoint)
        Host.objects.filter(pk=host.pk).update(facts=facts, hypervisor=_hypervisor(host, facts),
                                               latency_endpoint=host.latency_endpoint)
        host.facts = facts
        _mark_online(host, timezone.now())
        Event.objects.create(host=host, kind=EventKind.AGENT_REGISTER, actor=f"agent:{host.name}",
                             reason=f"agent {agent_version or '?'} registered")
    host.refresh_from_db()
    return host


def _record_checks(host: Host, checks: tuple[CheckMessage, ...], now: datetime) -> bool:
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


def checks_root(host: Host) -> str:
    """Where the host's checks read from: an explicit ``facts["checks_root"]``; for a
    simulated host, the tree of its own machine (``hostagent.sim.roots.kind_root``:
    its kind's board, BIOS, driver and VBIOS with its misconfiguration
    ``facts["sim_root"]``, built under ``var/sim-roots/`` — the one its agent is
    configured with); else the host's own ``/``."""
    facts = host.facts or {}
    if facts.get("checks_root"):
        return str(facts["checks_root"])
    if facts.get("sim_root") or host.simulated:
        variant = facts.get("sim_root") or "good"
        if facts.get("kind") in sim.KINDS:
            return str(sim_roots.kind_root(settings.VAR_DIR / "sim-roots", facts["kind"], variant))
        return str(sim.root_path(variant))
    return "/"


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
        changed = _record_checks(host, checks, timezone.now())
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


def _jobs_on(host: Host, gpu: Gpu | None) -> list[Job]:
    jobs = Job.objects.filter(state__in=ACTIVE_JOB_STATES, allocations__host=host)
    if gpu is not None:
        jobs = jobs.filter(allocations__gpu=gpu)
    return list(jobs.select_related("tenant").distinct())


def event_time(timestamp: str | None, *, now: datetime | None = None) -> datetime | None:
    """The wall-clock time of a kernel-log line's timestamp (``hostagent.xid``: ISO,
    ``dmesg --ctime``, syslog without a year), aware; None for dmesg's seconds since
    boot, no timestamp, or one that does not parse. Naive times are the console's
    time zone; a syslog time is in the current year (the previous one if that is
    in the future)."""
    text = (timestamp or "").strip()
    if not text:
        return None
    now = now or timezone.now()
    parsed = None
    try:
        parsed = datetime.fromisoformat(text.replace(",", ".").replace("Z", "+00:00"))
    except ValueError:
        words = " ".join(text.split())
        for value, fmt in ((words, "%a %b %d %H:%M:%S %Y"),
                           (f"{now.year} {words}", "%Y %b %d %H:%M:%S")):
            try:
                parsed = datetime.strptime(value, fmt)
            except ValueError:
                continue
            break
    if parsed is None:
        return None
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, timezone.get_current_timezone())
        if len(text) <= 15 and parsed > now + timedelta(days=1):
            parsed = parsed.replace(year=parsed.year - 1)  # a syslog line from last year
    return parsed


def do_handle_xid(host: Host, event: XidEvent) -> Incident | None:
    """Classify one kernel-log event and open an Incident. Hardware: cordon the GPU
    (unknown GPU: the host) and requeue its jobs. Application: fail only the jobs that
    held the named GPU when the line was logged (``running_at`` no later than the
    event's time, when it has one); a GPU we cannot resolve fails no job."""
    gpu = None
    if event.pci:
        # Xid lines name the device without its function ("PCI:0000:07:00");
        # the inventory stores "0000:07:00.0".
        pci = event.pci.lower()
        candidates = [pci] if pci.count(".") else [pci, f"{pci}.0"]
        gpu = Gpu.objects.filter(host=host, pci_address__in=candidates).first()
    raw = event.line.strip()
    if Incident.objects.filter(host=host, raw_lines=raw, xid=event.xid).exists():
        return None  # the same line reported again (agent retried a heartbeat)
    fatal = event.cordon or event.fault == FaultKind.HARDWARE or (event.xid in HARDWARE_XIDS)
    fault = event.fault if event.fault in FaultKind.values else FaultKind.UNKNOWN
    if fatal and fault == FaultKind.UNKNOWN:
        fault = FaultKind.HARDWARE
    if fatal:
        # Hardware: everyone on the GPU (or, unknown GPU, on the host) is moved off.
        jobs = _jobs_on(host, gpu)
    elif gpu is None:
        # An application fault we cannot tie to a GPU: whose process it was is
        # unknown, so no job is failed; the incident keeps the evidence.
        jobs = []
    else:
        # Only a job that held the GPU when the line was logged can have caused it.
        # Syslog and ctime stamps stop at the second: a job that started within the
        # second the line names may have caused it.
        at = event_time(event.timestamp)
        jobs = [j for j in _jobs_on(host, gpu) if j.running_at is not None
                and (at is None or j.running_at < at + timedelta(seconds=1))]
    where = f"{host.name} GPU{gpu.index} ({gpu.pci_address})" if gpu else host.name
    title = (f"Xid {event.xid} on {where}" if event.xid is not None
             else f"{event.kind.upper()} error on {where}")
    with transaction.atomic():
        incident = Incident.objects.create(
            host=host, gpu=gpu, title=title[:200], xid=event.xid, fault=fault,
            pci_address=(event.pci or "")[:16], raw_lines=raw,
            meaning=event.name or event.message,
            # English at rest, marked so the pages show it in the reader's language
            recommended_action=event.action or (
                gettext_noop("Drain the GPU, reset it or replace it.") if fatal
                else gettext_noop("Check the application; the GPU stays in service.")),
            runbook="cuda_launch_failed" if event.xid in LAUNCH_FAILED_XIDS else "",
            runbook_evidence={"kernel_log": [raw], "timestamp": event.timestamp,
                              "pid": event.pid, "process": event.process},
        )
        incident.jobs.set(jobs)
        incident.tenants.set({j.tenant for j in jobs})
        actor = f"agent:{host.name}"
        if fatal:
            if gpu is not None:
                if not gpu.cordoned:
                    do_cordon_gpu(gpu, actor=actor, reason=title)
            elif host.state == HostState.READY:
                do_cordon_host(host, actor=actor, reason=title)
            for job in jobs:
                do_begin_teardown(job.pk, TeardownOutcome.PREEMPTED, actor=actor,
                                  reason=f"hardware fault: {title}; requeued elsewhere")
        else:
            for job in jobs:
                do_begin_teardown(job.pk, TeardownOutcome.FAILED, actor=actor,
                                  reason=f"application fault: {title}",
                                  failure_reason=f"{title}: {event.name or event.message}")
    return incident


def _reported_facts(facts: dict, beat: Heartbeat, at: str) -> dict:
    """``facts`` with what this heartbeat reports (domains, agent and protocol version).
    ``reported_domains.at`` moves only when the domains changed: the same report is
    confirmed by every later ``last_heartbeat`` (the reconciler reads the later of
    the two)."""
    facts = dict(facts or {})
    reported = {
        "running": sorted(beat.domains),
        "stopped": sorted(beat.stopped_domains or ()),
    }
    if beat.domain_states is not None:
        reported["states"] = dict(sorted(beat.domain_states.items()))
    if beat.console_tail is not None:
        reported["console"] = {
            name[:64]: [line[:300] for line in lines[-CONSOLE_LINES:]]
            for name, lines in beat.console_tail.items()}
    previous = facts.get("reported_domains") or {}
    if {k: v for k, v in previous.items() if k != "at"} != reported or "at" not in previous:
        facts["reported_domains"] = {"at": at, **reported}
    _record_vm_report(facts, beat)
    if beat.agent_version:
        facts["agent_version"] = beat.agent_version
    facts["protocol_version"] = beat.version
    return facts


def _reported_latency_endpoint(host: Host, beat: Heartbeat) -> str:
    """The echo responder this heartbeat advertises (the stored one if it says none)."""
    if beat.latency_endpoint is None:
        return host.latency_endpoint
    return clean_latency_endpoint(beat.latency_endpoint)


def do_agent_heartbeat(host: Host, body: Heartbeat | dict) -> dict:
    """Apply one heartbeat; returns a small summary for the agent, with the ``peers``
    and ``baseline`` of its next check round (``check_inputs_for_agent``) and
    the host's ``state``.

    The whole heartbeat is decoded first (``Heartbeat``): a malformed one raises
    SpecError and changes nothing. A heartbeat that changes nothing but the time
    (the usual one: same domains, no checks, no Xid, no domain stopped, host not
    offline) is one UPDATE of ``last_heartbeat``; anything else takes the host's
    lock and writes what changed."""
    beat = decode(Heartbeat, body)
    now = timezone.now()
    summary = {"incidents": 0, "finished": 0}
    ends = _domain_ends(beat)
    quiet = (host.state != HostState.OFFLINE and not beat.checks
             and not beat.xid_events and not ends
             and _reported_facts(host.facts, beat, now.isoformat()) == (host.facts or {})
             and _reported_latency_endpoint(host, beat) == host.latency_endpoint)
    if quiet:
        Host.objects.filter(pk=host.pk).update(last_heartbeat=now)
        summary.update(check_inputs_for_agent(host))
        summary["state"] = host.state
        return summary
    with transaction.atomic():
        host = Host.objects.select_for_update().get(pk=host.pk)
        _mark_online(host, now)
        facts = _reported_facts(host.facts, beat, now.isoformat())
        if facts != (host.facts or {}):
            Host.objects.filter(pk=host.pk).update(facts=facts, hypervisor=_hypervisor(host, facts))
            host.facts = facts
        endpoint = _reported_latency_endpoint(host, beat)
        if endpoint != host.latency_endpoint:
            Host.objects.filter(pk=host.pk).update(latency_endpoint=endpoint)
            host.latency_endpoint = endpoint
        if beat.checks and _record_checks(host, beat.checks, now):
            enqueue.request_scheduling_cycle()
    for event in beat.xid_events:
        if do_handle_xid(host, event) is not None:
            summary["incidents"] += 1
    # A domain that stopped by itself: the job's workload ended.
    for name, (succeeded, why) in ends.items():
        job = Job.objects.filter(
            state=JobState.RUNNING, allocations__host=host,
            pk=job_id_of_domain(name) or 0,
        ).first()
        if job is None:
            continue
        from console.core.actions.workflow import do_finish_job

        finished = do_finish_job(job.pk, succeeded=succeeded, actor=f"agent:{host.name}",
                                 reason=f"domain {name} {why} on {host.name}")
        if finished:
            summary["finished"] += 1
    summary.update(check_inputs_for_agent(host))
    summary["state"] = Host.objects.filter(pk=host.pk).values_list("state", flat=True).first()
    return summary


# libvirt domain states that end a job: a clean shutdown (SUCCEEDED) or a crash
# (FAILED). paused, blocked, pmsuspended, shutdown (in progress) leave it alone.
FINISHED_DOMAIN_STATES = ("shutoff", "crashed")


def _stopped_domain_states(beat: Heartbeat) -> dict[str, str]:
    """Domain name -> ``shutoff`` or ``crashed`` for the heartbeat's domains that ended.
    An agent that sends ``domain_states`` is read from it; an older agent, which only
    lists ``stopped_domains``, is taken to mean shut off (what it always meant)."""
    if beat.domain_states is not None:
        return {n: s for n, s in beat.domain_states.items() if s in FINISHED_DOMAIN_STATES}
    return {n: "shutoff" for n in beat.stopped_domains or ()}


def _domain_ends(beat: Heartbeat) -> dict[str, tuple[bool, str]]:
    """Domain name -> (succeeded, why) for the heartbeat's domains that ended. An
    agent that sends ``domain_ends`` judged each from libvirt's state *and reason*
    and the guest's exit status (hostagent.guest.outcome); an older one is read
    from its states: shutoff succeeded, crashed failed."""
    if beat.domain_ends is not None:
        return {name: (end.succeeded, ("ended: " if end.succeeded else "failed: ")
                       + (end.reason or "ended")[:300])
                for name, end in beat.domain_ends.items()}
    return {name: (state == "shutoff", "shut down" if state == "shutoff" else "crashed")
            for name, state in _stopped_domain_states(beat).items()}


CONSOLE_LINES = 20


def _record_vm_report(facts: dict, beat: Heartbeat) -> None:
    """A real host's report kept in its facts for the host and job pages: the
    hypervisor (kvm/qemu/test, warnings), a libvirt error. (Each domain's last console
    lines are kept with the reported domains.)"""
    if beat.hypervisor is not None:
        facts["hypervisor"] = beat.hypervisor
    if beat.libvirt_error:
        facts["libvirt_error"] = beat.libvirt_error[:500]
    else:
        facts.pop("libvirt_error", None)


def _hypervisor(host: Host, facts: dict) -> str:
    """``Host.hypervisor`` from the reported facts (a report without one keeps it)."""
    return Hypervisor.of_report(facts.get("hypervisor")) or host.hypervisor


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
    endpoints = _cached(f"coupler:latency-endpoints:{host.cluster_id}", ttl,
                        lambda: _ready_endpoints(host.cluster_id))
    board = host.board_name or ""
    board_key = hashlib.sha256(board.encode()).hexdigest()[:16]  # board names have spaces
    baseline = _cached(f"coupler:baseline:{board_key}", ttl,
                       lambda: {"value": firmware_baseline(host)})["value"]
    return {"peers": _peers_of(host, endpoints), "baseline": baseline}


def _cached(key: str, ttl: int, compute):
    value = cache.get(key)
    if value is None:
        value = compute()
        cache.set(key, value, ttl)
    return value


def _ready_endpoints(cluster_id: int) -> list[tuple[str, str, int, str]]:
    """(group, name, id, endpoint) of the cluster's READY hosts that advertise an echo
    responder, by name."""
    rows = (Host.objects.filter(cluster_id=cluster_id, state=HostState.READY)
            .exclude(latency_endpoint="")
            .order_by("name").values_list("group", "name", "pk", "latency_endpoint"))
    return [(group, name, pk, endpoint) for group, name, pk, endpoint in rows]


def _peers_of(host: Host, endpoints: list[tuple[str, str, int, str]],
              limit: int = LATENCY_PEERS) -> list[str]:
    """``latency_peers`` over the cluster's endpoints read once: same rack first, then by
    name, never the host itself, each endpoint once."""
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


def do_mark_host_offline(host: Host, *, reason: str, actor: str = "watchdog") -> list[int]:
    """A host stopped heartbeating: OFFLINE, and only its own jobs are moved off
    (requeued; their members on other hosts are cleaned up). Returns those job ids."""
    with transaction.atomic():
        host = Host.objects.select_for_update().get(pk=host.pk)
        if host.state == HostState.OFFLINE:
            return []
        Event.objects.create(host=host, kind=EventKind.OFFLINE, from_state=host.state,
                             to_state=HostState.OFFLINE, actor=actor, reason=reason[:1000])
        facts = dict(host.facts or {})
        facts[STATE_BEFORE_OFFLINE] = host.state
        facts[REASON_BEFORE_OFFLINE] = host.state_reason
        Host.objects.filter(pk=host.pk).update(state=HostState.OFFLINE,
                                               state_reason=reason[:500], facts=facts)
        moved = []
        for job in _jobs_on(host, None):
            if do_begin_teardown(job.pk, TeardownOutcome.PREEMPTED, actor=actor,
                                 reason=f"{host.name} offline ({reason}); requeued"):
                moved.append(job.pk)
        enqueue.request_scheduling_cycle()
    return moved
