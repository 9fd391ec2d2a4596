"""Host tasks: the heartbeat watchdog (beat), and re-running a host's checks."""

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from console.core.actions.agent_checks import do_record_host_checks, host_check_inputs
from console.core.actions.agents import do_mark_host_offline
from console.core.choices import HostState
from console.core.hostcalls import answer_handler, send_host_task
from console.core.models import Host
from console.core.signed_messages import open_answer
from hostagent.protocol import ChecksContext, ChecksResult, SpecError, decode

CHECKS_RESULT_TASK = "console.core.tasks.hosts.host_checks_result"
log = logging.getLogger("coupler.security")


def offline_hosts(timeout_s: float | None = None) -> dict[str, list[int]]:
    """Mark hosts whose last heartbeat is older than the timeout offline.

    A host that never heartbeated has no agent yet (just registered by an
    admin or the seed) and is left alone. Returns host name → requeued job ids.
    """
    timeout_s = timeout_s if timeout_s is not None else settings.COUPLER_HEARTBEAT_TIMEOUT_S
    cutoff = timezone.now() - timedelta(seconds=timeout_s)
    result = {}
    stale = Host.objects.filter(last_heartbeat__lt=cutoff).exclude(state=HostState.OFFLINE)
    for host in stale:
        age = (timezone.now() - host.last_heartbeat).total_seconds()
        result[host.name] = do_mark_host_offline(
            host, reason=f"no heartbeat for {age:.0f} s (timeout {timeout_s:.0f} s)"
        )
    return result


@shared_task(name="console.core.tasks.hosts.check_heartbeats")
def check_heartbeats() -> dict:
    return offline_hosts()


@shared_task(name="console.core.tasks.hosts.run_host_checks")
def run_host_checks(host_id: int, actor: str = "system") -> bool:
    """Send ``hostagent.run_checks`` (root, firmware baseline, peers) to ``host.<name>``.

    Idempotent: checks only read, so a redelivered task measures again and the
    answer (``host_checks_result``) overwrites the same CheckResult rows.
    """
    host = Host.objects.filter(pk=host_id).first()
    if host is None:
        return False
    send_host_task(host.name, "run_checks", host_check_inputs(host),
                   {"op": "checks", "host_id": host.pk, "requested_by": actor},
                   result_task=CHECKS_RESULT_TASK)
    return True


@answer_handler(CHECKS_RESULT_TASK)
def handle_checks_result(payload: dict, context: dict) -> bool:
    """Apply a check round's answer (``ChecksResult``) for the host of its context
    (``ChecksContext``); a malformed one is refused, logged, and changes nothing."""
    try:
        ctx = decode(ChecksContext, context)
        result = decode(ChecksResult, payload)
    except SpecError as exc:
        log.warning("refused check results: %s", exc)
        return False
    return do_record_host_checks(ctx.host_id, result, requested_by=ctx.requested_by)


@shared_task(name=CHECKS_RESULT_TASK)
def host_checks_result(signed: dict, *_unsigned_context) -> bool:
    """Check results from the broker: only a host's own, signed by it."""
    answer = open_answer(signed, CHECKS_RESULT_TASK)
    if answer is None:
        return False
    host_id = answer.context.get("host_id")
    if not Host.objects.filter(pk=host_id if isinstance(host_id, int) else -1,
                               name=answer.host).exists():
        log.warning("refused check results from %s for host id %r", answer.host, host_id)
        return False
    return handle_checks_result(answer.payload, answer.context)
