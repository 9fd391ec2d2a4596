"""Names that the console and the host agent must spell the same way: a job's
libvirt domain (also the name of its cgroup under the agent's slice and of its
state directory), and a host's Celery queue."""

from __future__ import annotations

__all__ = ["CGROUP_SLICE", "DOMAIN_PREFIX", "domain_name", "host_queue", "job_id_of_domain"]

# Every domain Coupler defines starts with this; the agent lists and reconciles
# only those, and leaves any other domain on the host alone.
DOMAIN_PREFIX = "coupler-job-"
# The cgroup v2 slice under which the agent creates one group per domain.
CGROUP_SLICE = "coupler.slice"
HOST_QUEUE_PREFIX = "host."


def domain_name(job_id: int) -> str:
    """Job 42 -> ``"coupler-job-42"``."""
    return f"{DOMAIN_PREFIX}{int(job_id)}"


def job_id_of_domain(name: str) -> int | None:
    """``"coupler-job-42"`` -> 42; a domain that is not one of ours -> None."""
    rest = name[len(DOMAIN_PREFIX):] if name.startswith(DOMAIN_PREFIX) else ""
    return int(rest) if rest.isascii() and rest.isdigit() else None


def host_queue(host_name: str) -> str:
    """The queue a host's agent consumes: ``"host.<name>"``."""
    return f"{HOST_QUEUE_PREFIX}{host_name}"
