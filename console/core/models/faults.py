from django.conf import settings
from django.db import models
from django.utils.translation import gettext as _

from console.core.choices import FaultKind, IncidentState
from console.core.models.scoping import TenantScopedQuerySet


class IncidentQuerySet(TenantScopedQuerySet):
    """Admins see every incident; a member sees those touching their tenants."""

    tenant_path = "tenants"
    distinct_rows = True


class Incident(models.Model):
    """A fault with its evidence: raw kernel lines, the GPU, what is affected."""

    host = models.ForeignKey("core.Host", on_delete=models.CASCADE, related_name="incidents")
    gpu = models.ForeignKey(
        "core.Gpu", on_delete=models.SET_NULL, null=True, blank=True, related_name="incidents"
    )
    title = models.CharField(max_length=200)
    xid = models.PositiveIntegerField(null=True, blank=True)
    fault = models.CharField(max_length=16, choices=FaultKind.choices, default=FaultKind.UNKNOWN)
    pci_address = models.CharField(max_length=16, blank=True)
    raw_lines = models.TextField(blank=True)
    meaning = models.TextField(blank=True)
    recommended_action = models.TextField(blank=True)
    # Which runbook guides the operator (e.g. cuda_launch_failed), with the
    # evidence gathered for each of its steps.
    runbook = models.CharField(max_length=64, blank=True)
    runbook_evidence = models.JSONField(default=dict, blank=True)
    state = models.CharField(
        max_length=16, choices=IncidentState.choices, default=IncidentState.OPEN
    )
    jobs = models.ManyToManyField("core.Job", blank=True, related_name="incidents")
    tenants = models.ManyToManyField("core.Tenant", blank=True, related_name="incidents")
    opened_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    resolution = models.CharField(max_length=1000, blank=True)

    objects = IncidentQuerySet.as_manager()

    class Meta:
        ordering = ["-opened_at", "-id"]

    def __str__(self) -> str:
        return self.title

    def heading(self) -> str:
        """The title in the reader's language, built from the incident's fields
        (``title`` keeps the English one written when it opened: logs and the API)."""
        if self.gpu_id is not None:
            where = _("%(host)s GPU%(index)s (%(pci)s)") % {
                "host": self.host.name, "index": self.gpu.index, "pci": self.gpu.pci_address}
        else:
            where = self.host.name
        if self.xid is not None:
            return _("Xid %(xid)s on %(where)s") % {"xid": self.xid, "where": where}
        # AER, KVM …: the kernel's own names, as the English title starts
        kind, sep, _rest = self.title.partition(" error on ")
        if not sep:
            return self.title
        return _("%(kind)s error on %(where)s") % {"kind": kind, "where": where}
