"""What host agents report: registration and heartbeats (check results are in
``agent_checks``, kernel-log faults in ``xid_events``).

Agents authenticate with a per-host token (``Host.set_agent_token``); the API
layer checks it before calling these. Every state change is recorded as an
``Event``; a fatal Xid cordons its GPU (or the host when the GPU is unknown)
and opens an ``Incident`` with the evidence and the jobs and tenants it hits.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from console.core import enqueue
from console.core.actions.agent_checks import (
    check_inputs_for_agent,
    clean_latency_endpoint,
    record_checks,
)
from console.core.actions.inventory import do_register_host
from console.core.actions.workflow import do_begin_teardown
from console.core.actions.xid_events import do_handle_xid, jobs_on_host
from console.core.choices import (
    CgroupLayout,
    EventKind,
    HostState,
    Hypervisor,
    JobState,
    TeardownOutcome,
)
from console.core.models import Event, Host, Job
from coupler_common.naming import job_id_of_domain
from hostagent.protocol import Heartbeat, decode

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
        Host.objects.filter(pk=host.pk).update(facts=facts, **_hypervisor_columns(host, facts),
                                               latency_endpoint=host.latency_endpoint)
        host.facts = facts
        _mark_online(host, timezone.now())
        Event.objects.create(host=host, kind=EventKind.AGENT_REGISTER, actor=f"agent:{host.name}",
                             reason=f"agent {agent_version or '?'} registered")
    host.refresh_from_db()
    return host


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


def _is_quiet(host: Host, beat: Heartbeat, now: datetime) -> bool:
    """The heartbeat changes nothing of ``host`` (as given) but the time: same domains,
    no checks, no Xid, no domain ended, the same echo responder."""
    return (not beat.checks and not beat.xid_events and not _domain_ends(beat)
            and _reported_facts(host.facts, beat, now.isoformat()) == (host.facts or {})
            and _reported_latency_endpoint(host, beat) == host.latency_endpoint)


# The quiet heartbeat's one statement (``do_agent_quiet_heartbeat``): the facts are
# compared as jsonb on PostgreSQL, as the text Django stored (json.dumps) on SQLite.
QUIET_HEARTBEAT_SQL = (
    'UPDATE "core_host" SET "last_heartbeat" = %s WHERE "id" = %s AND "name" = %s'
    ' AND "agent_token_hash" = %s AND "state" <> %s AND "cluster_id" = %s AND "group" = %s'
    ' AND "board_name" = %s AND "latency_endpoint" = %s AND "facts" = {facts}'
    ' RETURNING "state"')
_QUIET_SQL = {"postgresql": QUIET_HEARTBEAT_SQL.format(facts="%s::jsonb")}


def do_agent_quiet_heartbeat(seen: Host, beat: Heartbeat) -> dict | None:
    """A heartbeat that changes nothing, applied against ``seen`` — the host as the
    caller last read it (``do_agent_heartbeat`` said that beat was quiet) — with one
    statement: ``last_heartbeat`` is set only if the row still is ``seen`` in every
    field the quiet answer depends on (token hash, state not OFFLINE, cluster, rack,
    board, echo responder, facts). Returns the answer's summary (as
    ``do_agent_heartbeat``), or None — the beat changes something, or the row is no
    longer ``seen`` — and nothing was written: the caller applies it in full."""
    now = timezone.now()
    if not _is_quiet(seen, beat, now):
        return None
    sql = _QUIET_SQL.get(connection.vendor) or QUIET_HEARTBEAT_SQL.format(facts="%s")
    # The facts as the database wrote them (Django stores JSON with json.dumps); on
    # PostgreSQL jsonb compares by value, on SQLite a text that differs only means
    # the full path runs.
    params = [connection.ops.adapt_datetimefield_value(now), seen.pk, seen.name,
              seen.agent_token_hash, HostState.OFFLINE, seen.cluster_id, seen.group,
              seen.board_name, seen.latency_endpoint, json.dumps(seen.facts or {})]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    return {"incidents": 0, "finished": 0, **_kept_check_inputs(seen), "state": row[0]}


def _kept_check_inputs(seen: Host) -> dict:
    """``check_inputs_for_agent(seen)``, kept on ``seen`` (the caller's remembered host)
    for ``COUPLER_CHECK_INPUTS_CACHE_S``: a quiet heartbeat's answer carries the same
    peers and baseline as the host's last few, so they are at most twice that old (the
    shared cache keeps them as long)."""
    now = time.monotonic()
    kept = getattr(seen, "_kept_check_inputs", None)
    if kept is not None and kept[0] > now:
        return kept[1]
    inputs = check_inputs_for_agent(seen)
    seen._kept_check_inputs = (now + settings.COUPLER_CHECK_INPUTS_CACHE_S, inputs)
    return inputs


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
    summary = {"incidents": 0, "finished": 0, "quiet": False}
    ends = _domain_ends(beat)
    if host.state != HostState.OFFLINE and _is_quiet(host, beat, now):
        Host.objects.filter(pk=host.pk).update(last_heartbeat=now)
        summary.update(check_inputs_for_agent(host))
        summary["state"] = host.state
        summary["quiet"] = True
        return summary
    with transaction.atomic():
        host = Host.objects.select_for_update().get(pk=host.pk)
        _mark_online(host, now)
        facts = _reported_facts(host.facts, beat, now.isoformat())
        if facts != (host.facts or {}):
            Host.objects.filter(pk=host.pk).update(facts=facts, **_hypervisor_columns(host, facts))
            host.facts = facts
        endpoint = _reported_latency_endpoint(host, beat)
        if endpoint != host.latency_endpoint:
            Host.objects.filter(pk=host.pk).update(latency_endpoint=endpoint)
            host.latency_endpoint = endpoint
        if beat.checks and record_checks(host, beat.checks, now):
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


def _hypervisor_columns(host: Host, facts: dict) -> dict:
    """``Host.hypervisor``, ``cgroup_layout`` and ``hugetlbfs_1g`` from the agent's
    report (``facts["hypervisor"]``; a report without a value keeps the column's)."""
    report = facts.get("hypervisor")
    mounted = report.get("hugetlbfs_1g") if isinstance(report, dict) else None
    return {"hypervisor": Hypervisor.of_report(report) or host.hypervisor,
            "cgroup_layout": CgroupLayout.of_report(report) or host.cgroup_layout,
            "hugetlbfs_1g": mounted if isinstance(mounted, bool) else host.hugetlbfs_1g}


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
        for job in jobs_on_host(host, None):
            if do_begin_teardown(job.pk, TeardownOutcome.PREEMPTED, actor=actor,
                                 reason=f"{host.name} offline ({reason}); requeued"):
                moved.append(job.pk)
        enqueue.request_scheduling_cycle()
    return moved
