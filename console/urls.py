from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from console.access import signed_in
from console.health import healthz, readyz

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/agent/", include("console.api.agent_urls")),
    path("api/v1/", include("console.api.urls", namespace="api")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's init script from its own URL: no inline script (CSP).
    path("api/docs/", signed_in(SpectacularSwaggerSplitView.as_view(url_name="schema")),
         name="api-docs"),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("", include("console.metrics_urls")),
    path("", include("console.ui.urls")),
]
