"""Jobs: submit, list, watch and cancel a tenant's jobs.

Every lookup goes through ``Job.objects.for_user``: another tenant's job is a
404, never a 403, so ids do not reveal what exists.
"""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Prefetch
from django.http import HttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from console.api import flat
from console.api.exceptions import validation_error
from console.api.pagination import NewestFirstCursorPagination
from console.api.serializers import (
    CancelSerializer,
    EventSerializer,
    JobDetailSerializer,
    JobSerializer,
    JobSubmitSerializer,
    placement_of,
)
from console.core.actions.jobs import do_cancel_job, do_submit_job
from console.core.models import Allocation, Job
from console.core.selectors.jobs import jobs_for_list
from console.core.submit_limits import SubmitLimited
from console.filtersets import JobFilterSet


@extend_schema_view(
    list=extend_schema(summary="Jobs of your tenants (admins: all)"),
    retrieve=extend_schema(summary="A job with its placement, events and why it is pending"),
)
class JobViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    filterset_class = JobFilterSet
    pagination_class = NewestFirstCursorPagination

    def get_queryset(self):
        jobs = jobs_for_list(self.request.user)
        if self.action != "list":
            # Allocations with their host and GPU joined: one query, not three.
            jobs = jobs.prefetch_related("events", Prefetch(
                "allocations", queryset=Allocation.objects.select_related("host", "gpu")))
        return jobs

    def filter_queryset(self, queryset):
        # No filter asked for: the filterset (a form built and validated per
        # request) would return the queryset as it is.
        params = self.request.query_params
        if not any(name in params for name in JobFilterSet.base_filters):
            return queryset
        return super().filter_queryset(queryset)

    def list(self, request, *args, **kwargs):
        if getattr(request.accepted_renderer, "format", None) != "json":
            return super().list(request, *args, **kwargs)  # the browsable API
        # JSON: the page as values() rows, written field by field as JobSerializer
        # writes a job (a test holds them equal) and encoded by msgspec.
        values = flat.values_of(self.filter_queryset(self.get_queryset()), JobSerializer)
        page = self.paginate_queryset(values)
        body = {"next": self.paginator.get_next_link(),
                "previous": self.paginator.get_previous_link(),
                "results": flat.rows_of(page, JobSerializer)}
        return HttpResponse(flat.encode(body), content_type="application/json")

    def get_serializer_class(self):
        if self.action == "list":
            return JobSerializer
        if self.action == "create":
            return JobSubmitSerializer
        if self.action == "cancel":
            return CancelSerializer
        return JobDetailSerializer

    def _detail(self, job: Job) -> dict:
        return self._detail_of(self.get_queryset().get(pk=job.pk))

    def _detail_of(self, job: Job) -> dict:
        """``JobDetailSerializer``'s output (a test holds them equal), without
        building its thirty-odd fields on every request: the job's own fields
        through the flat writer, then its placement and events."""
        data = flat.row_of(job, JobSerializer)
        data["placement"] = placement_of(job)
        data["events"] = EventSerializer(job.events.all(), many=True,
                                         context=self.get_serializer_context()).data
        return data

    def retrieve(self, request, *args, **kwargs):
        return Response(self._detail_of(self.get_object()))

    @extend_schema(
        summary="Submit a job",
        request=JobSubmitSerializer,
        responses={201: JobDetailSerializer, 400: OpenApiResponse(description="Per-field errors"),
                   429: OpenApiResponse(description="Over the tenant's queued-jobs cap or "
                                                    "submit rate; Retry-After says when")},
    )
    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            job = do_submit_job(
                tenant=serializer.validated_data["tenant"],
                submitter=request.user,
                actor=request.user.get_username(),
                **serializer.spec(),
            )
        except SubmitLimited as exc:
            raise exceptions.Throttled(wait=exc.retry_after_s, detail=exc.message) from exc
        except DjangoValidationError as exc:
            raise validation_error(exc) from exc
        return Response(self._detail(job), status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Cancel a job (a placed job is torn down first)",
        request=CancelSerializer,
        responses={
            200: JobDetailSerializer,
            409: OpenApiResponse(description="The job has already finished"),
        },
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        job = self.get_object()
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        job = do_cancel_job(
            job, actor=request.user.get_username(), reason=serializer.validated_data["reason"]
        )
        return Response(self._detail(job))
