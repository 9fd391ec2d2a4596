"""Tenants and quotas: usage against guaranteed and limit for everyone who
may see the tenant; editing weights and quotas, with a what-if preview of the
change, for admins."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db import transaction
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from console.core.actions.tenants import do_delete_quota, do_set_quota, do_update_tenant
from console.core.models import Tenant
from console.core.usage import usage_by_tenant
from console.ui.access import get_tenant_for_user, staff_required
from console.ui.forms import QuotaFormSet, TenantForm, add_action_errors
from console.ui.metrics import Bar


def quota_rows(tenant: Tenant, usage: dict) -> list[dict]:
    rows = []
    for quota in tenant.quotas.all():
        used = usage.get(quota.resource_key, 0)
        scale = max(quota.limit, used, 1)
        rows.append({
            "quota": quota,
            "used": used,
            "bar": Bar.of(used, quota.guaranteed, quota.limit, scale=scale),
            "borrowing": max(0, used - quota.guaranteed),
        })
    return rows


@login_required
def tenant_list(request):
    usage = usage_by_tenant()
    tenants = Tenant.objects.for_user(request.user).prefetch_related("quotas")
    return render(request, "tenants/list.html", {
        "section": "tenants",
        "tenants": [{"tenant": t, "rows": quota_rows(t, usage.get(t.pk, {}))} for t in tenants],
    })


@login_required
def tenant_detail(request, slug):
    tenant = get_tenant_for_user(request.user, slug)
    usage = usage_by_tenant().get(tenant.pk, {})
    return render(request, "tenants/detail.html", {
        "section": "tenants",
        "tenant": tenant,
        "rows": quota_rows(tenant, usage),
        "jobs": tenant.jobs.exclude(state__in=["succeeded", "failed", "cancelled"])[:50],
    })


def _forms(request, tenant):
    initial_quotas = [
        {"resource": q.resource, "gpu_model": q.gpu_model, "guaranteed": q.guaranteed,
         "limit": q.limit}
        for q in tenant.quotas.all()
    ]
    data = request.POST if request.method == "POST" else None
    form = TenantForm(data, initial={"name": tenant.name, "weight": tenant.weight},
                      prefix="tenant")
    formset = QuotaFormSet(data, initial=initial_quotas, prefix="quota")
    return form, formset


def _proposal(tenant, form, formset) -> dict:
    """The proposed weight and quotas from valid forms, as what_if() takes them."""
    rows, removed = [], []
    existing = {q.resource_key for q in tenant.quotas.all()}
    for f in formset.forms:
        data = f.cleaned_data
        if not data or (not f.has_changed() and not f.initial):
            continue
        key = data["resource"] + (f":{data['gpu_model']}" if data["gpu_model"] else "")
        if data.get("delete"):
            if key in existing:
                removed.append(key)
            continue
        rows.append({"resource": data["resource"], "gpu_model": data["gpu_model"],
                     "resource_key": key, "guaranteed": data["guaranteed"],
                     "limit": data["limit"]})
    for f in formset.forms:
        # A row whose resource changed drops the quota it was showing.
        if f.initial and f.cleaned_data and not f.cleaned_data.get("delete"):
            old = f.initial["resource"] + (f":{f.initial['gpu_model']}"
                                           if f.initial.get("gpu_model") else "")
            if old not in {r["resource_key"] for r in rows} and old not in removed:
                removed.append(old)
    return {"weight": form.cleaned_data["weight"], "quotas": rows, "removed": removed}


def _what_if(tenant, form, formset):
    from console.ui.whatif import what_if

    proposal = _proposal(tenant, form, formset)
    return what_if(tenant, weight=proposal["weight"], quotas=proposal["quotas"],
                   removed=proposal["removed"])


@staff_required
def tenant_edit(request, slug):
    tenant = get_tenant_for_user(request.user, slug)
    form, formset = _forms(request, tenant)
    whatif = None
    if request.method == "POST" and form.is_valid() and formset.is_valid():
        if "save" in request.POST:
            try:
                _save(tenant, form, formset)
            except ValidationError as error:
                add_action_errors(form, error)
            else:
                messages.success(request, _("%(tenant)s: weight and quotas saved; they apply from "
                                             "the next scheduling cycle.")
                                 % {"tenant": tenant.name})
                return redirect("tenant-detail", slug=tenant.slug)
        else:
            whatif = _what_if(tenant, form, formset)
    return render(request, "tenants/edit.html", {
        "section": "tenants", "tenant": tenant, "form": form, "formset": formset,
        "whatif": whatif, "invalid": request.method == "POST" and whatif is None,
    })


@staff_required
@require_POST
def tenant_whatif(request, slug):
    """htmx: the what-if panel for the proposed values, without saving them."""
    tenant = get_tenant_for_user(request.user, slug)
    form, formset = _forms(request, tenant)
    whatif = None
    if form.is_valid() and formset.is_valid():
        whatif = _what_if(tenant, form, formset)
    return render(request, "partials/whatif.html", {
        "tenant": tenant, "form": form, "formset": formset, "whatif": whatif,
        "invalid": whatif is None,
    })


def _save(tenant, form, formset) -> None:
    proposal = _proposal(tenant, form, formset)
    with transaction.atomic():
        do_update_tenant(tenant, name=form.cleaned_data["name"], weight=proposal["weight"])
        keep = set()
        for row in proposal["quotas"]:
            do_set_quota(tenant, resource=row["resource"], gpu_model=row["gpu_model"],
                         guaranteed=row["guaranteed"], limit=row["limit"])
            keep.add(row["resource_key"])
        for quota in tenant.quotas.all():
            if quota.resource_key in proposal["removed"] and quota.resource_key not in keep:
                do_delete_quota(quota)
