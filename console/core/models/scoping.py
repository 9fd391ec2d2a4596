from django.db import models


class TenantScopedQuerySet(models.QuerySet):
    """Rows a user may see: every row for staff, their tenants' rows otherwise.

    Subclasses name the lookup from their model to ``Tenant``; tenancy is then
    structural: views and viewsets start from ``Model.objects.for_user(user)``.
    """

    tenant_path = "tenant"
    # A path through a many-to-many (or to the membership rows) can repeat a row.
    distinct_rows = False

    def for_user(self, user):
        if not user.is_authenticated:
            return self.none()
        if user.is_staff:
            return self
        prefix = f"{self.tenant_path}__" if self.tenant_path else ""
        rows = self.filter(**{f"{prefix}memberships__user": user})
        return rows.distinct() if self.distinct_rows else rows
