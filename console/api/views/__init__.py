from console.api.views.hosts import CapacityViewSet, ClusterViewSet, HostViewSet
from console.api.views.images import ImageViewSet
from console.api.views.incidents import IncidentViewSet
from console.api.views.jobs import JobViewSet
from console.api.views.tenants import QuotaViewSet, TenantViewSet
from console.api.views.tokens import ApiTokenViewSet

__all__ = [
    "ApiTokenViewSet",
    "CapacityViewSet",
    "ClusterViewSet",
    "HostViewSet",
    "ImageViewSet",
    "IncidentViewSet",
    "JobViewSet",
    "QuotaViewSet",
    "TenantViewSet",
]
