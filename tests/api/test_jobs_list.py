"""GET /api/v1/jobs/: your tenants' jobs, paginated and filtered."""

from datetime import timedelta

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from console.core.models import Job

URL = "/api/v1/jobs/"


def names(response):
    assert response.status_code == 200, response.content
    return sorted(job["name"] for job in response.json()["results"])


def test_member_of_a_sees_only_tenant_a_jobs(job_a, job_b, member_a, client_for):
    assert names(client_for(member_a).get(URL)) == ["job-of-a"]


def test_member_of_b_sees_only_tenant_b_jobs(job_a, job_b, member_b, client_for):
    assert names(client_for(member_b).get(URL)) == ["job-of-b"]


def test_user_without_membership_sees_no_jobs(job_a, job_b, outsider, client_for):
    assert names(client_for(outsider).get(URL)) == []


def test_admin_sees_all_jobs(job_a, job_b, admin_user, client_for):
    assert names(client_for(admin_user).get(URL)) == ["job-of-a", "job-of-b"]


def test_anonymous_gets_401(job_a, client_for):
    assert client_for(None).get(URL).status_code == 401


def _walk(client, query):
    """Every page's names, following ``next`` links."""
    pages = []
    response = client.get(URL, query)
    while True:
        assert response.status_code == 200, response.content
        body = response.json()
        assert "count" not in body  # no COUNT(*) over a tenant's whole history
        pages.append([job["name"] for job in body["results"]])
        if not body["next"]:
            return pages
        response = client.get(body["next"])


def test_pages_follow_cursors_newest_first(tenant_a, member_a, make_job, client_for):
    for i in range(5):
        make_job(tenant_a, name=f"j{i}")
    pages = _walk(client_for(member_a), {"page_size": 2})
    assert pages == [["j4", "j3"], ["j2", "j1"], ["j0"]]


def test_a_job_submitted_while_paging_does_not_shift_the_pages(tenant_a, member_a, make_job,
                                                               client_for):
    for i in range(4):
        make_job(tenant_a, name=f"j{i}")
    client = client_for(member_a)
    first = client.get(URL, {"page_size": 2}).json()
    make_job(tenant_a, name="newer")
    second = client.get(first["next"]).json()
    assert [job["name"] for job in second["results"]] == ["j1", "j0"]


def test_pages_can_follow_another_ordering(tenant_a, member_a, make_job, client_for):
    for i, priority in enumerate([5, 1, 5, 3, 1]):
        make_job(tenant_a, name=f"p{i}", priority=priority)
    pages = _walk(client_for(member_a), {"page_size": 2, "ordering": "-priority"})
    assert [name for page in pages for name in page] == ["p2", "p0", "p3", "p4", "p1"]


def test_a_made_up_cursor_is_a_404(job_a, member_a, client_for):
    assert client_for(member_a).get(URL, {"cursor": "not-a-cursor"}).status_code == 404


def test_list_rows_match_the_job_serializer(tenant_a, member_a, make_job, client_for):
    """The flat list writer and DRF's own serializer agree field by field."""
    from console.api.serializers import JobSerializer

    make_job(tenant_a, name="shared", gpus_per_host=1, gpu_milli=250, state="running")
    whole = make_job(tenant_a, name="whole", gpus_per_host=2, gpu_model="A100-SXM4-40GB")
    # A whole second: written without a fraction (PostgreSQL writes these rows' times).
    Job.objects.filter(pk=whole.pk).update(
        running_at=timezone.now().replace(microsecond=0),
        finished_at=timezone.now().replace(microsecond=120))
    rows = client_for(member_a).get(URL).json()["results"]
    jobs = Job.objects.filter(pk__in=[r["id"] for r in rows]).order_by("-submitted_at", "-id")
    expected = [JobSerializer(job).data for job in jobs]
    assert rows == [dict(JobSerializer().to_representation(job)) for job in jobs]
    assert rows == [dict(e) for e in expected]


def test_list_rows_match_the_serializer_in_the_users_time_zone(tenant_a, member_a, make_job,
                                                              client):
    """Date-times in the reader's zone (a signed-in user's preference), as the
    serializer writes them; a submitter, a JSON field and a whole second included."""
    from django.utils import timezone as tz

    from console.api.serializers import JobSerializer
    from console.core.models import UserPreference

    UserPreference.objects.create(user=member_a, time_zone="Asia/Shanghai")
    job = make_job(tenant_a, name="zoned", submitter=member_a, state="running",
                   pending_data={"free": [1, 2]})
    Job.objects.filter(pk=job.pk).update(running_at=tz.now().replace(microsecond=0))
    client.force_login(member_a)
    response = client.get(URL)
    assert response["Content-Type"] == "application/json"
    rows = response.json()["results"]
    assert rows[0]["submitted_at"].endswith("+08:00")
    with tz.override("Asia/Shanghai"):
        expected = [dict(JobSerializer(j).data) for j in Job.objects.filter(pk=job.pk)]
    assert rows == expected


def test_the_browsable_api_still_lists_jobs(job_a, member_a, client_for):
    response = client_for(member_a).get(URL, {"format": "api"})
    assert response.status_code == 200
    assert "job-of-a" in response.content.decode()


def test_filter_by_state(tenant_a, member_a, make_job, client_for):
    make_job(tenant_a, name="waiting")
    make_job(tenant_a, name="working", state="running")
    make_job(tenant_a, name="done", state="succeeded")
    client = client_for(member_a)
    assert names(client.get(URL, {"state": "running"})) == ["working"]
    assert names(client.get(URL + "?state=running&state=succeeded")) == ["done", "working"]
    assert client.get(URL, {"state": "sleeping"}).status_code == 400


def test_filter_by_name_contains(tenant_a, member_a, make_job, client_for):
    make_job(tenant_a, name="train-llm")
    make_job(tenant_a, name="eval-llm")
    make_job(tenant_a, name="train-vit")
    assert names(client_for(member_a).get(URL, {"name": "train"})) == ["train-llm", "train-vit"]


def test_filter_by_tenant_slug(job_a, job_b, admin_user, client_for):
    assert names(client_for(admin_user).get(URL, {"tenant": "tenant-b"})) == ["job-of-b"]


def test_filtering_by_another_tenant_reveals_nothing(job_a, job_b, member_a, client_for):
    response = client_for(member_a).get(URL, {"tenant": "tenant-b"})
    assert response.status_code == 400
    assert "job-of-b" not in response.content.decode()


def test_filter_by_gpu_model(tenant_a, member_a, make_job, client_for):
    make_job(tenant_a, name="on-a100", gpu_model="A100-SXM4-40GB")
    make_job(tenant_a, name="on-any")
    assert names(client_for(member_a).get(URL, {"gpu_model": "A100-SXM4-40GB"})) == ["on-a100"]


def test_filter_by_submitted_after_and_before(tenant_a, member_a, make_job, client_for):
    old = make_job(tenant_a, name="old")
    make_job(tenant_a, name="new")
    cutoff = timezone.now() - timedelta(days=1)
    Job.objects.filter(pk=old.pk).update(submitted_at=cutoff - timedelta(days=1))
    client = client_for(member_a)
    assert names(client.get(URL, {"submitted_after": cutoff.isoformat()})) == ["new"]
    assert names(client.get(URL, {"submitted_before": cutoff.isoformat()})) == ["old"]
    assert client.get(URL, {"submitted_after": "yesterday"}).status_code == 400


@pytest.mark.parametrize("query", [{"page_size": "lots"}, {"page_size": "-1"},
                                   {"q": "9" * 40}, {"ordering": "secret"}])
def test_odd_query_parameters_never_give_a_5xx(job_a, member_a, client_for, query):
    assert client_for(member_a).get(URL, query).status_code < 500


PARAMS = ["state", "tenant", "name", "gpu_model", "host", "preemptible", "q",
          "submitted_after", "submitted_before", "ordering", "page", "page_size"]


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(query=st.dictionaries(st.sampled_from(PARAMS), st.text(max_size=40), max_size=5))
def test_fuzzed_list_filters_never_get_a_5xx(job_a, member_a, client_for, query):
    assert client_for(member_a).get(URL, query).status_code in (200, 400, 404)


def test_a_search_for_a_non_ascii_digit_is_a_name_search(job_a, member_a, client_for):
    assert names(client_for(member_a).get(URL, {"q": "²"})) == []
