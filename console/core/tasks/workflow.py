"""Provisioning and teardown tasks (queue ``workflow``).

Thin and idempotent: each takes ids, asks ``console.core.actions.workflow``
what is still to be done according to the database, and sends the host
commands. A redelivered task re-sends only what has not been confirmed; hosts
take every command idempotently.
"""

import logging

from celery import shared_task

from console.core.actions import workflow as wf
from console.core.hostcalls import RESULT_TASK, send_host_task
from console.core.signed_messages import open_answer

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


@shared_task(name=RESULT_TASK)
def host_result(signed: dict, *_unsigned_context) -> bool:
    """A host's answer from the broker: applied only when signed by the host it names
    (``console.core.signed_messages``); an unsigned ``(payload, context)`` is refused."""
    answer = open_answer(signed, RESULT_TASK)
    if answer is None:
        return False
    return handle_host_result(answer.payload, answer.context)


@shared_task(name="console.core.tasks.workflow.provision_jobs")
def provision_jobs(job_ids: list[int]) -> int:
    """``provision_job`` for every job one scheduling cycle placed (one message per
    cycle instead of one per job); returns how many host commands were sent."""
    commands = wf.do_start_provisioning_many([int(j) for j in job_ids])
    for cmd in commands:
        send_host_task(
            cmd.host, "provision", {"spec": cmd.spec},
            {"op": "provision", "job_id": cmd.job_id, "attempt": cmd.attempt, "host": cmd.host},
        )
    return len(commands)
