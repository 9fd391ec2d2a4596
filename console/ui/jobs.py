"""Jobs: list with filters, self-service submit with live quota preview,
detail with a live workflow timeline and "why pending", cancel."""

from types import SimpleNamespace

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import Truncator
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from console.core.actions.jobs import (
    JobActionError,
    build_job,
    do_cancel_job,
    do_submit_job,
    validate_job,
)
from console.core.admission import quota_preview
from console.core.choices import (
    JOB_STATE_COLOURS,
    TERMINAL_JOB_STATES,
    TRANSITIONAL_JOB_STATES,
    JobState,
)
from console.core.models import Job, SavedFilter, Tenant
from console.core.selectors.jobs import jobs_for_list
from console.filtersets import JobFilterSet
from console.ui.access import get_job_for_user
from console.ui.explain import pending_text, why_not_reclaimed
from console.ui.forms import ConfirmForm, JobSubmitForm, add_action_errors
from console.ui.paging import CappedPaginator
from console.ui.placement import past_placement, placement_hosts
from console.ui.saved_filters import saved_filters_context
from console.ui.templatetags import job_shape, when

# The workflow of DESIGN.md's lifecycle, as the timeline draws it.
MAIN_PATH = [JobState.QUEUED, JobState.SCHEDULED, JobState.PROVISIONING, JobState.RUNNING]


# The list's filters, as django-filter names them (``?ordering=`` is one).
LIST_FILTERS = tuple(JobFilterSet.base_filters)


@login_required
def job_list(request):
    params = request.GET
    jobs = jobs_for_list(request.user)
    # Without a filter in the address, the filterset (a form built and validated per
    # request) would return the jobs as they are: it is skipped.
    filtering = any(name in params for name in LIST_FILTERS)
    filterset = JobFilterSet(params, queryset=jobs, request=request) if filtering else None
    jobs = filterset.qs if filtering else jobs
    page = CappedPaginator(jobs.values(*ROW_FIELDS), 50).get_page(params.get("page"))
    query = params.copy()
    query.pop("page", None)
    return render(request, "jobs/list.html", {
        "section": "jobs", "page": page, "query": query.urlencode(),
        "rows": job_rows(page),
        "filter_errors": filterset.errors if filtering else {},
        "filters": _filter_fields(request),
        **saved_filters_context(request, SavedFilter.List.JOBS),
    })


def _filter_fields(request) -> dict:
    """The filter form's values and choices, read from the address (no form built)."""
    params = request.GET
    chosen_tenant = params.get("tenant", "")
    tenants = Tenant.objects.for_user(request.user).order_by("name").values_list("slug", "name")
    states = params.getlist("state")
    return {
        "q": params.get("q", ""), "gpu_model": params.get("gpu_model", ""),
        "host": params.get("host", ""),
        "tenants": [(slug, name, slug == chosen_tenant) for slug, name in tenants],
        "states": [(value, label, value in states) for value, label in JobState.choices],
    }


# What a row shows, read with values(): no model instances, one date-time a row.
SHAPE_FIELDS = ("gpu_milli", "gpus_per_host", "gpu_model", "host_count", "vcpus_per_host",
                "memory_gib_per_host")
ROW_FIELDS = ("pk", "name", "state", "tenant__name", "priority", "submitted_at",
              "pending_reason", *SHAPE_FIELDS)


def job_rows(jobs) -> SafeString:
    """The rows of the job list (dicts of ``ROW_FIELDS``), written here rather than
    by a template per row (a 50-row page costs a fraction of the template's time):
    the same cells, escaped the same way, in the reader's language and zone."""
    link = reverse("job-detail", args=[0])
    link_head, link_tail = link[: link.rindex("0")], link[link.rindex("0") + 1:]
    labels = {value: escape(label) for value, label in JobState.choices}
    waiting = (JobState.QUEUED, JobState.PREEMPTED)
    shapes: dict[tuple, str] = {}  # a page holds few distinct shapes
    out = []
    for job in getattr(jobs, "object_list", jobs):
        pk, name, state = job["pk"], escape(job["name"]), job["state"]
        select = ""
        if state not in TERMINAL_JOB_STATES:
            label = _("Select %(name)s") % {"name": name}
            select = f'<input type="checkbox" name="job" value="{pk}" aria-label="{label}">'
        pending = escape(Truncator(job["pending_reason"]).chars(90)) if state in waiting else ""
        key = tuple(job[f] for f in SHAPE_FIELDS)
        shape = shapes.get(key)
        if shape is None:
            shape = shapes[key] = job_shape(SimpleNamespace(**dict(zip(SHAPE_FIELDS, key,
                                                                       strict=True))))
        out.append(
            f"<tr><td>{select}</td><td>{pk}</td>"
            f'<td><a href="{link_head}{pk}{link_tail}">{name}</a></td>'
            f"<td>{escape(job['tenant__name'])}</td>"
            f'<td><span class="badge {JOB_STATE_COLOURS.get(state, "grey")}">'
            f"{labels.get(state) or escape(state)}</span></td>"
            f"<td>{shape}</td><td class=\"num\">{job['priority']}</td>"
            f"<td>{when(job['submitted_at'])}</td><td class=\"muted\">{pending}</td></tr>"
        )
    return mark_safe("\n".join(out))  # noqa: S308 - every value above is escaped


@login_required
def job_submit(request):
    form = JobSubmitForm(request.POST if request.method == "POST" else None, user=request.user,
                         initial={"tenant": request.GET.get("tenant")})
    if request.method == "POST" and form.is_valid():
        try:
            job = do_submit_job(
                tenant=form.cleaned_data["tenant"], submitter=request.user,
                actor=request.user.get_username(), **form.spec(),
            )
        except ValidationError as error:
            add_action_errors(form, error)
        else:
            messages.success(request, _("Job %(name)s (#%(n)s) submitted.")
                             % {"name": job.name, "n": job.pk})
            return redirect("job-detail", pk=job.pk)
    return render(request, "jobs/submit.html", {
        "section": "jobs", "form": form, "preview": _preview(form) if form.is_bound else None,
    })


def _preview(form: JobSubmitForm) -> dict:
    """What the job would use of its tenant's quota, and why it would be refused."""
    if not form.is_valid():
        return {"form_errors": True, "rows": [], "errors": []}
    tenant = form.cleaned_data["tenant"]
    job = build_job(tenant=tenant, **form.spec())
    errors = []
    try:
        validate_job(job)
    except ValidationError as error:
        for field, messages_ in error.message_dict.items():
            label = form.fields[field].label if field in form.fields else field
            errors.extend(f"{label or field}: {m}" for m in messages_)
    rows = quota_preview(job, tenant)
    return {
        "form_errors": False,
        "tenant": tenant,
        "rows": rows,
        "errors": errors,
        "borrows": any(r["borrows"] for r in rows),
        "over_limit": any(r["over_limit"] for r in rows),
    }


@login_required
@require_POST
def job_submit_preview(request):
    """htmx: the quota panel of the submit form, re-rendered as fields change."""
    form = JobSubmitForm(request.POST, user=request.user)
    return render(request, "partials/quota_preview.html", {"form": form, "preview": _preview(form)})


def _timeline(job: Job) -> list[dict]:
    steps = []
    index = MAIN_PATH.index(job.state) if job.state in MAIN_PATH else None
    for i, state in enumerate(MAIN_PATH):
        at = getattr(job, {JobState.QUEUED: "queued_at", JobState.SCHEDULED: "scheduled_at",
                           JobState.PROVISIONING: "provisioning_at",
                           JobState.RUNNING: "running_at"}[state])
        if job.state == state:
            status = "current"
        elif (index is not None and i < index) or at:
            status = "done"
        else:
            status = ""
        steps.append({"label": JobState(state).label, "at": at, "status": status})
    if job.state not in MAIN_PATH:
        bad = job.state in (JobState.FAILED, JobState.PREEMPTED)
        at = job.finished_at or job.teardown_at or job.preempted_at
        if job.state != JobState.TEARDOWN and job.teardown_at:
            steps.append({"label": JobState.TEARDOWN.label, "at": job.teardown_at,
                          "status": "done"})
        steps.append({"label": job.get_state_display(), "at": at,
                      "status": "bad" if bad else "current"})
    return steps


def _job_context(request, job: Job) -> dict:
    pending_rows = None
    if job.state in (JobState.QUEUED, JobState.PREEMPTED):
        # The job holds nothing yet: the preview is exactly what it would add.
        pending_rows = quota_preview(job, job.tenant)
    return {
        "section": "jobs",
        "job": job,
        "live": job.state in TRANSITIONAL_JOB_STATES,
        "can_cancel": job.state not in TERMINAL_JOB_STATES,
        "timeline": _timeline(job),
        "placement": placement_hosts(job),
        "past_placement": past_placement(job) if job.state in TERMINAL_JOB_STATES else [],
        "incidents": job.incidents.all().order_by("-opened_at")[:5],
        "events": job.events.all().order_by("-created_at", "-id")[:50],
        "pending_rows": pending_rows,
        "pending_text": pending_text(job),
        "not_reclaimed": why_not_reclaimed(job, request.user),
        "pending_data": sorted((job.pending_data or {}).items()),
    }


@login_required
def job_detail(request, pk):
    job = get_job_for_user(request.user, pk)
    return render(request, "jobs/detail.html", _job_context(request, job))


@login_required
def job_live(request, pk):
    """htmx: the live part of the job page (polled every 2 s while transitional)."""
    job = get_job_for_user(request.user, pk)
    return render(request, "partials/job_live.html", _job_context(request, job))


@login_required
def job_cancel(request, pk):
    job = get_job_for_user(request.user, pk)
    form = ConfirmForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        reason = form.cleaned_data["reason"] or f"cancelled by {request.user.get_username()}"
        try:
            do_cancel_job(job, actor=request.user.get_username(), reason=reason)
        except JobActionError as error:
            messages.error(request, str(error))
        else:
            messages.success(request, _("Cancel requested for %(name)s (#%(n)s).")
                             % {"name": job.name, "n": job.pk})
        return redirect("job-detail", pk=job.pk)
    if job.state in TERMINAL_JOB_STATES:
        messages.info(request, _("Job #%(n)s has already finished (%(state)s).")
                      % {"n": job.pk, "state": job.get_state_display()})
        return redirect("job-detail", pk=job.pk)
    return render(request, "jobs/cancel.html", {"section": "jobs", "job": job, "form": form})


def _selected_ids(request) -> list[int]:
    return sorted({int(v) for v in request.POST.getlist("job") if v.isdigit()})[:500]


@login_required
@require_POST
def job_bulk_cancel(request):
    """Cancel the selected jobs: first a confirmation that lists what each
    cancel does, then one audited cancel per job (only jobs the user may see)."""
    jobs = list(Job.objects.for_user(request.user).filter(pk__in=_selected_ids(request))
                .select_related("tenant").order_by("pk"))
    active = [j for j in jobs if j.state not in TERMINAL_JOB_STATES]
    if not active:
        messages.info(request, _("Select at least one job that has not finished."))
        return redirect("job-list")
    form = ConfirmForm(request.POST if request.POST.get("confirm") else None)
    if request.POST.get("confirm") and form.is_valid():
        actor = request.user.get_username()
        reason = form.cleaned_data["reason"] or f"cancelled by {actor} (bulk)"
        done, refused = [], []
        for job in active:
            try:
                do_cancel_job(job, actor=actor, reason=reason)
            except JobActionError as error:
                refused.append(f"#{job.pk}: {error}")
            else:
                done.append(f"#{job.pk}")
        if done:
            messages.success(request, _("Cancel requested for %(n)s job(s): %(ids)s.")
                             % {"n": len(done), "ids": ", ".join(done)})
        for line in refused:
            messages.error(request, line)
        return redirect("job-list")
    return render(request, "jobs/bulk_cancel.html", {
        "section": "jobs", "jobs": active, "finished": len(jobs) - len(active), "form": form,
        "queued": sum(1 for j in active if j.state in (JobState.QUEUED, JobState.PREEMPTED)),
    })
