"""Host facts the agents report at run time (other tenants' domains, the agent's
endpoint) are for staff; members see the hardware facts only."""

import pytest

from console.core.actions.jobs import do_submit_job
from console.core.models import Host

URL = "/api/v1/hosts/"


@pytest.fixture
def reported(cluster, tenant_a):
    job = do_submit_job(tenant=tenant_a, actor="test", name="secret-run", gpus_per_host=1,
                        vcpus_per_host=4, memory_gib_per_host=16)
    host = Host.objects.get(name="dgx-1")
    host.facts = {**host.facts, "driver_version": "535.104.05",
                  "reported_domains": {"at": "2024-01-01T00:00:00+00:00",
                                       "running": [f"coupler-job-{job.pk}"], "stopped": []},
                  "agent_version": "1.2.3"}
    host.latency_endpoint = "10.9.8.7:7471"
    host.checks_override_reason = f"tenant-a's run {job.domain_name} needs it"
    host.save()
    return host, job


def test_a_member_of_another_tenant_sees_hardware_facts_only(reported, member_b, client_for):
    host, job = reported
    client = client_for(member_b)
    for response in (client.get(f"{URL}{host.pk}/"), client.get(URL)):
        assert response.status_code == 200
        text = response.content.decode()
        assert job.domain_name not in text
        assert "reported_domains" not in text
        assert "10.9.8.7" not in text and "latency_endpoint" not in text
    facts = client.get(f"{URL}{host.pk}/").json()["facts"]
    assert facts["driver_version"] == "535.104.05"
    assert facts["kind"] == "dgx_a100"
    assert set(facts) <= {"kind", "board_name", "bios_version", "driver_version", "vbios"}


def test_staff_see_every_fact(reported, admin_user, client_for):
    host, job = reported
    body = client_for(admin_user).get(f"{URL}{host.pk}/").json()
    assert body["facts"]["reported_domains"]["running"] == [job.domain_name]
    assert body["facts"]["latency_endpoint"] == "10.9.8.7:7471"
    assert job.domain_name in body["checks_override_reason"]
