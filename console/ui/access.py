"""Who may see what: tenant-scoped lookups answer 404 across tenants, admin
pages answer 403 to members, and every page needs a login."""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _

from console.core.models import Host, Incident, Job, Tenant


def staff_required(view):
    """Log in first (redirect), then admins only (403 for tenant members)."""

    @login_required
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not request.user.is_staff:
            raise PermissionDenied(_("Only platform admins can do this."))
        return view(request, *args, **kwargs)

    return wrapped


def get_job_for_user(user, pk) -> Job:
    return get_object_or_404(Job.objects.for_user(user).select_related("tenant"), pk=pk)


def get_tenant_for_user(user, slug) -> Tenant:
    return get_object_or_404(Tenant.objects.for_user(user), slug=slug)


def get_incident_for_user(user, pk) -> Incident:
    return get_object_or_404(
        Incident.objects.for_user(user).select_related("host", "gpu", "resolved_by"), pk=pk
    )


def get_host(name) -> Host:
    """Hosts are shared infrastructure: every signed-in user may read them; what
    runs on them is filtered per tenant by the views. A name with a NUL byte names
    no host (PostgreSQL would refuse the query: a 500)."""
    if "\x00" in name:
        raise Http404
    return get_object_or_404(Host.objects.select_related("cluster"), name=name)
