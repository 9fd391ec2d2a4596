"""What of a host a user may read: one rule for the console's host page and the API."""

from console.core.models import Host

# Host facts a tenant member may see: the machine's hardware, nothing the agents
# report at run time (``reported_domains`` names other tenants' jobs,
# ``latency_endpoint`` is the agent's address).
MEMBER_HOST_FACTS = ("kind", "board_name", "bios_version", "driver_version", "vbios")


def is_staff(user) -> bool:
    return bool(user is not None and getattr(user, "is_staff", False))


def host_facts_for(host: Host, user) -> dict:
    """Every fact for staff; the hardware facts (MEMBER_HOST_FACTS) for anyone else."""
    facts = host.all_facts()
    if is_staff(user):
        return dict(facts)
    return {key: facts[key] for key in MEMBER_HOST_FACTS if key in facts}
