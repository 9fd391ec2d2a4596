"""Heartbeat watchdog (beat): hosts that stopped reporting go offline."""

from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from console.core.actions.agents import do_mark_host_offline
from console.core.choices import HostState
from console.core.models import Host


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
