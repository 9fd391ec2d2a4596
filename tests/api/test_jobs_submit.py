"""POST /api/v1/jobs/: submit a job for one of your tenants."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from console.core.models import Job, Quota

URL = "/api/v1/jobs/"


def submit(client, body):
    return client.post(URL, body, format="json")


def test_member_submits_a_job_and_sees_it_queued_with_a_pending_reason(
    cluster, member_a, client_for, job_spec
):
    client = client_for(member_a)
    response = submit(client, job_spec())
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["state"] == "queued"
    assert body["submitter"] == "alice"

    detail = client.get(f"{URL}{body['id']}/").json()
    assert detail["state"] == "queued"
    assert detail["pending_reason"]
    assert detail["pending_code"] == "new"
    assert detail["queued_at"]
    assert detail["placement"] == []
    assert [e["to_state"] for e in detail["events"]] == ["queued"]


def test_hosts_maps_to_the_job_host_count(cluster, member_a, client_for, job_spec):
    response = submit(client_for(member_a), job_spec(hosts=2, gpus_per_host=8))
    assert response.status_code == 201, response.json()
    assert Job.objects.get().host_count == 2
    assert response.json()["hosts"] == 2


def test_a_gpu_share_job_is_accepted(cluster, member_a, client_for, job_spec):
    response = submit(client_for(member_a), job_spec(gpus_per_host=1, gpu_milli=250))
    assert response.status_code == 201, response.json()
    assert Job.objects.get().gpu_milli == 250


def test_a_cpu_only_job_is_accepted(cluster, member_a, client_for, job_spec):
    response = submit(client_for(member_a), job_spec(gpus_per_host=0))
    assert response.status_code == 201, response.json()


def test_member_of_b_cannot_submit_for_tenant_a(cluster, member_b, client_for, job_spec):
    response = submit(client_for(member_b), job_spec(tenant="tenant-a"))
    assert response.status_code == 400
    assert "tenant" in response.json()
    assert Job.objects.count() == 0


def test_an_unknown_tenant_reads_like_a_tenant_of_someone_else(
    cluster, tenant_a, member_b, client_for, job_spec
):
    """The answer must not reveal whether a slug exists."""
    client = client_for(member_b)
    other = submit(client, job_spec(tenant="tenant-a")).json()["tenant"][0]
    missing = submit(client, job_spec(tenant="no-such-tenant")).json()["tenant"][0]
    assert other.replace("tenant-a", "X") == missing.replace("no-such-tenant", "X")


def test_user_without_membership_cannot_submit(cluster, tenant_a, outsider, client_for, job_spec):
    response = submit(client_for(outsider), job_spec())
    assert response.status_code == 400
    assert "tenant" in response.json()
    assert Job.objects.count() == 0


def test_admin_may_submit_for_any_tenant(cluster, tenant_a, admin_user, client_for, job_spec):
    response = submit(client_for(admin_user), job_spec())
    assert response.status_code == 201


def test_anonymous_submit_gets_401(cluster, tenant_a, client_for, job_spec):
    response = submit(client_for(None), job_spec())
    assert response.status_code == 401
    assert Job.objects.count() == 0


def test_session_authentication_works_too(cluster, member_a, job_spec):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_login(member_a)
    assert submit(client, job_spec()).status_code == 201


BAD_INPUT = [
    ("name", {"name": ""}),
    ("gpu_model", {"gpus_per_host": 0, "gpu_model": "A100-SXM4-40GB"}),
    ("name", {"name": "x" * 64}),
    ("name", {"name": "-starts-with-dash"}),
    ("name", {"name": "has space"}),
    ("name", {"name": "semi;colon"}),
    ("name", {"name": "trailing-newline\n"}),
    ("name", {"name": "ünï code"}),  # any script, but no spaces
    ("name", {"name": None}),
    ("name", {"name": ["a"]}),
    ("gpus_per_host", {"gpus_per_host": -1}),
    ("gpus_per_host", {"gpus_per_host": 17}),
    ("gpus_per_host", {"gpus_per_host": 10**30}),
    ("gpus_per_host", {"gpus_per_host": "two"}),
    ("gpus_per_host", {"gpus_per_host": 1.5}),
    ("gpus_per_host", {"gpus_per_host": True}),
    ("gpus_per_host", {"gpus_per_host": None}),
    ("gpus_per_host", {"gpus_per_host": 9}),  # more than any host has
    ("hosts", {"hosts": 0}),
    ("hosts", {"hosts": -3}),
    ("hosts", {"hosts": 513}),
    ("hosts", {"hosts": 5}),  # more hosts with 2 GPUs than the cluster has
    ("hosts", {"hosts": {"n": 1}}),
    ("hosts", {"gpus_per_host": 0, "hosts": 5}),  # a CPU-only gang larger than the cluster
    ("vcpus_per_host", {"vcpus_per_host": 0}),
    ("vcpus_per_host", {"vcpus_per_host": 1025}),
    ("vcpus_per_host", {"vcpus_per_host": 1000}),  # more cores than any host has
    ("memory_gib_per_host", {"memory_gib_per_host": 0}),
    ("memory_gib_per_host", {"memory_gib_per_host": 16385}),
    ("memory_gib_per_host", {"memory_gib_per_host": 9000}),  # more than any host has
    ("memory_gib_per_host", {"memory_gib_per_host": "lots"}),
    ("priority", {"priority": -1001}),
    ("priority", {"priority": 1001}),
    ("priority", {"priority": "high"}),
    ("preemptible", {"preemptible": "maybe"}),
    ("preemptible", {"preemptible": None}),
    ("gpu_model", {"gpu_model": "GTX-9999"}),
    ("gpu_model", {"gpu_model": "x" * 101}),
    ("gpu_model", {"gpu_model": {"name": "A100"}}),
    ("gpu_milli", {"gpus_per_host": 1, "gpu_milli": 0}),
    ("gpu_milli", {"gpus_per_host": 1, "gpu_milli": 1000}),
    ("gpu_milli", {"gpus_per_host": 1, "gpu_milli": -5}),
    ("gpu_milli", {"gpus_per_host": 2, "gpu_milli": 500}),
    ("gpu_milli", {"gpus_per_host": 0, "gpu_milli": 500}),
    ("hosts", {"gpus_per_host": 1, "gpu_milli": 500, "hosts": 2}),
    ("tenant", {"tenant": ""}),
    ("tenant", {"tenant": 7}),
    ("tenant", {"tenant": ["tenant-a"]}),
    ("tenant", {"tenant": "t" * 500}),
    ("tenant", {"tenant": "tenant-a\x00"}),
    ("name", {"name": "nul\x00byte"}),
    ("gpu_model", {"gpu_model": "A100\x00"}),
    ("host_count", {"host_count": 2}),  # unknown field: the API calls it "hosts"
]


@pytest.mark.parametrize(("field", "overrides"), BAD_INPUT, ids=[
    f"{field}={json.dumps(list(o.values())[-1])[:20]}" for field, o in BAD_INPUT
])
def test_bad_input_gets_400_naming_the_field_and_writes_nothing(
    cluster, member_a, client_for, job_spec, field, overrides
):
    response = submit(client_for(member_a), job_spec(**overrides))
    assert response.status_code == 400, response.content
    assert field in response.json(), response.json()
    assert Job.objects.count() == 0


@pytest.mark.parametrize("missing", ["tenant", "name", "gpus_per_host", "vcpus_per_host",
                                     "memory_gib_per_host"])
def test_a_missing_required_field_gets_400_naming_it(
    cluster, member_a, client_for, job_spec, missing
):
    body = job_spec()
    del body[missing]
    response = submit(client_for(member_a), body)
    assert response.status_code == 400
    assert missing in response.json()
    assert Job.objects.count() == 0


def test_malformed_json_gets_400(cluster, member_a, client_for):
    response = client_for(member_a).post(URL, '{"name": "x",', content_type="application/json")
    assert response.status_code == 400
    assert Job.objects.count() == 0


@pytest.mark.parametrize("body", ["[]", "3", '"job"', "null", "NaN"])
def test_a_body_that_is_not_an_object_gets_400(cluster, member_a, client_for, body):
    response = client_for(member_a).post(URL, body, content_type="application/json")
    assert response.status_code == 400
    assert Job.objects.count() == 0


def test_a_job_over_the_tenants_limit_is_refused_with_the_reason(
    cluster, tenant_a, member_a, client_for, job_spec
):
    Quota.objects.create(tenant=tenant_a, resource="gpus", guaranteed=2, limit=4)
    response = submit(client_for(member_a), job_spec(gpus_per_host=8))
    assert response.status_code == 400
    assert "limit is 4" in response.json()["gpus_per_host"][0]
    assert Job.objects.count() == 0


def test_an_empty_cluster_refuses_gpu_jobs(tenant_a, member_a, client_for, job_spec):
    response = submit(client_for(member_a), job_spec())
    assert response.status_code == 400
    assert "gpus_per_host" in response.json()


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=80),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10),
                                                                       children, max_size=3),
    max_leaves=6,
)
FIELDS = ["tenant", "name", "gpus_per_host", "hosts", "gpu_model", "gpu_milli",
          "vcpus_per_host", "memory_gib_per_host", "priority", "preemptible"]


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    replaced=st.dictionaries(st.sampled_from(FIELDS), JSON_VALUES, max_size=len(FIELDS)),
    dropped=st.sets(st.sampled_from(FIELDS), max_size=3),
    whole=st.one_of(st.none(), JSON_VALUES),
)
def test_fuzzed_submit_bodies_never_get_a_5xx(
    cluster, member_a, client_for, job_spec, replaced, dropped, whole
):
    body = job_spec(**replaced)
    for field in dropped:
        body.pop(field, None)
    if whole is not None and not isinstance(whole, dict):
        body = whole  # sometimes the body is not an object at all
    response = client_for(member_a).post(URL, json.dumps(body), content_type="application/json")
    assert response.status_code < 500, (body, response.content)
    assert response.status_code in (201, 400), (body, response.content)
