"""Provisioning and teardown tasks (queue ``workflow``).

Thin and idempotent: each takes ids, asks ``console.core.actions.workflow``
what is still to be done according to the database, and sends the host
commands. A redelivered task re-sends only what has not been confirmed; hosts
take every command idempotently.
"""

import logging

from celery import shared_task

from console.core.actions import workflow as wf
from console.core.hostcalls import send_host_task

log = logging.getLogger(__name__)


@shared_task(name="console.core.tasks.workflow.provision_job")
def provision_job(job_id: int) -> int:
    """Send every member's provision spec; returns how many were sent."""
    commands = wf.do_start_provisioning(job_id)
    for cmd in commands:
        send_host_task(
            cmd.host, "provision", {"spec": cmd.spec},
            {"op": "provision", "job_id": job_id, "attempt": cmd.attempt, "host": cmd.host},
        )
    return len(commands)


@shared_task(name="console.core.tasks.workflow.teardown_job")
def teardown_job(job_id: int) -> int:
    """Send every member still up a teardown; finish at once when none is left."""
    commands = wf.teardown_commands(job_id)
    for cmd in commands:
        send_host_task(
            cmd.host, "teardown", {"name": cmd.domain, "job_id": str(job_id)},
            {"op": "teardown", "job_id": job_id, "attempt": cmd.attempt, "host": cmd.host},
        )
    if not commands:
        wf.do_finish_teardown_if_clean(job_id)
    return len(commands)


def handle_host_result(payload: dict, context: dict) -> bool:
    """Apply one host's answer (see ``console.core.hostcalls``)."""
    op = context.get("op")
    job_id = int(context["job_id"])
    attempt = int(context.get("attempt", 0))
    host = str(payload.get("host") or context.get("host", ""))
    ok = bool(payload.get("ok"))
    if op == "provision":
        if ok:
            return wf.do_record_member_up(job_id, host, attempt, domain=payload.get("domain", ""),
                                          state=payload.get("state", ""),
                                          evidence=payload.get("evidence") or None)
        return wf.do_record_member_failed(job_id, host, attempt,
                                          error=payload.get("error") or "unknown error")
    if op == "teardown":
        if ok:
            return wf.do_record_member_down(job_id, host, attempt)
        # The host could not clean up: leave the job in TEARDOWN; the reconciler retries.
        log.warning("teardown of job %s on %s failed: %s", job_id, host, payload.get("error"))
        return False
    log.warning("host result with unknown op %r ignored", op)
    return False


@shared_task(name="console.core.tasks.workflow.host_result")
def host_result(payload: dict, context: dict) -> bool:
    return handle_host_result(payload, context)
