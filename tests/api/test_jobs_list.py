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


def test_page_size_splits_the_list(tenant_a, member_a, make_job, client_for):
    for i in range(5):
        make_job(tenant_a, name=f"j{i}")
    client = client_for(member_a)
    first = client.get(URL, {"page_size": 2}).json()
    assert first["count"] == 5
    assert len(first["results"]) == 2
    assert first["next"]
    last = client.get(URL, {"page_size": 2, "page": 3}).json()
    assert len(last["results"]) == 1
    assert client.get(URL, {"page_size": 2, "page": 4}).status_code == 404


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
