"""Tenants and their quotas: members read their own, admins read and write all."""

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import viewsets

from console.api.permissions import IsAdminOrReadOnly
from console.api.serializers import QuotaSerializer, TenantSerializer
from console.core.actions.tenants import do_delete_quota
from console.core.models import Quota, Tenant
from console.filtersets import QuotaFilterSet, TenantFilterSet


@extend_schema_view(
    list=extend_schema(summary="Tenants you belong to (admins: all)"),
    create=extend_schema(summary="Create a tenant (admin)"),
    update=extend_schema(summary="Rename a tenant or change its weight (admin)"),
    partial_update=extend_schema(summary="Rename a tenant or change its weight (admin)"),
)
class TenantViewSet(viewsets.ModelViewSet):
    serializer_class = TenantSerializer
    permission_classes = [IsAdminOrReadOnly]
    filterset_class = TenantFilterSet
    lookup_field = "slug"
    lookup_value_regex = "[-a-zA-Z0-9_]+"
    # A tenant's jobs and history keep it: tenants are not deleted through the API.
    http_method_names = ["get", "post", "put", "patch", "head", "options"]

    def get_queryset(self):
        return Tenant.objects.for_user(self.request.user)


@extend_schema_view(
    list=extend_schema(summary="Quotas of your tenants with what each holds now"),
    create=extend_schema(summary="Give a tenant a quota (admin)"),
    update=extend_schema(summary="Change a quota's guaranteed and limit (admin)"),
    partial_update=extend_schema(summary="Change a quota's guaranteed and limit (admin)"),
    destroy=extend_schema(summary="Remove a quota (admin)"),
)
class QuotaViewSet(viewsets.ModelViewSet):
    serializer_class = QuotaSerializer
    permission_classes = [IsAdminOrReadOnly]
    filterset_class = QuotaFilterSet

    def get_queryset(self):
        return Quota.objects.for_user(self.request.user).select_related("tenant")

    def perform_destroy(self, instance):
        do_delete_quota(instance)
