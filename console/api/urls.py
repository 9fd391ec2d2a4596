"""REST API v1 (tenants, quotas, clusters, hosts, jobs, incidents)."""

from rest_framework.routers import DefaultRouter

from console.api import views

router = DefaultRouter()
router.register("tenants", views.TenantViewSet, basename="tenant")
router.register("quotas", views.QuotaViewSet, basename="quota")
router.register("clusters", views.ClusterViewSet, basename="cluster")
router.register("hosts", views.HostViewSet, basename="host")
router.register("jobs", views.JobViewSet, basename="job")
router.register("incidents", views.IncidentViewSet, basename="incident")

urlpatterns = router.urls
