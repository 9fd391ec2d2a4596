from django.core.exceptions import ValidationError
from django.db import transaction

from console.core import enqueue
from console.core.models import Quota, Tenant


def do_create_tenant(*, name: str, slug: str, weight=1) -> Tenant:
    with transaction.atomic():
        tenant = Tenant(name=name, slug=slug, weight=weight)
        tenant.full_clean()
        tenant.save()
        enqueue.request_scheduling_cycle()
    return tenant


def do_update_tenant(tenant: Tenant, *, name: str | None = None, weight=None) -> Tenant:
    with transaction.atomic():
        if name is not None:
            tenant.name = name
        if weight is not None:
            tenant.weight = weight
        tenant.full_clean()
        tenant.save()
        enqueue.request_scheduling_cycle()
    return tenant


def do_set_quota(
    tenant: Tenant, *, resource: str, guaranteed: int, limit: int, gpu_model: str = ""
) -> Quota:
    """Create or change one of a tenant's quotas; a new limit applies from the
    next scheduling cycle (running work is never stopped by a lower limit)."""
    if guaranteed > limit:
        raise ValidationError({"guaranteed": ["Guaranteed cannot exceed the limit."]})
    with transaction.atomic():
        quota, _ = Quota.objects.select_for_update().get_or_create(
            tenant=tenant,
            resource=resource,
            gpu_model=gpu_model,
            defaults={"guaranteed": guaranteed, "limit": limit},
        )
        quota.guaranteed = guaranteed
        quota.limit = limit
        quota.full_clean()
        quota.save()
        enqueue.request_scheduling_cycle()
    return quota


def do_delete_quota(quota: Quota) -> None:
    with transaction.atomic():
        quota.delete()
        enqueue.request_scheduling_cycle()
