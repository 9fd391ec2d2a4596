# Server-rendered console pages.
from django.contrib.auth import views as auth_views
from django.urls import path

from console.ui import (
    checks,
    dashboard,
    faults,
    hosts,
    jobs,
    preferences,
    saved_filters,
    tenants,
    tokens,
    topology,
)

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", dashboard.dashboard, name="dashboard"),
    path("preferences/", preferences.preferences, name="preferences"),
    path("language/", preferences.switch_language, name="switch-language"),
    path("tokens/", tokens.token_list, name="api-tokens"),
    path("tokens/<int:pk>/revoke/", tokens.token_revoke, name="api-token-revoke"),
    # Jobs
    path("jobs/", jobs.job_list, name="job-list"),
    path("jobs/new/", jobs.job_submit, name="job-submit"),
    path("jobs/bulk-cancel/", jobs.job_bulk_cancel, name="job-bulk-cancel"),
    path("jobs/new/preview/", jobs.job_submit_preview, name="job-submit-preview"),
    path("jobs/<int:pk>/", jobs.job_detail, name="job-detail"),
    path("jobs/<int:pk>/live/", jobs.job_live, name="job-live"),
    path("jobs/<int:pk>/cancel/", jobs.job_cancel, name="job-cancel"),
    # Tenants and quotas
    path("tenants/", tenants.tenant_list, name="tenant-list"),
    path("tenants/<slug:slug>/", tenants.tenant_detail, name="tenant-detail"),
    path("tenants/<slug:slug>/edit/", tenants.tenant_edit, name="tenant-edit"),
    path("tenants/<slug:slug>/whatif/", tenants.tenant_whatif, name="tenant-whatif"),
    # Hosts, topology, checklists
    path("hosts/", hosts.host_list, name="host-list"),
    path("hosts/bulk/", hosts.host_bulk_action, name="host-bulk-action"),
    path("hosts/<str:name>/", hosts.host_detail, name="host-detail"),
    path("hosts/<str:name>/topology/", topology.host_topology, name="topology-host"),
    path("hosts/<str:name>/checks/", checks.host_checks, name="checks-host"),
    path("hosts/<str:name>/checks/rerun/", checks.rerun_host_checks, name="checks-rerun"),
    path("hosts/<str:name>/<slug:action>/", hosts.host_action, name="host-action"),
    path("topology/", topology.cluster_topology, name="topology-cluster"),
    path("checks/", checks.fleet_checks, name="checks-fleet"),
    # Faults
    path("faults/", faults.incident_list, name="incident-list"),
    path("faults/<int:pk>/", faults.incident_detail, name="incident-detail"),
    path("faults/<int:pk>/resolve/", faults.incident_resolve, name="incident-resolve"),
    # Saved filters of the lists above (per user)
    path("saved-filters/<slug:list_name>/", saved_filters.save_filter, name="saved-filter-save"),
    path("saved-filters/<int:pk>/apply/", saved_filters.apply_filter, name="saved-filter-apply"),
    path("saved-filters/<int:pk>/delete/", saved_filters.delete_filter,
         name="saved-filter-delete"),
]
