"""Page numbers for lists that grow without bound, without an exact COUNT(*).

A tenant with a year of history has tens of thousands of jobs; counting them
all on every page view costs more than the page. ``CappedPaginator`` counts
at most ``cap`` + 1 rows (``SELECT COUNT(*) FROM (… LIMIT cap + 1)``): below
the cap the count is exact; above it the list says "more than <cap>" and the
pages stop at the cap — filters (state, dates, search) narrow the list
further back.
"""

from django.core.paginator import Paginator
from django.utils.functional import cached_property


class CappedPaginator(Paginator):
    def __init__(self, object_list, per_page, *, cap: int = 1000, **kwargs) -> None:
        super().__init__(object_list, per_page, **kwargs)
        self.cap = cap

    @cached_property
    def count(self) -> int:
        return self.object_list[: self.cap + 1].count()

    @property
    def capped(self) -> bool:
        """More rows exist than the pages reach."""
        return self.count > self.cap

    @cached_property
    def num_pages(self) -> int:
        return super().num_pages if not self.capped else -(-self.cap // self.per_page)
