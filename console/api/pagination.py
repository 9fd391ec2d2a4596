from rest_framework.pagination import CursorPagination
from rest_framework.pagination import PageNumberPagination as BasePageNumberPagination


class PageNumberPagination(BasePageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class NewestFirstCursorPagination(CursorPagination):
    """Keyset pagination for lists that grow without bound (jobs): a page costs
    the same at the millionth row as at the first, and no ``COUNT(*)`` is run.

    ``next`` and ``previous`` are opaque links; the response has no ``count``.
    ``?ordering=`` picks another of the filterset's orderings (the cursor then
    keys on that field, with the id as tie-breaker)."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500
    ordering = ("-submitted_at", "-id")
    orderings = ("submitted_at", "priority", "name", "state")

    def get_ordering(self, request, queryset, view):
        requested = request.query_params.get("ordering", "")
        if requested.lstrip("-") in self.orderings:
            descending = requested.startswith("-")
            return (requested, "-id" if descending else "id")
        return self.ordering
