from console.api.views.hosts import ClusterViewSet, HostViewSet
from console.api.views.incidents import IncidentViewSet
from console.api.views.jobs import JobViewSet
from console.api.views.tenants import QuotaViewSet, TenantViewSet
from console.api.views.tokens import ApiTokenViewSet

__all__ = [
    "ApiTokenViewSet",
    "ClusterViewSet",
    "HostViewSet",
    "IncidentViewSet",
    "JobViewSet",
    "QuotaViewSet",
    "TenantViewSet",
]
