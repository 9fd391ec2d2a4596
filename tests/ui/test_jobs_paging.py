"""The console's job list counts no further than its pages reach."""

from console.core.models import Job
from console.ui.paging import CappedPaginator


def _jobs(tenant, n):
    Job.objects.bulk_create(
        Job(tenant=tenant, name=f"j{i}", gpus_per_host=0, vcpus_per_host=1,
            memory_gib_per_host=1)
        for i in range(n)
    )


def test_below_the_cap_the_count_is_exact(tenant_a):
    _jobs(tenant_a, 7)
    paginator = CappedPaginator(Job.objects.all(), 2, cap=10)
    assert (paginator.count, paginator.num_pages, paginator.capped) == (7, 4, False)


def test_above_the_cap_the_pages_stop_at_the_cap(tenant_a):
    _jobs(tenant_a, 25)
    paginator = CappedPaginator(Job.objects.all(), 5, cap=10)
    assert paginator.capped
    assert paginator.num_pages == 2
    assert len(paginator.get_page(2).object_list) == 5
    assert paginator.get_page(3).number == 2  # past the end: the last page shown


def test_the_list_page_says_there_are_more(login, member_a, tenant_a):
    _jobs(tenant_a, 1001)
    page = login(member_a).get("/jobs/")
    assert page.status_code == 200
    assert b"more than 1000 jobs" in page.content
