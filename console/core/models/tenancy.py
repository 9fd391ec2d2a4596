from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q

from console.core.choices import QuotaResource, Role
from console.core.models.scoping import TenantScopedQuerySet


class TenantQuerySet(TenantScopedQuerySet):
    tenant_path = ""
    distinct_rows = True


class Tenant(models.Model):
    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=50, unique=True)
    weight = models.DecimalField(
        max_digits=8,
        decimal_places=3,
        default=1,
        validators=[MinValueValidator(0.001)],
        help_text="Fair-share weight: a tenant of weight 2 is entitled to twice the "
        "dominant share of a tenant of weight 1.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(weight__gt=0), name="tenant_weight_positive"),
        ]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "tenant"], name="membership_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.tenant} ({self.role})"


class QuotaQuerySet(TenantScopedQuerySet):
    distinct_rows = True


class Quota(models.Model):
    """A tenant's guaranteed and limit for one resource.

    Whole GPUs can be limited per model (``gpu_model``) or for any model
    (``gpu_model`` blank); the other resources ignore ``gpu_model``.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="quotas")
    resource = models.CharField(max_length=16, choices=QuotaResource.choices)
    gpu_model = models.CharField(max_length=100, blank=True, default="")
    guaranteed = models.PositiveIntegerField(default=0)
    limit = models.PositiveIntegerField()

    objects = QuotaQuerySet.as_manager()

    class Meta:
        ordering = ["tenant__name", "resource", "gpu_model"]
        constraints = [
            models.CheckConstraint(
                condition=Q(guaranteed__lte=models.F("limit")),
                name="quota_guaranteed_lte_limit",
            ),
            models.CheckConstraint(
                condition=Q(resource="gpus") | Q(gpu_model=""),
                name="quota_model_only_for_gpus",
            ),
            models.UniqueConstraint(
                fields=["tenant", "resource", "gpu_model"], name="quota_unique_resource"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.tenant}: {self.resource_key} {self.guaranteed}/{self.limit}"

    @property
    def resource_key(self) -> str:
        """The scheduler's name for this resource: gpus, gpus:<model>, gpu_milli, …"""
        if self.resource == QuotaResource.GPUS and self.gpu_model:
            return f"gpus:{self.gpu_model}"
        return self.resource

    def clean(self) -> None:
        if self.limit is not None and self.guaranteed is not None and self.guaranteed > self.limit:
            raise ValidationError({"guaranteed": "Guaranteed cannot exceed the limit."})
        if self.gpu_model and self.resource != QuotaResource.GPUS:
            raise ValidationError({"gpu_model": "Only whole-GPU quotas name a GPU model."})
