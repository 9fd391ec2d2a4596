"""The host agent's Celery tasks, on the agent's own Celery app.

Each task gets one command of ``hostagent.protocol`` (``COMMANDS``: the host's
name and a ProvisionSpec or a domain name), decoded and validated before
anything is done, acts through ``hostagent.runtime`` and returns a plain dict.
When the console passed ``report_to`` (``ReportTo``) the agent also sends the
outcome there (``RESULTS``), in the protocol version of the command, as
``task(payload, context)``: that is how the console learns of results without a
worker blocking on a host.

Broker: ``COUPLER_BROKER_URL`` (or ``REDIS_URL``); without either, kombu's
filesystem transport in ``COUPLER_BROKER_DIR`` (``var/broker``), the same
folders as the console's default. Late acks: a task of a crashed agent is
redelivered, and every action is idempotent.

Every task arrives as one signed envelope (``hostagent.protocol.signing``): sent by the
console, addressed to a host this agent serves, signed with that host's key,
not expired and not seen before. Anything else is refused and logged, and has
no effect. Answers go back signed with the host's key, naming the host.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

from celery import Celery

from coupler_common import broker_acl, transport
from hostagent import runtime
from hostagent.protocol import (
    COMMANDS,
    PROTOCOL_VERSION,
    RESULTS,
    ListDomainsCommand,
    Message,
    ProvisionCommand,
    ReportTo,
    RunChecksCommand,
    SpecError,
    TeardownCommand,
    decode,
    encode,
    peer_version,
    signing,
)

log = logging.getLogger(__name__)


def _broker_config() -> dict[str, Any]:
    url = os.environ.get("COUPLER_BROKER_URL") or os.environ.get("REDIS_URL") or ""
    if url:
        # A per-host broker user (manage.py broker_acl) keeps its own unacked keys.
        return {"broker_url": url,
                "broker_transport_options": {"visibility_timeout": 600,
                                             **broker_acl.transport_options(url)}}
    options = transport.filesystem_broker_options(
        os.environ.get("COUPLER_BROKER_DIR", "var/broker"))
    transport.ensure_folders(options)
    return {"broker_url": transport.BROKER_URL, "broker_transport_options": options}


# Not the current app: in a console process (eager tests) shared tasks stay on the console app.
app = Celery("coupler-hostagent", set_as_current=False)
app.conf.update(
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_ignore_result=True,
    broker_connection_retry_on_startup=True,
    # No remote control: its fanout channel would let any host broadcast to every
    # worker, and a per-host broker user has no pub/sub access at all.
    worker_enable_remote_control=False,
    **_broker_config(),
)


_replays = signing.ReplayGuard()


def host_key(name: str) -> bytes | None:
    """The message key of a host this agent serves (from its token); None otherwise."""
    token = runtime.host_config(name).token
    return signing.key_from_token(token) if token else None


def open_command(task: str, signed: object) -> Message:
    """The verified command (``hostagent.protocol.COMMANDS[task]``), or ``signing.Refused``;
    a verified body that is not a valid command raises ``SpecError``."""
    recipient = signed.get("to") if isinstance(signed, dict) else None
    if not isinstance(recipient, str) or not recipient.startswith("host:"):
        raise signing.Refused(f"addressed to {recipient!r}, not to a host")
    host = recipient.removeprefix("host:")
    opened = signing.open_envelope(
        signed, recipient=recipient, task=task, expected_sender=signing.CONSOLE,
        key_for=lambda _sender: host_key(host), first_time=_replays.first_time)
    if opened.body.get("host") != host:
        raise signing.Refused(f"command for host {opened.body.get('host')!r} "
                              f"inside an envelope to {recipient!r}")
    try:
        return decode(COMMANDS[task], opened.body)
    except SpecError as exc:
        _answer_malformed(task, opened.body, exc)
        raise


def report(report_to: ReportTo | None, payload: dict[str, Any], task: str,
           version: int = PROTOCOL_VERSION) -> None:
    """Send the outcome (``RESULTS[task]``) to the console, signed as the host that
    acted, in the protocol version of the console's command."""
    if report_to is None:
        return
    host = str(payload.get("host") or "")
    key = host_key(host)
    if key is None:
        log.error("no key for %r: answer not sent", host)
        return
    answer = encode(decode(RESULTS[task], payload), version)
    envelope = signing.seal({"payload": answer, "context": report_to.context},
                            sender=signing.host_principal(host), recipient=signing.CONSOLE,
                            task=report_to.task, key=key)
    app.send_task(report_to.task, args=[envelope], queue=report_to.queue or "workflow")


def _answer_malformed(task: str, body: dict[str, Any], exc: SpecError) -> None:
    """A signed provision or teardown the agent cannot read still gets an answer (a
    failure, nothing done), so the console fails or retries the job instead of
    waiting; when even its ``report_to`` is unreadable, the refusal is only logged."""
    if task not in ("hostagent.provision", "hostagent.teardown"):
        return
    try:
        report_to = decode(ReportTo, body.get("report_to"))
    except SpecError:
        return
    spec = body.get("spec") if isinstance(body.get("spec"), dict) else {}
    job_id = str(body.get("job_id") or spec.get("job_id") or "")
    payload = {"job_id": job_id, "host": str(body["host"]), "ok": False,
               "error": f"refused: {exc}"}
    version = body.get("version", 1)
    report(report_to, payload, task, peer_version(version))


def _provision(cmd: ProvisionCommand) -> dict[str, Any]:
    return runtime.provision(cmd.host, cmd.spec)


def _teardown(cmd: TeardownCommand) -> dict[str, Any]:
    return runtime.teardown(cmd.host, cmd.name, cmd.job_id)


def _list_domains(cmd: ListDomainsCommand) -> dict[str, Any]:
    domains: list[dict[str, Any]] = list(runtime.list_domains(cmd.host))
    if cmd.with_xml:  # what libvirt really holds, e.g. to compare with the plan
        for d in domains:
            d["xml"] = runtime.domain_xml(cmd.host, d["name"])
    return {"host": cmd.host, "ok": True, "domains": domains}


def _run_checks(cmd: RunChecksCommand) -> dict[str, Any]:
    return {"host": cmd.host, "ok": True,
            "checks": runtime.run_checks(cmd.host, root=cmd.root, baseline=cmd.baseline,
                                         peers=cmd.peers)}


HANDLERS: dict[str, Callable[[Any], dict[str, Any]]] = {
    "hostagent.provision": _provision, "hostagent.teardown": _teardown,
    "hostagent.list_domains": _list_domains, "hostagent.run_checks": _run_checks}


def run_signed(task: str, signed: object) -> dict[str, Any]:
    try:
        command = open_command(task, signed)
    except (signing.Refused, SpecError) as exc:
        log.warning("refused %s: %s", task, exc)
        return {"ok": False, "refused": True, "error": f"refused: {exc}"}
    result = HANDLERS[task](command)
    report(command.report_to, result, task, peer_version(command.version))
    return result


@app.task(name="hostagent.provision")
def provision(signed: dict) -> dict[str, Any]:
    return run_signed("hostagent.provision", signed)


@app.task(name="hostagent.teardown")
def teardown(signed: dict) -> dict[str, Any]:
    return run_signed("hostagent.teardown", signed)


@app.task(name="hostagent.list_domains")
def list_domains(signed: dict) -> dict[str, Any]:
    return run_signed("hostagent.list_domains", signed)


@app.task(name="hostagent.run_checks")
def run_checks(signed: dict) -> dict[str, Any]:
    return run_signed("hostagent.run_checks", signed)


TASKS = {t.name: t for t in (provision, teardown, list_domains, run_checks)}


def run_inline(task_name: str, command: dict[str, Any]) -> dict[str, Any]:
    """Run a command in this process, without a broker (the console's eager mode,
    wired by ``coupler_demo.simhosts``): the command arrives in wire form and is
    decoded and validated as over the broker (``SpecError`` when malformed), and
    the answer leaves in wire form as its declared type (``RESULTS``). Nothing
    crosses a process boundary, so there is no envelope to check."""
    result = HANDLERS[task_name](decode(COMMANDS[task_name], command))
    return encode(decode(RESULTS[task_name], result))
