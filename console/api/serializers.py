"""Serializers of the REST API v1.

Read serializers show models; write serializers validate a request's fields
(types, bounds, name rules) and hand them to an action, which is the only
code that writes. Bounds are explicit so a request never reaches the
database with a number the column cannot hold.
"""

import re
from decimal import Decimal

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from console.api.flat import FlatListSerializer
from console.core.actions.tenants import do_create_tenant, do_set_quota, do_update_tenant
from console.core.admission import (
    GPU_MODEL_MAX,
    IMAGE_NAME_MAX,
    JOB_FLAGS,
    JOB_NUMBERS,
    REQUIRED_MESSAGE,
    validate_job_name,
)
from console.core.choices import (
    HostState,
    IncidentState,
    PendingCode,
    QuotaResource,
    TeardownOutcome,
)
from console.core.models import (
    Cluster,
    Event,
    Gpu,
    GpuLink,
    Host,
    Incident,
    Job,
    Nic,
    NumaNode,
    Quota,
    Tenant,
)
from console.core.selectors.hosts import MEMBER_HOST_FACTS, host_facts_for, is_staff
from console.core.snapshot import memory_by_numa
from console.core.usage import usage_by_tenant

QUOTA_MAX = 1_000_000_000


class StrictFieldsMixin:
    """Refuse fields the endpoint does not know: a typo ("host_count" for
    "hosts") should not silently fall back to a default."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            writable = {name for name, field in self.fields.items() if not field.read_only}
            writable.add("csrfmiddlewaretoken")  # the browsable API's forms
            unknown = sorted(str(key) for key in data if key not in writable)
            if unknown:
                raise serializers.ValidationError(
                    {key: ["Unknown or read-only field."] for key in unknown}
                )
        return super().to_internal_value(data)


SLUG_PATTERN = re.compile(r"[-a-zA-Z0-9_]{1,50}")


class SlugField(serializers.SlugRelatedField):
    """A related object by slug; text that cannot be a slug is refused before it
    reaches the database (PostgreSQL rejects NUL bytes with an error)."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        if not SLUG_PATTERN.fullmatch(data):
            self.fail("does_not_exist", slug_name=self.slug_field, value=data[:50])
        return super().to_internal_value(data)


# --- tenants and quotas -------------------------------------------------------


class TenantSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    weight = serializers.DecimalField(
        max_digits=8,
        decimal_places=3,
        min_value=Decimal("0.001"),
        max_value=Decimal("99999.999"),
        required=False,
        help_text="Fair-share weight (> 0).",
    )

    class Meta:
        model = Tenant
        fields = ["id", "name", "slug", "weight", "created_at"]
        read_only_fields = ["id", "created_at"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if isinstance(self.instance, Tenant):
            # The slug names the tenant in URLs and submit bodies: fixed once made.
            self.fields["slug"].read_only = True

    def create(self, validated_data):
        return do_create_tenant(**validated_data)

    def update(self, instance, validated_data):
        return do_update_tenant(
            instance, name=validated_data.get("name"), weight=validated_data.get("weight")
        )


def _usage_in_context(context: dict) -> dict[int, dict[str, int]]:
    """Usage of every tenant, computed once per response."""
    if "usage_by_tenant" not in context:
        context["usage_by_tenant"] = usage_by_tenant()
    return context["usage_by_tenant"]


class QuotaSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    tenant = SlugField(slug_field="slug", queryset=Tenant.objects.all())
    resource = serializers.ChoiceField(choices=QuotaResource.choices)
    gpu_model = serializers.CharField(
        max_length=100, required=False, allow_blank=True, default="",
        help_text="Only for resource 'gpus': limit one GPU model (blank: any model).",
    )
    guaranteed = serializers.IntegerField(min_value=0, max_value=QUOTA_MAX, default=0)
    limit = serializers.IntegerField(min_value=0, max_value=QUOTA_MAX)
    resource_key = serializers.CharField(read_only=True)
    in_use = serializers.SerializerMethodField(help_text="What the tenant holds now.")

    class Meta:
        model = Quota
        fields = ["id", "tenant", "resource", "gpu_model", "resource_key", "guaranteed",
                  "limit", "in_use"]
        read_only_fields = ["id"]
        # validate() reports a duplicate against the "resource" field instead.
        validators: list = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if isinstance(self.instance, Quota):
            # What a quota is about is fixed; an update changes its amounts.
            for name in ("tenant", "resource", "gpu_model"):
                self.fields[name].read_only = True

    @extend_schema_field(OpenApiTypes.INT)
    def get_in_use(self, quota: Quota) -> int:
        return _usage_in_context(self.context).get(quota.tenant_id, {}).get(quota.resource_key, 0)

    def validate(self, attrs):
        guaranteed = attrs.get("guaranteed", getattr(self.instance, "guaranteed", 0))
        limit = attrs.get("limit", getattr(self.instance, "limit", 0))
        if guaranteed > limit:
            raise serializers.ValidationError({"guaranteed": ["Guaranteed cannot exceed the limit."]})
        resource = attrs.get("resource", getattr(self.instance, "resource", ""))
        if attrs.get("gpu_model") and resource != QuotaResource.GPUS:
            raise serializers.ValidationError(
                {"gpu_model": ["Only whole-GPU quotas name a GPU model."]}
            )
        if self.instance is None:
            exists = Quota.objects.filter(
                tenant=attrs["tenant"], resource=resource, gpu_model=attrs.get("gpu_model", "")
            ).exists()
            if exists:
                raise serializers.ValidationError(
                    {"resource": ["The tenant already has this quota: change it instead."]}
                )
        return attrs

    def create(self, validated_data):
        return do_set_quota(
            validated_data["tenant"],
            resource=validated_data["resource"],
            gpu_model=validated_data.get("gpu_model", ""),
            guaranteed=validated_data.get("guaranteed", 0),
            limit=validated_data["limit"],
        )

    def update(self, instance, validated_data):
        return do_set_quota(
            instance.tenant,
            resource=instance.resource,
            gpu_model=instance.gpu_model,
            guaranteed=validated_data.get("guaranteed", instance.guaranteed),
            limit=validated_data.get("limit", instance.limit),
        )


# --- clusters and hosts -------------------------------------------------------


class ClusterSerializer(serializers.ModelSerializer):
    host_count = serializers.IntegerField(read_only=True)
    gpu_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Cluster
        fields = ["id", "name", "slug", "description", "host_count", "gpu_count"]


class GpuSerializer(serializers.ModelSerializer):
    class Meta:
        model = Gpu
        fields = ["index", "uuid", "pci_address", "model", "memory_mib", "numa_node",
                  "cpu_affinity", "health", "mode", "cordoned", "cordon_reason",
                  "allocated_milli"]


class GpuLinkSerializer(serializers.ModelSerializer):
    a = serializers.CharField(read_only=True, help_text="GPU<i> or a NIC name")
    b = serializers.CharField(read_only=True)

    class Meta:
        model = GpuLink
        fields = ["a", "b", "kind", "nvlinks"]


class NumaNodeSerializer(serializers.ModelSerializer):
    class Meta:
        model = NumaNode
        fields = ["node_id", "cpus", "memory_gib", "hugepages_1g"]


class NicSerializer(serializers.ModelSerializer):
    class Meta:
        model = Nic
        fields = ["name", "label", "numa_node"]


# Only the job's state is an enum in the schema: three enums all named "state"
# collide in drf-spectacular without ENUM_NAME_OVERRIDES in settings.
HOST_STATE_HELP = "One of: " + ", ".join(HostState.values) + "."
INCIDENT_STATE_HELP = "One of: " + ", ".join(IncidentState.values) + "."




class HostSerializer(serializers.ModelSerializer):
    """A host. Staff see every fact and the checks override; members the hardware facts."""

    state = serializers.CharField(read_only=True, help_text=HOST_STATE_HELP)
    cluster = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    facts = serializers.SerializerMethodField(
        help_text="Staff: every fact. Members: " + ", ".join(MEMBER_HOST_FACTS) + ".")
    checks_override_reason = serializers.SerializerMethodField(
        help_text="Staff only (empty for members).")
    gpus = GpuSerializer(many=True, read_only=True)
    links = GpuLinkSerializer(many=True, read_only=True)
    numa_nodes = NumaNodeSerializer(many=True, read_only=True)
    nics = NicSerializer(many=True, read_only=True)

    class Meta:
        model = Host
        fields = ["id", "name", "cluster", "state", "state_reason", "group", "cpu_count",
                  "memory_gib", "reserved_cores", "last_heartbeat", "simulated", "hypervisor",
                  "cgroup_layout", "hugetlbfs_1g",
                  "checks_override_reason", "facts", "gpus", "numa_nodes", "links", "nics",
                  "created_at"]

    def _user(self):
        request = self.context.get("request")
        return getattr(request, "user", None)

    def get_facts(self, host: Host) -> dict:
        return host_facts_for(host, self._user())

    def get_checks_override_reason(self, host: Host) -> str:
        return host.checks_override_reason if is_staff(self._user()) else ""


class ReasonSerializer(StrictFieldsMixin, serializers.Serializer):
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class FiguresSerializer(serializers.Serializer):
    """One resource's figures (``console.core.usage.Figures``): total =
    out_of_service + in_service, in_service = allocated + free."""

    resource = serializers.CharField(help_text="gpus, vcpus or memory_gib.")
    model = serializers.CharField(help_text="The GPU model of a per-model row; empty otherwise.")
    total = serializers.FloatField()
    out_of_service = serializers.FloatField(
        help_text="No new job can get it: failed or cordoned GPUs, hosts not ready.")
    in_service = serializers.FloatField(help_text="total − out_of_service.")
    allocated = serializers.FloatField(
        help_text="Held by live jobs on capacity in service (GPU shares count fractionally).")
    free = serializers.FloatField(help_text="in_service − allocated.")
    held_out_of_service = serializers.FloatField(
        help_text="Still held by live jobs on capacity out of service (part of out_of_service).")
    utilization = serializers.FloatField(help_text="allocated / in_service, 0 to 1.")

    def to_representation(self, instance):
        return instance.as_dict()


class CapacitySerializer(serializers.Serializer):
    """The cluster's capacity figures, the dashboard's and ``/metrics``'s."""

    gpus = FiguresSerializer()
    vcpus = FiguresSerializer()
    memory_gib = FiguresSerializer()
    gpu_models = FiguresSerializer(many=True)


# --- jobs ---------------------------------------------------------------------


class TenantSlugField(SlugField):
    """A tenant the requesting user may submit for, by slug.

    Another tenant and no tenant at all get the same answer, so the field
    never tells an outsider that a slug exists.
    """

    default_error_messages = {
        "does_not_exist": "You are not a member of a tenant '{value}'.",
        "invalid": "Give the tenant's slug.",
    }

    def __init__(self, **kwargs):
        super().__init__(slug_field="slug", queryset=Tenant.objects.all(), **kwargs)

    def get_queryset(self):
        request = self.context.get("request")
        if request is None:
            return Tenant.objects.none()
        return Tenant.objects.for_user(request.user)


def _number(field: str) -> serializers.IntegerField:
    rule = JOB_NUMBERS[field]
    extra = {} if rule.required else {"required": False, "default": rule.default,
                                      "allow_null": rule.default is None}
    return serializers.IntegerField(min_value=rule.low, max_value=rule.high,
                                    help_text=rule.help or rule.label,
                                    error_messages=rule.messages(), **extra)


def _flag(field: str) -> serializers.BooleanField:
    rule = JOB_FLAGS[field]
    return serializers.BooleanField(default=rule.default, help_text=rule.help)


class JobSubmitSerializer(StrictFieldsMixin, serializers.Serializer):
    tenant = TenantSlugField(help_text="The tenant's slug.")
    # Every job field's rule is console.core.admission's (the console form reads the same).
    name = serializers.CharField(
        trim_whitespace=False, validators=[validate_job_name],
        error_messages={"blank": REQUIRED_MESSAGE, "required": REQUIRED_MESSAGE},
    )
    gpus_per_host = _number("gpus_per_host")
    hosts = _number("hosts")
    gpu_model = serializers.CharField(
        max_length=GPU_MODEL_MAX, required=False, allow_blank=True, default="",
        help_text="Blank: any model.",
    )
    gpu_milli = _number("gpu_milli")
    vcpus_per_host = _number("vcpus_per_host")
    memory_gib_per_host = _number("memory_gib_per_host")
    priority = _number("priority")
    preemptible = serializers.BooleanField(default=True)
    image = serializers.CharField(
        max_length=IMAGE_NAME_MAX, required=False, allow_blank=True, default="",
        help_text="The boot image's name in the catalogue; blank: the cluster's default.",
    )
    rdma = serializers.BooleanField(
        default=False, help_text="GPUDirect RDMA: NIC virtual functions next to the GPUs "
        "(always for a job of several hosts)."
    )
    single_leaf = serializers.BooleanField(
        default=False, help_text="A gang waits rather than span leaf switches (host groups)."
    )
    require_kvm = _flag("require_kvm")

    def spec(self) -> dict:
        """The validated fields as do_submit_job's keyword arguments."""
        spec = dict(self.validated_data)
        spec["host_count"] = spec.pop("hosts")
        spec.pop("tenant")
        return spec


class CancelSerializer(StrictFieldsMixin, serializers.Serializer):
    reason = serializers.CharField(
        max_length=500, required=False, allow_blank=True, default="cancelled by user"
    )


class EventSerializer(serializers.ModelSerializer):
    # Details about other tenants (the preempting job, the scheduler's full reason):
    # staff only.
    STAFF_ONLY_DATA = ("for_job", "preemption_reason")

    class Meta:
        model = Event
        fields = ["created_at", "kind", "from_state", "to_state", "reason", "actor", "data"]

    def to_representation(self, instance):
        out = super().to_representation(instance)
        request = self.context.get("request")
        staff = bool(request and request.user and request.user.is_staff)
        if not staff and isinstance(out.get("data"), dict):
            out["data"] = {k: v for k, v in out["data"].items() if k not in self.STAFF_ONLY_DATA}
        return out


class PlacementSerializer(serializers.Serializer):
    host = serializers.CharField(help_text="Host name.")
    gpus = serializers.ListField(child=serializers.CharField(), help_text="PCI addresses.")
    gpu_milli = serializers.ListField(
        child=serializers.IntegerField(), help_text="Milli-GPU held on each of those GPUs."
    )
    cpus = serializers.ListField(child=serializers.IntegerField(), help_text="Host cores.")
    numa_nodes = serializers.ListField(child=serializers.IntegerField())
    memory_gib = serializers.IntegerField()
    memory_by_numa = serializers.DictField(
        child=serializers.IntegerField(), help_text="GiB of memory_gib on each NUMA node."
    )
    nic_vfs = serializers.ListField(
        child=serializers.DictField(), help_text="NIC virtual functions: nic, pci_address."
    )


def placement_of(job: Job) -> list[dict]:
    """Per host, the job's GPUs (rows with a GPU) and cores, NUMA nodes and
    memory (the row without one)."""
    hosts: dict[str, dict] = {}
    for allocation in job.allocations.all():
        entry = hosts.setdefault(
            allocation.host.name,
            {"host": allocation.host.name, "gpus": [], "gpu_milli": [], "cpus": [],
             "numa_nodes": [], "memory_gib": 0, "memory_by_numa": {}, "nic_vfs": []},
        )
        if allocation.gpu_id is None:
            entry["cpus"] = list(allocation.cpus)
            entry["numa_nodes"] = list(allocation.numa_nodes)
            entry["memory_gib"] = allocation.memory_gib
            entry["memory_by_numa"] = {
                str(node): gib for node, gib in sorted(memory_by_numa(
                    allocation.memory_gib, allocation.numa_nodes, allocation.memory_by_numa
                ).items())
            }
            entry["nic_vfs"] = [
                {"nic": nic, "pci_address": pci} for nic, pci in
                allocation.nic_vf_claims.order_by("vf__pci_address")
                .values_list("vf__nic__name", "vf__pci_address")
            ]
        else:
            entry["gpus"].append(allocation.gpu.pci_address)
            entry["gpu_milli"].append(allocation.milli)
    return list(hosts.values())


class JobSerializer(serializers.ModelSerializer):
    tenant = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    # Null once the submitting user is deleted; blank outside TEARDOWN (the schema says so).
    submitter = serializers.SlugRelatedField(slug_field="username", read_only=True,
                                             allow_null=True)
    teardown_outcome = serializers.ChoiceField(choices=TeardownOutcome.choices, read_only=True,
                                               allow_blank=True)
    # Blank once the job no longer waits.
    pending_code = serializers.ChoiceField(choices=PendingCode.choices, read_only=True,
                                           allow_blank=True)
    hosts = serializers.IntegerField(source="host_count", read_only=True)

    class Meta:
        model = Job
        fields = ["id", "tenant", "name", "submitter", "state", "gpus_per_host", "hosts",
                  "gpu_model", "gpu_milli", "vcpus_per_host", "memory_gib_per_host",
                  "priority", "preemptible", "image", "rdma", "single_leaf", "require_kvm", "leaves",
                  "pending_reason", "pending_code", "pending_data",
                  "teardown_outcome", "failure_reason", "attempts", "generation", "submitted_at",
                  "queued_at", "scheduled_at", "provisioning_at", "running_at", "teardown_at",
                  "preempted_at", "finished_at", "updated_at"]
        read_only_fields = fields
        # Lists of jobs are long and wide: rows are written field by field.
        list_serializer_class = FlatListSerializer


class JobDetailSerializer(JobSerializer):
    placement = serializers.SerializerMethodField()
    events = EventSerializer(many=True, read_only=True)

    class Meta(JobSerializer.Meta):
        fields = [*JobSerializer.Meta.fields, "placement", "events"]
        read_only_fields = fields
        list_serializer_class = serializers.ListSerializer

    @extend_schema_field(PlacementSerializer(many=True))
    def get_placement(self, job: Job) -> list[dict]:
        return placement_of(job)


# --- incidents ----------------------------------------------------------------


class IncidentSerializer(serializers.ModelSerializer):
    state = serializers.CharField(read_only=True, help_text=INCIDENT_STATE_HELP)
    host = serializers.SlugRelatedField(slug_field="name", read_only=True)
    gpu = serializers.SerializerMethodField()
    jobs = serializers.SerializerMethodField()
    tenants = serializers.SerializerMethodField()

    class Meta:
        model = Incident
        fields = ["id", "title", "state", "host", "gpu", "pci_address", "xid", "fault",
                  "meaning", "recommended_action", "runbook", "raw_lines", "jobs", "tenants",
                  "opened_at", "resolved_at", "resolution"]
        read_only_fields = fields

    def _user(self):
        return self.context["request"].user

    @extend_schema_field(OpenApiTypes.INT)
    def get_gpu(self, incident: Incident) -> int | None:
        return incident.gpu.index if incident.gpu else None

    @extend_schema_field(serializers.ListField(child=serializers.IntegerField()))
    def get_jobs(self, incident: Incident) -> list[int]:
        # Only the jobs and tenants the reader may see: an incident on a shared
        # host must not tell tenant A which other tenants it hit.
        return sorted(incident.jobs.for_user(self._user()).values_list("pk", flat=True))

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_tenants(self, incident: Incident) -> list[str]:
        return sorted(incident.tenants.for_user(self._user()).values_list("slug", flat=True))
