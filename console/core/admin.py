from django.contrib import admin

from console.core import models


class MembershipInline(admin.TabularInline):
    model = models.Membership
    extra = 0


class QuotaInline(admin.TabularInline):
    model = models.Quota
    extra = 0


@admin.register(models.Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "weight"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline, QuotaInline]
    search_fields = ["name", "slug"]


@admin.register(models.Quota)
class QuotaAdmin(admin.ModelAdmin):
    list_display = ["tenant", "resource", "gpu_model", "guaranteed", "limit"]
    list_filter = ["resource", "tenant"]


@admin.register(models.Cluster)
class ClusterAdmin(admin.ModelAdmin):
    list_display = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}


class GpuInline(admin.TabularInline):
    model = models.Gpu
    extra = 0
    fields = ["index", "model", "pci_address", "numa_node", "health", "mode", "cordoned",
              "allocated_milli"]
    readonly_fields = ["allocated_milli"]


class NumaNodeInline(admin.TabularInline):
    model = models.NumaNode
    extra = 0


@admin.register(models.Host)
class HostAdmin(admin.ModelAdmin):
    list_display = ["name", "cluster", "state", "group", "last_heartbeat", "simulated"]
    list_filter = ["cluster", "state", "simulated"]
    search_fields = ["name"]
    readonly_fields = ["agent_token_hash", "inventory_digest", "last_heartbeat"]
    inlines = [NumaNodeInline, GpuInline]


@admin.register(models.Gpu)
class GpuAdmin(admin.ModelAdmin):
    list_display = ["__str__", "model", "pci_address", "numa_node", "health", "mode",
                    "cordoned", "allocated_milli"]
    list_filter = ["model", "health", "mode", "cordoned"]
    readonly_fields = ["allocated_milli"]


class AllocationInline(admin.TabularInline):
    model = models.Allocation
    extra = 0
    readonly_fields = ["host", "gpu", "milli", "cpus", "numa_nodes", "memory_gib"]
    can_delete = False


class EventInline(admin.TabularInline):
    model = models.Event
    extra = 0
    readonly_fields = ["created_at", "from_state", "to_state", "reason", "actor"]
    fields = readonly_fields
    can_delete = False


@admin.register(models.Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "tenant", "state", "gpus_per_host", "host_count",
                    "priority", "submitted_at"]
    list_filter = ["state", "tenant"]
    search_fields = ["name"]
    # State changes go through actions (the transition table), never a form.
    readonly_fields = ["state", "teardown_outcome", "pending_reason", "submitted_at",
                       "queued_at", "scheduled_at", "provisioning_at", "running_at",
                       "teardown_at", "preempted_at", "finished_at"]
    inlines = [AllocationInline, EventInline]


@admin.register(models.Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "job", "host", "kind", "from_state", "to_state", "actor"]
    list_filter = ["kind"]


@admin.register(models.Incident)
class IncidentAdmin(admin.ModelAdmin):
    list_display = ["opened_at", "title", "host", "xid", "fault", "state"]
    list_filter = ["state", "fault"]


@admin.register(models.CheckResult)
class CheckResultAdmin(admin.ModelAdmin):
    list_display = ["host", "check_id", "status", "risk", "measured_at"]
    list_filter = ["status", "risk", "check_id"]


admin.site.register(models.FirmwareBaseline)
admin.site.site_header = "Coupler administration"


@admin.register(models.Image)
class ImageAdmin(admin.ModelAdmin):
    list_display = ["name", "cluster", "format", "os", "disk", "kernel", "is_default"]
    list_filter = ["cluster", "format"]
    search_fields = ["name", "os", "disk"]
