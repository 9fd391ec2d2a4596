from rest_framework import viewsets

from console.api.serializers import IncidentSerializer
from console.core.models import Incident
from console.filtersets import IncidentFilterSet


class IncidentViewSet(viewsets.ReadOnlyModelViewSet):
    """Faults: admins see all; a member sees those that touched their tenants."""

    serializer_class = IncidentSerializer
    filterset_class = IncidentFilterSet

    def get_queryset(self):
        return Incident.objects.for_user(self.request.user).select_related("host", "gpu")
