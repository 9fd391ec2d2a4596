"""Explanations that finish the story of a waiting job: why borrowed capacity
is (not) reclaimed for it, and its pending reason in the reader's language.

Another tenant is never named to a member: "another tenant, within its own
guarantee on H100-SXM5-80GB"."""

from collections import defaultdict

from django.utils.translation import get_language, gettext_noop
from django.utils.translation import gettext as _

from console.core.choices import ACTIVE_JOB_STATES, JobState, PendingCode
from console.core.models import Allocation, Job, Quota, Tenant
from console.core.usage import usage_by_tenant

NO_ROOM_CODES = (PendingCode.NO_HOST_WITH_FREE_GPUS, PendingCode.NO_HOST_WITH_FREE_CPU_MEMORY)

# The pending reasons the scheduler writes (scheduler/planner.py, quotas.py),
# rebuilt from the job's pending_data for a reader in another language. A
# reason whose data lacks a field keeps the scheduler's English text.
PENDING_TEMPLATES = {
    PendingCode.NEW: gettext_noop("Waiting for the next scheduling cycle."),
    PendingCode.NO_HOST_WITH_FREE_GPUS: gettext_noop(
        "No room: %(hosts_with_enough_gpus)s host(s) have %(gpus_per_host)s connected free "
        "GPU(s), %(hosts_needed)s needed; the most any host has is "
        "%(max_free_gpus_on_a_host)s."),
    PendingCode.NO_HOST_WITH_FREE_CPU_MEMORY: gettext_noop(
        "No room: %(hosts_that_fit)s host(s) can give %(vcpus_per_host)s vCPUs and "
        "%(memory_gib_per_host)s GiB next to the GPUs, %(hosts_needed)s needed (most free on a "
        "host: %(max_free_vcpus)s vCPUs, %(max_free_memory_gib)s GiB)."),
    PendingCode.HOSTS_CORDONED: gettext_noop(
        "%(cordoned_hosts_that_fit)s host(s) that could take this job are cordoned; "
        "%(open_hosts_that_fit)s open."),
    PendingCode.NO_HOST_WITH_KVM: gettext_noop(
        "Waiting: no host with KVM can take this job: it requires KVM (hardware "
        "virtualisation); %(kvm_hosts)s open host(s) run KVM, %(kvm_hosts_that_fit)s of them "
        "have room, %(hosts_needed)s needed; %(hosts_that_fit_without_kvm)s host(s) without "
        "KVM (QEMU emulation) have room."),
    PendingCode.NO_HOST_WITH_IMAGE: gettext_noop(
        "Waiting for a host with the image %(image)s: %(hosts_with_image)s open host(s) are in "
        "clusters whose catalogue holds it, %(hosts_with_image_that_fit)s of them have room, "
        "%(hosts_needed)s needed; %(hosts_that_fit_without_image)s host(s) elsewhere have "
        "room."),
    PendingCode.WAITING_FOR_FAIR_SHARE: gettext_noop(
        "Waiting for fair share: the capacity this job needs went to %(placed_for_others)s "
        "job(s) of tenants with a lower weighted dominant share this cycle (yours is "
        "%(dominant_share).3f, the lowest other is %(lowest_other_share).3f)."),
    PendingCode.OVER_LIMIT: gettext_noop(
        "Over the %(resource)s limit by %(over_by)s: the job asks for %(request)s, the tenant "
        "uses %(usage)s of its limit %(limit)s."),
    PendingCode.WAITING_FOR_PREEMPTION: gettext_noop(
        "Reclaiming capacity guaranteed to your tenant: %(preempted_jobs)s borrowed job(s) of "
        "other tenants are being preempted; the job starts when they have stopped."),
}
# The quota verdicts of console.core.admission.quota_preview, for the catalogue.
VERDICTS = (
    gettext_noop("no quota"),
    gettext_noop("over limit: will wait"),
    gettext_noop("borrows: preemptible by tenants under their guarantee"),
    gettext_noop("within guarantee"),
)


def pending_text(job: Job) -> str:
    """The job's pending reason in the active language."""
    english = job.pending_reason or PENDING_TEMPLATES[PendingCode.NEW]
    if (get_language() or "en").startswith("en"):
        return english
    template = PENDING_TEMPLATES.get(job.pending_code or PendingCode.NEW)
    if template is None:
        return english
    from console.ui.templatetags import num

    data = {k: num(v) if isinstance(v, float) else v for k, v in (job.pending_data or {}).items()}
    try:
        return _(template) % data
    except (KeyError, TypeError, ValueError):
        return english


def _contested_keys(job: Job) -> list[str]:
    if job.gpu_milli:
        return ["gpu_milli"]
    if job.gpus_per_host:
        return [f"gpus:{job.gpu_model}", "gpus"] if job.gpu_model else ["gpus"]
    return ["vcpus", "memory_gib"]


def _label(key: str) -> str:
    return key.split(":", 1)[1] if key.startswith("gpus:") else key


def why_not_reclaimed(job: Job, user) -> list[str]:
    """For a job waiting for room: does its tenant have a guarantee to claim,
    and who holds the contested GPUs, and why that work is not preempted."""
    if job.state not in (JobState.QUEUED, JobState.PREEMPTED) or \
            job.pending_code not in NO_ROOM_CODES:
        return []
    usage = usage_by_tenant()
    need = job.total_usage()
    quotas = {(q.tenant_id, q.resource_key): q for q in Quota.objects.all()}
    lines = []
    key = next((k for k in _contested_keys(job) if (job.tenant_id, k) in quotas),
               _contested_keys(job)[0])
    own = quotas.get((job.tenant_id, key))
    used = usage.get(job.tenant_id, {}).get(key, 0)
    after = used + need.get(key, 0)
    if own is None or after > own.guaranteed:
        lines.append(_(
            "Borrowed capacity is reclaimed only for a tenant under its guarantee: %(tenant)s "
            "uses %(used)s %(what)s, the job would take it to %(after)s, its guarantee is "
            "%(guaranteed)s.") % {"tenant": job.tenant.name, "used": used, "what": _label(key),
                                  "after": after,
                                  "guaranteed": own.guaranteed if own else _("none")})
        return lines
    # The tenant is entitled to this capacity: who holds it, and why they keep it.
    holders = Allocation.objects.filter(job__state__in=ACTIVE_JOB_STATES, gpu__isnull=False) \
        .exclude(job__tenant_id=job.tenant_id)
    if job.gpu_model:
        holders = holders.filter(gpu__model=job.gpu_model)
    held: dict[int, dict] = defaultdict(lambda: {"gpus": 0, "preemptible": 0})
    for tenant_id, preemptible, milli in holders.values_list("job__tenant_id",
                                                            "job__preemptible", "milli"):
        entry = held[tenant_id]
        entry["gpus"] += milli / 1000
        entry["preemptible"] += milli / 1000 if preemptible else 0
    names = dict(Tenant.objects.filter(pk__in=held).values_list("pk", "name"))
    visible = set(Tenant.objects.for_user(user).values_list("pk", flat=True))
    for tenant_id, entry in sorted(held.items(), key=lambda item: -item[1]["gpus"]):
        who = names[tenant_id] if (user.is_staff or tenant_id in visible) else _("another tenant")
        theirs = quotas.get((tenant_id, key))
        their_use = usage.get(tenant_id, {}).get(key, 0)
        args = {"who": who, "n": f"{entry['gpus']:g}", "what": _label(key)}
        if theirs is not None and their_use <= theirs.guaranteed:
            lines.append(_("%(n)s GPU(s) are held by %(who)s, within its own guarantee on "
                           "%(what)s: guaranteed capacity is never preempted.") % args)
        elif not entry["preemptible"]:
            lines.append(_("%(n)s GPU(s) are held by %(who)s above its guarantee on %(what)s, "
                           "but by jobs submitted as not preemptible.") % args)
        else:
            lines.append(_("%(n)s GPU(s) are borrowed by %(who)s above its guarantee on "
                           "%(what)s: the next scheduling cycle preempts what this job "
                           "needs.") % args)
    if not held:
        lines.append(_("No other tenant holds %(what)s GPUs: the room is taken by your own "
                       "tenant's jobs, or the GPUs are out of service.") % {"what": _label(key)})
    return lines
