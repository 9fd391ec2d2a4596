"""The host agent's Celery tasks, on the agent's own Celery app.

Each task gets fully specified inputs (the host's name and a ProvisionSpec or a
domain name), acts through ``hostagent.runtime`` and returns a plain dict.
When the console passed ``report_to`` (``{"task", "queue", "context"}``) the
agent also sends the outcome there as ``task(payload, context)``: that is how
the console learns of results without a worker blocking on a host.

Broker: ``COUPLER_BROKER_URL`` (or ``REDIS_URL``); without either, kombu's
filesystem transport in ``COUPLER_BROKER_DIR`` (``var/broker``), the same
folders as the console's default. Late acks: a task of a crashed agent is
redelivered, and every action is idempotent.

Every task arrives as one signed envelope (``hostagent.signing``): sent by the
console, addressed to a host this agent serves, signed with that host's key,
not expired and not seen before. Anything else is refused and logged, and has
no effect. Answers go back signed with the host's key, naming the host.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from celery import Celery

from hostagent import broker_acl, runtime, signing, transport

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


def open_command(task: str, signed: object) -> dict[str, Any]:
    """The verified arguments of a command, or ``signing.Refused``."""
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
    return opened.body


def report(report_to: dict[str, Any] | None, payload: dict[str, Any]) -> None:
    """Send the outcome to the console, signed as the host that acted."""
    if not report_to:
        return
    host = str(payload.get("host") or "")
    key = host_key(host)
    if key is None:
        log.error("no key for %r: answer not sent", host)
        return
    envelope = signing.seal({"payload": payload, "context": report_to.get("context") or {}},
                            sender=signing.host_principal(host), recipient=signing.CONSOLE,
                            task=report_to["task"], key=key)
    app.send_task(report_to["task"], args=[envelope],
                  queue=report_to.get("queue") or "workflow")


def _provision(host: str, spec: dict[str, Any], report_to: dict | None = None) -> dict[str, Any]:
    result = runtime.provision(host, spec)
    report(report_to, result)
    return result


def _teardown(host: str, name: str, job_id: str = "",
              report_to: dict | None = None) -> dict[str, Any]:
    result = runtime.teardown(host, name, job_id)
    report(report_to, result)
    return result


def _list_domains(host: str, report_to: dict | None = None,
                  with_xml: bool = False) -> dict[str, Any]:
    domains: list[dict[str, Any]] = list(runtime.list_domains(host))
    if with_xml:  # what libvirt really holds, e.g. to compare with the plan
        for d in domains:
            d["xml"] = runtime.domain_xml(host, d["name"])
    result = {"host": host, "ok": True, "domains": domains}
    report(report_to, result)
    return result


def _run_checks(host: str, root: str | None = None, baseline: dict[str, str] | None = None,
                peers: list[str] | None = None, report_to: dict | None = None) -> dict[str, Any]:
    result = {"host": host, "ok": True,
              "checks": runtime.run_checks(host, root=root, baseline=baseline, peers=peers or ())}
    report(report_to, result)
    return result


HANDLERS = {"hostagent.provision": _provision, "hostagent.teardown": _teardown,
            "hostagent.list_domains": _list_domains, "hostagent.run_checks": _run_checks}


def run_signed(task: str, signed: object) -> dict[str, Any]:
    try:
        kwargs = open_command(task, signed)
        return HANDLERS[task](**kwargs)
    except (signing.Refused, TypeError) as exc:
        # TypeError: a verified body whose arguments do not fit the task.
        log.warning("refused %s: %s", task, exc)
        return {"ok": False, "refused": True, "error": f"refused: {exc}"}


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


def run_inline(task_name: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Run a task in this process, without a broker (the console's eager mode):
    nothing crosses a wire, so there is no envelope to check."""
    return HANDLERS[task_name](**kwargs)
