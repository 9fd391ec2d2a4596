"""Close an incident and, if the operator says so, return its GPU and host to
service. Every step is an audit Event on the host."""

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from console.core.actions.hosts import do_uncordon_gpu, do_uncordon_host
from console.core.choices import EventKind, HostState, IncidentState
from console.core.models import Event, Incident


class IncidentActionError(Exception):
    pass


def do_resolve_incident(
    incident: Incident,
    actor,
    resolution: str,
    release_gpu: bool = True,
    uncordon_host: bool = False,
) -> Incident:
    """Mark the incident resolved with the operator's resolution; optionally
    uncordon its GPU (``release_gpu``) and its host (``uncordon_host``)."""
    resolution = resolution.strip()
    if not resolution:
        raise IncidentActionError("A resolution says what was found and done.")
    user = actor if isinstance(actor, AbstractBaseUser) else None
    name = actor.get_username() if user is not None else str(actor)
    with transaction.atomic():
        incident = Incident.objects.select_for_update(of=("self",)).select_related("host", "gpu").get(
            pk=incident.pk
        )
        if incident.state == IncidentState.RESOLVED:
            raise IncidentActionError(f"Incident {incident.pk} is already resolved.")
        incident.state = IncidentState.RESOLVED
        incident.resolved_at = timezone.now()
        incident.resolved_by = user
        incident.resolution = resolution[:1000]
        incident.save(update_fields=["state", "resolved_at", "resolved_by", "resolution"])
        Event.objects.create(
            host=incident.host,
            kind=EventKind.INCIDENT_RESOLVED,
            reason=f"incident #{incident.pk} ({incident.title}): {resolution}"[:1000],
            actor=name,
            data={"incident": incident.pk, "release_gpu": release_gpu,
                  "uncordon_host": uncordon_host},
        )
        # Another open incident on the same GPU or host keeps it out of service.
        others = Incident.objects.filter(state=IncidentState.OPEN).exclude(pk=incident.pk)
        gpu_held = incident.gpu is not None and others.filter(gpu=incident.gpu).exists()
        host_held = others.filter(host=incident.host).exists()
        if release_gpu and incident.gpu is not None and incident.gpu.cordoned:
            if gpu_held:
                Event.objects.create(
                    host=incident.host, kind=EventKind.INCIDENT_RESOLVED, actor=name,
                    reason=f"GPU{incident.gpu.index} stays cordoned: another incident on it "
                    "is still open",
                    data={"incident": incident.pk},
                )
            else:
                do_uncordon_gpu(incident.gpu, actor=name,
                                reason=f"returned to service: incident #{incident.pk} resolved")
        if (uncordon_host and not host_held
                and incident.host.state in (HostState.CORDONED, HostState.DRAINING)):
            do_uncordon_host(incident.host, actor=name,
                             reason=f"returned to service: incident #{incident.pk} resolved")
    incident.refresh_from_db()
    return incident
