"""Provisioning and teardown tasks (queue ``workflow``).

Thin and idempotent: each takes ids, asks ``console.core.actions.workflow``
what is still to be done according to the database, and sends the host
commands. A redelivered task re-sends only what has not been confirmed; hosts
take every command idempotently.
"""

import logging

from celery import shared_task

from console.core.actions import workflow as wf
from console.core.hostcalls import RESULT_TASK, answer_handler, send_host_task
from console.core.signed_messages import open_answer
from hostagent.protocol import (
    JobContext,
    ProvisionResult,
    SpecError,
    TeardownResult,
    decode,
    encode,
)

log = logging.getLogger(__name__)


@shared_task(name="console.core.tasks.workflow.provision_job")
def provision_job(job_id: int) -> int:
    """Send every member's provision spec; returns how many were sent."""
    commands = wf.do_start_provisioning(job_id)
    for cmd in commands:
        send_host_task(
            cmd.host, "provision", {"spec": cmd.spec},
            encode(JobContext(op="provision", job_id=job_id, generation=cmd.generation,
                              host=cmd.host)),
        )
    return len(commands)


@shared_task(name="console.core.tasks.workflow.teardown_job")
def teardown_job(job_id: int) -> int:
    """Send every member still up a teardown; finish at once when none is left."""
    commands = wf.teardown_commands(job_id)
    for cmd in commands:
        send_host_task(
            cmd.host, "teardown", {"name": cmd.domain, "job_id": str(job_id)},
            encode(JobContext(op="teardown", job_id=job_id, generation=cmd.generation,
                              host=cmd.host)),
        )
    if not commands:
        wf.do_finish_teardown_if_clean(job_id)
    return len(commands)


@answer_handler(RESULT_TASK)
def handle_host_result(payload: dict, context: dict) -> bool:
    """Apply one host's answer (see ``console.core.hostcalls``): the context the
    console gave (``JobContext``) and the answer (``ProvisionResult`` or
    ``TeardownResult``), both decoded before anything is applied; a malformed one
    is refused, logged, and changes nothing."""
    try:
        ctx = decode(JobContext, context)
        result_type = ProvisionResult if ctx.op == "provision" else TeardownResult
        answer = decode(result_type, payload)
    except SpecError as exc:
        log.warning("refused a host answer: %s", exc)
        return False
    host = answer.host or ctx.host
    if ctx.op == "provision":
        if answer.ok:
            return wf.do_record_member_up(ctx.job_id, host, ctx.generation,
                                          domain=answer.domain, state=answer.state,
                                          evidence=answer.evidence or None)
        return wf.do_record_member_failed(ctx.job_id, host, ctx.generation,
                                          error=answer.error or "unknown error")
    if answer.ok:
        return wf.do_record_member_down(ctx.job_id, host, ctx.generation)
    # The host could not clean up: leave the job in TEARDOWN; the reconciler retries.
    log.warning("teardown of job %s on %s failed: %s", ctx.job_id, host, answer.error)
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
            encode(JobContext(op="provision", job_id=cmd.job_id, generation=cmd.generation,
                              host=cmd.host)),
        )
    return len(commands)
