"""/api/v1/hosts/: hardware for any signed-in user; cordon/uncordon/drain for admins."""

import pytest

from console.core.models import Allocation, Event, Gpu, Host

URL = "/api/v1/hosts/"


@pytest.fixture
def dgx1(cluster):
    return Host.objects.get(name="dgx-1")


def test_host_detail_shows_gpus_links_and_numa_nodes(dgx1, member_a, client_for):
    response = client_for(member_a).get(f"{URL}{dgx1.pk}/")
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "dgx-1"
    assert len(body["gpus"]) == 8
    gpu = body["gpus"][0]
    assert {"index", "uuid", "pci_address", "model", "memory_mib", "numa_node",
            "health"} <= gpu.keys()
    assert gpu["model"] == "A100-SXM4-40GB"
    assert body["links"] and {"a", "b", "kind"} <= body["links"][0].keys()
    assert len(body["numa_nodes"]) == 8
    assert "agent_token_hash" not in body


@pytest.mark.parametrize("who", ["member_a", "member_b", "outsider", "admin_user"])
def test_any_signed_in_user_reads_hosts(dgx1, client_for, request, who):
    client = client_for(request.getfixturevalue(who))
    assert client.get(URL).json()["count"] == 4
    assert client.get(f"{URL}{dgx1.pk}/").status_code == 200


def test_anonymous_gets_401(dgx1, client_for):
    assert client_for(None).get(URL).status_code == 401


def test_filter_hosts_by_gpu_model_and_state(cluster, member_a, client_for):
    client = client_for(member_a)
    h100 = client.get(URL, {"gpu_model": "H100-SXM5-80GB"}).json()["results"]
    assert [h["name"] for h in h100] == ["hgx-1"]
    assert client.get(URL, {"state": "cordoned"}).json()["count"] == 0


def test_admin_cordons_and_uncordons_a_host_with_a_reason(dgx1, admin_user, client_for):
    client = client_for(admin_user)
    response = client.post(f"{URL}{dgx1.pk}/cordon/", {"reason": "fan swap"}, format="json")
    assert response.status_code == 200, response.content
    assert (response.json()["state"], response.json()["state_reason"]) == ("cordoned",
                                                                          "fan swap")
    assert Event.objects.filter(host=dgx1, kind="cordon", actor="root").exists()

    response = client.post(f"{URL}{dgx1.pk}/uncordon/", {}, format="json")
    assert response.status_code == 200
    assert response.json()["state"] == "ready"


def test_admin_drains_a_host_and_its_jobs_are_torn_down(dgx1, tenant_a, make_job, admin_user,
                                                        client_for):
    job = make_job(tenant_a, state="running")
    Allocation.objects.create(job=job, host=dgx1, gpu=Gpu.objects.filter(host=dgx1).first())
    response = client_for(admin_user).post(f"{URL}{dgx1.pk}/drain/", {"reason": "bad PSU"},
                                           format="json")
    assert response.status_code == 200
    assert response.json()["state"] == "draining"
    job.refresh_from_db()
    assert (job.state, job.teardown_outcome) == ("teardown", "preempted")


def test_uncordoning_an_offline_host_is_409(dgx1, admin_user, client_for):
    Host.objects.filter(pk=dgx1.pk).update(state="offline")
    response = client_for(admin_user).post(f"{URL}{dgx1.pk}/uncordon/")
    assert response.status_code == 409
    assert "offline" in response.json()["detail"]


@pytest.mark.parametrize("verb", ["cordon", "uncordon", "drain"])
@pytest.mark.parametrize("who", ["member_a", "member_b", "outsider"])
def test_non_admins_get_403_on_host_actions(dgx1, client_for, request, verb, who):
    client = client_for(request.getfixturevalue(who))
    assert client.post(f"{URL}{dgx1.pk}/{verb}/", {"reason": "x"}).status_code == 403
    assert Host.objects.get(pk=dgx1.pk).state == "ready"


@pytest.mark.parametrize("verb", ["cordon", "uncordon", "drain"])
def test_anonymous_gets_401_on_host_actions(dgx1, client_for, verb):
    assert client_for(None).post(f"{URL}{dgx1.pk}/{verb}/").status_code == 401


def test_a_too_long_reason_is_400(dgx1, admin_user, client_for):
    response = client_for(admin_user).post(f"{URL}{dgx1.pk}/cordon/", {"reason": "x" * 501},
                                           format="json")
    assert response.status_code == 400
    assert "reason" in response.json()
    assert Host.objects.get(pk=dgx1.pk).state == "ready"


def test_hosts_cannot_be_written_directly(dgx1, admin_user, client_for):
    client = client_for(admin_user)
    assert client.patch(f"{URL}{dgx1.pk}/", {"state": "ready"}).status_code == 405
    assert client.delete(f"{URL}{dgx1.pk}/").status_code == 405
    assert client.post(f"{URL}999999/cordon/").status_code == 404


def test_the_hosts_hypervisor_is_a_field_and_a_filter(cluster, member_a, client_for):
    Host.objects.filter(name="dgx-1").update(hypervisor="kvm")
    Host.objects.filter(name="dgx-2").update(hypervisor="qemu")
    client = client_for(member_a)
    rows = {h["name"]: h["hypervisor"] for h in client.get(URL).json()["results"]}
    assert rows == {"dgx-1": "kvm", "dgx-2": "qemu", "hgx-1": "", "ada-1": ""}
    kvm = client.get(URL, {"hypervisor": "kvm"}).json()["results"]
    assert [h["name"] for h in kvm] == ["dgx-1"]
    bad = client.get(URL, {"hypervisor": "xen"})
    assert bad.status_code == 400 and "hypervisor" in bad.json()
