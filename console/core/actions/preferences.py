"""A user's own console settings: saved list filters."""

from urllib.parse import urlencode

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import QueryDict
from django.utils.translation import gettext_lazy as _

from console.core.models import SavedFilter

# Parameters of a list's address that are not part of a filter.
NOT_FILTERS = ("page", "csrfmiddlewaretoken")


def filter_query(query: str) -> str:
    """A list's query string as a saved filter keeps it: without the page and
    empty values, parameters in a stable order."""
    params = QueryDict(query)
    kept = sorted((key, value) for key in params for value in params.getlist(key)
                  if key not in NOT_FILTERS and value != "")
    return urlencode(kept)


def do_save_filter(user, *, list: str, name: str, query: str) -> SavedFilter:
    """Save (or, under the same name, replace) one of the user's list filters."""
    name = name.strip()
    saved = SavedFilter(user=user, list=list, name=name, query=filter_query(query))
    saved.full_clean(exclude=["user"], validate_unique=False)
    if not saved.query:
        raise ValidationError({"query": [_("Set a filter or a sort order first: there is "
                                           "nothing to save.")]})
    with transaction.atomic():
        saved, _created = SavedFilter.objects.update_or_create(
            user=user, list=list, name=name, defaults={"query": saved.query})
    return saved


def do_delete_filter(saved: SavedFilter) -> None:
    with transaction.atomic():
        saved.delete()
