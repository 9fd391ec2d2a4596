"""List filters shared by the REST API and the console's list pages.

One filterset per list (NetBox's ``dcim/filtersets.py``): the API viewsets use
them through django-filter's DRF backend, the UI views instantiate them with
``FilterSet(request.GET, queryset=..., request=request)``. A filter that
names a tenant only offers the tenants the requesting user may see, so a
filter can never confirm that another tenant exists.
"""

import django_filters
from django.db.models import Q

from console.core.choices import (
    FaultKind,
    HostState,
    Hypervisor,
    IncidentState,
    JobState,
    QuotaResource,
)
from console.core.models import Cluster, Host, Incident, Job, Quota, Tenant


def visible_tenants(request):
    """Tenants offered by a tenant filter: the requesting user's, all for staff."""
    if request is None:
        return Tenant.objects.none()
    return Tenant.objects.for_user(request.user)


class TenantFilterSet(django_filters.FilterSet):
    name = django_filters.CharFilter(lookup_expr="icontains")

    class Meta:
        model = Tenant
        fields = ["name", "slug"]


class QuotaFilterSet(django_filters.FilterSet):
    tenant = django_filters.ModelChoiceFilter(
        queryset=visible_tenants, to_field_name="slug", help_text="Tenant slug."
    )
    resource = django_filters.ChoiceFilter(choices=QuotaResource.choices)

    class Meta:
        model = Quota
        fields = ["tenant", "resource", "gpu_model"]


class ClusterFilterSet(django_filters.FilterSet):
    name = django_filters.CharFilter(lookup_expr="icontains")

    class Meta:
        model = Cluster
        fields = ["name", "slug"]


class HostFilterSet(django_filters.FilterSet):
    cluster = django_filters.ModelChoiceFilter(
        queryset=Cluster.objects.all(), to_field_name="slug", help_text="Cluster slug."
    )
    name = django_filters.CharFilter(lookup_expr="icontains", help_text="Name contains.")
    state = django_filters.MultipleChoiceFilter(choices=HostState.choices)
    hypervisor = django_filters.ChoiceFilter(
        choices=Hypervisor.choices, help_text="kvm, or qemu (TCG emulation).")
    group = django_filters.CharFilter(help_text="Rack or leaf switch.")
    gpu_model = django_filters.CharFilter(
        method="filter_gpu_model", help_text="Hosts with at least one GPU of this model."
    )

    class Meta:
        model = Host
        fields = ["cluster", "name", "state", "hypervisor", "group", "gpu_model", "simulated"]

    def filter_gpu_model(self, queryset, name, value):
        # Contains, any case: "a100" finds A100-SXM4-40GB.
        return queryset.filter(gpus__model__icontains=value).distinct()


class JobFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", help_text="Name contains, or the job id.")
    tenant = django_filters.ModelChoiceFilter(
        queryset=visible_tenants, to_field_name="slug", help_text="Tenant slug."
    )
    state = django_filters.MultipleChoiceFilter(choices=JobState.choices)
    name = django_filters.CharFilter(lookup_expr="icontains", help_text="Name contains.")
    gpu_model = django_filters.CharFilter(lookup_expr="icontains", help_text="Model contains.")
    host = django_filters.CharFilter(
        method="filter_host", help_text="Jobs holding resources on a host whose name contains this."
    )
    preemptible = django_filters.BooleanFilter()
    submitted_after = django_filters.IsoDateTimeFilter(
        field_name="submitted_at", lookup_expr="gte", help_text="Submitted at or after."
    )
    submitted_before = django_filters.IsoDateTimeFilter(
        field_name="submitted_at", lookup_expr="lt", help_text="Submitted before."
    )
    ordering = django_filters.OrderingFilter(
        fields=(
            ("id", "id"),
            ("submitted_at", "submitted_at"),
            ("priority", "priority"),
            ("name", "name"),
            ("state", "state"),
            ("tenant__name", "tenant"),
        )
    )

    class Meta:
        model = Job
        fields = ["tenant", "state", "name", "gpu_model", "preemptible"]

    def search(self, queryset, name, value):
        condition = Q(name__icontains=value)
        if value.isascii() and value.isdigit() and int(value) < 2**63:
            condition |= Q(pk=int(value))
        return queryset.filter(condition)

    def filter_host(self, queryset, name, value):
        return queryset.filter(allocations__host__name__icontains=value).distinct()


class IncidentFilterSet(django_filters.FilterSet):
    state = django_filters.ChoiceFilter(choices=IncidentState.choices)
    fault = django_filters.ChoiceFilter(choices=FaultKind.choices)
    host = django_filters.CharFilter(field_name="host__name", help_text="Host name.")
    opened_after = django_filters.IsoDateTimeFilter(field_name="opened_at", lookup_expr="gte")
    opened_before = django_filters.IsoDateTimeFilter(field_name="opened_at", lookup_expr="lt")

    class Meta:
        model = Incident
        fields = ["state", "fault", "host"]
