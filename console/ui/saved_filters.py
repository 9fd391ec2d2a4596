"""Saved filters of the job, host and fault lists: save the list's current
address under a name, apply it (a link back to the list with that query),
delete it. Each user sees only their own; another user's filter is a 404.
The filter itself stays in the address, so a bookmark works as well."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from console.core.actions.preferences import do_delete_filter, do_save_filter, filter_query
from console.core.models import SavedFilter

LIST_URLS = {SavedFilter.List.JOBS: "job-list", SavedFilter.List.HOSTS: "host-list",
             SavedFilter.List.FAULTS: "incident-list"}


def list_url(list_name: str, query: str = "") -> str:
    url = reverse(LIST_URLS[list_name])
    return f"{url}?{query}" if query else url


def saved_filters_context(request, list_name: str) -> dict:
    """What a list page needs to show its saved filters and the save form."""
    return {"saved": _panel_context(request.user, list_name,
                                    filter_query(request.GET.urlencode()))}


def _panel_context(user, list_name: str, query: str, error: str = "") -> dict:
    return {"list": list_name, "url": list_url(list_name), "query": query, "error": error,
            "filters": SavedFilter.objects.for_user(user).filter(list=list_name)}


def _get_saved(user, pk) -> SavedFilter:
    return get_object_or_404(SavedFilter.objects.for_user(user), pk=pk)


def _panel(request, list_name: str, query: str, error: str = ""):
    """The saved-filters panel alone (htmx) or the list page again (no JS)."""
    if request.headers.get("HX-Request"):
        context = {"saved": _panel_context(request.user, list_name, query, error)}
        return render(request, "partials/saved_filters.html", context,
                      status=400 if error else 200)
    if error:
        messages.error(request, error)
    return redirect(list_url(list_name, query))


@login_required
@require_POST
def save_filter(request, list_name):
    if list_name not in LIST_URLS:
        raise Http404(_("No such list."))
    query = request.POST.get("query", "")
    try:
        saved = do_save_filter(request.user, list=list_name, name=request.POST.get("name", ""),
                               query=query)
    except ValidationError as error:
        text = " ".join(m for msgs in error.message_dict.values() for m in msgs)
        return _panel(request, list_name, filter_query(query),
                      _("The filter was not saved: %(why)s") % {"why": text})
    if not request.headers.get("HX-Request"):
        messages.success(request, _("Filter “%(name)s” saved.") % {"name": saved.name})
    return _panel(request, list_name, saved.query)


@login_required
def apply_filter(request, pk):
    saved = _get_saved(request.user, pk)
    return redirect(list_url(saved.list, saved.query))


@login_required
@require_POST
def delete_filter(request, pk):
    saved = _get_saved(request.user, pk)
    list_name, name = saved.list, saved.name
    do_delete_filter(saved)
    if not request.headers.get("HX-Request"):
        messages.success(request, _("Filter “%(name)s” deleted.") % {"name": name})
    return _panel(request, list_name, filter_query(request.POST.get("query", "")))
