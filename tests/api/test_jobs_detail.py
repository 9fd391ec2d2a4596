"""GET /api/v1/jobs/{id}/: state, placement, events, why pending."""

import pytest

from console.core.models import Allocation, Gpu, Host


def url(job):
    return f"/api/v1/jobs/{job.pk}/"


def test_member_of_a_sees_tenant_a_job(job_a, member_a, client_for):
    response = client_for(member_a).get(url(job_a))
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == job_a.pk
    assert body["tenant"] == "tenant-a"
    assert body["pending_reason"] == "Waiting for the next scheduling cycle."
    assert {"pending_code", "pending_data", "teardown_outcome", "failure_reason",
            "submitted_at", "scheduled_at", "running_at", "finished_at"} <= body.keys()


def test_member_of_b_gets_404_on_tenant_a_job(job_a, member_b, client_for):
    assert client_for(member_b).get(url(job_a)).status_code == 404


def test_user_without_membership_gets_404_on_any_job(job_a, outsider, client_for):
    assert client_for(outsider).get(url(job_a)).status_code == 404


def test_admin_sees_every_job(job_a, job_b, admin_user, client_for):
    client = client_for(admin_user)
    assert client.get(url(job_a)).status_code == 200
    assert client.get(url(job_b)).status_code == 200


def test_anonymous_gets_401(job_a, client_for):
    assert client_for(None).get(url(job_a)).status_code == 401


def test_a_missing_job_is_404(member_a, client_for):
    assert client_for(member_a).get("/api/v1/jobs/999999/").status_code == 404


def test_placement_lists_gpus_cores_and_numa_nodes_per_host(
    cluster, tenant_a, member_a, make_job, client_for
):
    job = make_job(tenant_a, name="gang", state="running", gpus_per_host=2, host_count=2,
                   pending_reason="", pending_code="")
    for name, node, cores in [("dgx-1", 3, [48, 49]), ("dgx-2", 3, [50, 51])]:
        host = Host.objects.get(name=name)
        Allocation.objects.create(job=job, host=host, cpus=cores, numa_nodes=[node],
                                  memory_gib=64)
        for gpu in Gpu.objects.filter(host=host).order_by("index")[:2]:
            Allocation.objects.create(job=job, host=host, gpu=gpu, milli=1000)

    placement = client_for(member_a).get(url(job)).json()["placement"]

    assert [p["host"] for p in placement] == ["dgx-1", "dgx-2"]
    dgx1 = placement[0]
    assert dgx1["gpus"] == list(
        Gpu.objects.filter(host__name="dgx-1").order_by("index")
        .values_list("pci_address", flat=True)[:2]
    )
    assert dgx1["cpus"] == [48, 49]
    assert dgx1["numa_nodes"] == [3]
    assert dgx1["memory_gib"] == 64


@pytest.mark.parametrize("state", ["queued", "running", "failed"])
def test_detail_shows_the_failure_reason_and_state(tenant_a, member_a, make_job, client_for,
                                                   state):
    job = make_job(tenant_a, state=state, failure_reason="Xid 79" if state == "failed" else "")
    body = client_for(member_a).get(url(job)).json()
    assert body["state"] == state
    assert body["failure_reason"] == ("Xid 79" if state == "failed" else "")


def test_after_a_scheduling_cycle_the_detail_shows_where_the_job_runs(
    cluster, member_a, client_for, job_spec
):
    """Through the real planner: submit, run one cycle, read the placement back."""
    from console.core.planning import run_cycle

    client = client_for(member_a)
    job_id = client.post("/api/v1/jobs/", job_spec(gpus_per_host=2), format="json").json()["id"]
    run_cycle()

    body = client.get(f"/api/v1/jobs/{job_id}/").json()
    assert body["state"] != "queued", body["pending_reason"]
    [placed] = body["placement"]
    host = Host.objects.get(name=placed["host"])
    assert len(placed["gpus"]) == 2
    assert set(placed["gpus"]) <= set(host.gpus.values_list("pci_address", flat=True))
    assert len(placed["cpus"]) == 8
    assert placed["numa_nodes"]
    assert body["scheduled_at"]


@pytest.mark.parametrize("reader", ["member_a", "admin_user"])
def test_detail_is_what_the_detail_serializer_writes(job_a, reader, request, client_for):
    """The view writes the job through the flat writer: the same document as
    JobDetailSerializer, events (with their staff-only data) and placement included."""
    from rest_framework.test import APIRequestFactory

    from console.api.serializers import JobDetailSerializer
    from console.core.actions.jobs import do_cancel_job
    from console.core.models import Event, Job

    user = request.getfixturevalue(reader)
    do_cancel_job(job_a, actor="alice", reason="no longer needed")
    Event.objects.filter(job=job_a).update(data={"for_job": 7, "kept": "yes"})
    body = client_for(user).get(url(job_a)).json()
    drf_request = APIRequestFactory().get(url(job_a))
    drf_request.user = user
    job = Job.objects.prefetch_related("events", "allocations__host",
                                       "allocations__gpu").get(pk=job_a.pk)
    expected = JobDetailSerializer(job, context={"request": drf_request}).data
    assert body == expected
    assert body["events"] and all(("for_job" in e["data"]) == user.is_staff
                                  for e in body["events"])
