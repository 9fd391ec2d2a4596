"""Clusters and hosts: hardware is not tenant data, so any signed-in user reads
it; cordon, uncordon and drain are admin actions."""

from django.db.models import Count
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from console.api.permissions import IsAdmin
from console.api.serializers import (
    CapacitySerializer,
    ClusterSerializer,
    HostSerializer,
    ReasonSerializer,
)
from console.core.actions.hosts import do_cordon_host, do_drain_host, do_uncordon_host
from console.core.models import Cluster, Host
from console.core.usage import capacity
from console.filtersets import ClusterFilterSet, HostFilterSet


class ClusterViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = ClusterSerializer
    filterset_class = ClusterFilterSet
    lookup_field = "slug"
    lookup_value_regex = "[-a-zA-Z0-9_]+"

    def get_queryset(self):
        return Cluster.objects.annotate(
            host_count=Count("hosts", distinct=True),
            gpu_count=Count("hosts__gpus", distinct=True),
        ).order_by("name")


class _OneObjectSchema(AutoSchema):
    """The capacity is one object, though the router serves it as the ``list`` route
    (so that it is listed in the API root): document it as an object, not an array."""

    def _is_list_view(self, serializer=None) -> bool:
        return False


class CapacityViewSet(viewsets.ViewSet):
    """Total, out of service, in service, allocated, free and utilisation per
    resource and per GPU model: the figures the dashboard and /metrics show."""

    schema = _OneObjectSchema()

    @extend_schema(responses=CapacitySerializer, summary="The cluster's capacity figures")
    def list(self, request):
        return Response(CapacitySerializer(capacity()).data)


class HostViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = HostSerializer
    filterset_class = HostFilterSet

    def get_queryset(self):
        return Host.objects.select_related("cluster").prefetch_related(
            "gpus", "links", "numa_nodes", "nics"
        )

    def _host_action(self, request, do_action):
        serializer = ReasonSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        host = do_action(
            self.get_object(),
            actor=request.user.get_username(),
            reason=serializer.validated_data["reason"],
        )
        return Response(self.get_serializer(self.get_queryset().get(pk=host.pk)).data)

    @extend_schema(request=ReasonSerializer, responses=HostSerializer,
                   summary="Cordon: the host takes no new work (admin)")
    @action(detail=True, methods=["post"], permission_classes=[IsAdmin])
    def cordon(self, request, pk=None):
        return self._host_action(request, do_cordon_host)

    @extend_schema(request=ReasonSerializer, responses=HostSerializer,
                   summary="Uncordon: the host takes work again (admin)")
    @action(detail=True, methods=["post"], permission_classes=[IsAdmin])
    def uncordon(self, request, pk=None):
        return self._host_action(request, do_uncordon_host)

    @extend_schema(request=ReasonSerializer, responses=HostSerializer,
                   summary="Drain: cordon and move every job off the host (admin)")
    @action(detail=True, methods=["post"], permission_classes=[IsAdmin])
    def drain(self, request, pk=None):
        return self._host_action(request, do_drain_host)
