from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from console.access import signed_in
from console.api.exceptions import api_not_found
from console.health import healthz, readyz

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/agent/", include("console.api.agent_urls")),
    path("api/v1/", include("console.api.urls", namespace="api")),
    # Anything else under /api/v1/ (an id that is not a number, a slug with a slash): JSON 404.
    re_path(r"^api/v1/(?P<path>.*)$", api_not_found),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's init script from its own URL: no inline script (CSP).
    path("api/docs/", signed_in(SpectacularSwaggerSplitView.as_view(url_name="schema")),
         name="api-docs"),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("", include("console.metrics_urls")),
    path("", include("console.ui.urls")),
]
