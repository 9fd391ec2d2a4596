"""REST API v1 (tenants, quotas, clusters, hosts, images, capacity, jobs, incidents, API
tokens)."""

from rest_framework.routers import DefaultRouter

from console.api import views

# "/?": a POST to /api/v1/jobs (no slash) reaches the view instead of
# CommonMiddleware's APPEND_SLASH, which cannot redirect a POST (a 500).
router = DefaultRouter()
router.trailing_slash = "/?"  # DRF's constructor takes only True/False
router.register("tenants", views.TenantViewSet, basename="tenant")
router.register("quotas", views.QuotaViewSet, basename="quota")
router.register("clusters", views.ClusterViewSet, basename="cluster")
router.register("hosts", views.HostViewSet, basename="host")
router.register("images", views.ImageViewSet, basename="image")
router.register("capacity", views.CapacityViewSet, basename="capacity")
router.register("jobs", views.JobViewSet, basename="job")
router.register("incidents", views.IncidentViewSet, basename="incident")
router.register("tokens", views.ApiTokenViewSet, basename="token")

# Namespaced by console/urls.py ("api"): the root view then links its entries
# to the API's own list views, not to the console pages of the same name.
app_name = "api"
urlpatterns = router.urls
