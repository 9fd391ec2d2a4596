from console.api.views.hosts import CapacityViewSet, ClusterViewSet, HostViewSet
from console.api.views.incidents import IncidentViewSet
from console.api.views.jobs import JobViewSet
from console.api.views.tenants import QuotaViewSet, TenantViewSet

__all__ = [
    "CapacityViewSet",
    "ClusterViewSet",
    "HostViewSet",
    "IncidentViewSet",
    "JobViewSet",
    "QuotaViewSet",
    "TenantViewSet",
]
