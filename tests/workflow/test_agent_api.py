"""Register and heartbeat endpoints with per-host tokens; checks gate scheduling."""

import time

import pytest

from console.core.actions.agents import do_issue_agent_token
from console.core.choices import HostState
from console.core.models import CheckResult, Event, Host
from console.core.snapshot import build_snapshot_context

pytestmark = pytest.mark.django_db


def _beat(host, **extra):
    return {"host": host, "sent_at": time.time(), "domains": [], **extra}


@pytest.fixture
def tokens(cluster):
    return {h.name: do_issue_agent_token(h, actor="test") for h in Host.objects.all()}


def _post(api_client, host, what, token, body):
    return api_client.post(f"/api/v1/agent/hosts/{host}/{what}/", body, format="json",
                           HTTP_AUTHORIZATION=f"Bearer {token}")


def test_a_token_for_one_host_is_refused_for_another(api_client, tokens):
    assert _post(api_client, "dgx-1", "heartbeat", tokens["dgx-1"], _beat("dgx-1")).status_code == 200
    assert _post(api_client, "dgx-2", "heartbeat", tokens["dgx-1"], _beat("dgx-2")).status_code == 403
    assert _post(api_client, "dgx-2", "register", tokens["dgx-1"], {}).status_code == 403
    assert _post(api_client, "dgx-2", "heartbeat", "", _beat("dgx-2")).status_code == 403


def test_register_refreshes_the_inventory_and_heartbeat_marks_online(api_client, tokens):
    from coupler_demo.profiles import inventory_for

    Host.objects.filter(name="dgx-1").update(state=HostState.OFFLINE)
    inv = inventory_for("dgx_a100", "dgx-1", group="rack-z")
    response = _post(api_client, "dgx-1", "register", tokens["dgx-1"],
                     {"inventory": inv, "libvirt_uri": "test:///default", "agent_version": "t"})
    assert response.status_code == 200, response.content
    host = Host.objects.get(name="dgx-1")
    assert host.state == HostState.READY and host.group == "rack-z"
    assert host.last_heartbeat is not None and host.libvirt_uri == "test:///default"
    assert Event.objects.filter(host=host, kind="online").exists()


def test_a_failing_critical_check_makes_the_host_unschedulable_until_override(api_client,
                                                                              tokens):
    from console.core.actions.hosts import do_override_host_checks

    checks = [{"id": "kvm.available", "status": "fail", "risk": "critical",
               "evidence": {"dev_kvm": False}, "remediation": "load kvm"},
              {"id": "memory.thp_madvise", "status": "fail", "risk": "medium"}]
    response = _post(api_client, "ada-1", "heartbeat", tokens["ada-1"],
                     _beat("ada-1", checks=checks))
    assert response.status_code == 200
    assert CheckResult.objects.filter(host__name="ada-1").count() == 2
    assert "kvm.available" in build_snapshot_context().unschedulable["ada-1"]
    do_override_host_checks(Host.objects.get(name="ada-1"), actor="admin", reason="lab")
    assert "ada-1" not in build_snapshot_context().unschedulable


def test_rerun_checks_gate_the_host_until_they_pass(cluster, tmp_path):
    """The console's re-run (eager: the agent's task code in-process) measures the
    host's root: a critical failure takes the host out of the snapshot, a re-run
    after the fix brings it back without an override."""
    from console.core.tasks.hosts import run_host_checks
    from hostagent.sim.roots import build_root

    host = Host.objects.get(name="ada-1")
    host.facts = {**host.facts, "checks_root": str(build_root(tmp_path / "bad", kvm=False))}
    host.save(update_fields=["facts"])
    assert run_host_checks.delay(host.pk, actor="admin").get() is True
    assert CheckResult.objects.get(host=host, check_id="kvm.available").status == "fail"
    assert "kvm.available" in build_snapshot_context().unschedulable["ada-1"]
    assert Event.objects.filter(host=host, kind="check", reason="kvm.available: fail").exists()

    host.facts = {**host.facts, "checks_root": str(build_root(tmp_path / "fixed"))}
    host.save(update_fields=["facts"])
    run_host_checks.delay(host.pk, actor="admin")
    assert CheckResult.objects.get(host=host, check_id="kvm.available").status == "pass"
    assert "ada-1" not in build_snapshot_context().unschedulable
    assert not Host.objects.get(name="ada-1").checks_override_reason
    assert run_host_checks.delay(10**9).get() is False  # a vanished host: nothing to do


@pytest.mark.parametrize(("config", "reported", "column"), [
    ({}, "kvm", "kvm"),  # a simulated host stands for a KVM host
    ({"hypervisor": "qemu"}, "qemu", "qemu"),  # ... or, configured so, a TCG-only one
])
def test_the_agents_registration_sets_the_hosts_hypervisor(api_client, tokens, config,
                                                           reported, column):
    from hostagent import actions, runtime
    from hostagent.agentconfig import HostConfig

    runtime.configure_host(HostConfig(name="dgx-1", **config))
    facts = actions.hypervisor_facts("dgx-1")
    assert facts["hypervisor"] == reported and facts["simulated"] is True
    response = _post(api_client, "dgx-1", "register", tokens["dgx-1"],
                     {"inventory": {}, "agent_version": "t", "hypervisor": facts})
    assert response.status_code == 200, response.content
    host = Host.objects.get(name="dgx-1")
    assert host.hypervisor == column and host.facts["hypervisor"] == facts


@pytest.mark.parametrize("bad", [{"hypervisor": "xen"}, {"hypervisor": ["kvm"]}])
def test_a_hypervisor_report_naming_no_known_hypervisor_is_ignored(api_client, tokens, bad):
    response = _post(api_client, "dgx-1", "register", tokens["dgx-1"],
                     {"inventory": {}, "agent_version": "t", "hypervisor": bad})
    assert response.status_code == 200, response.content
    assert Host.objects.get(name="dgx-1").hypervisor == ""
    beat = _post(api_client, "dgx-1", "heartbeat", tokens["dgx-1"],
                 _beat("dgx-1", hypervisor=bad))
    assert beat.status_code == 200, beat.content
    assert Host.objects.get(name="dgx-1").hypervisor == ""


@pytest.mark.parametrize("bad", ["kvm", 7])
def test_a_hypervisor_report_of_the_wrong_type_is_refused_whole(api_client, tokens, bad):
    # The wire protocol's Registration and Heartbeat declare it an object: a message of
    # the wrong shape is refused with a 400 and changes nothing (not a 500).
    before = Host.objects.get(name="dgx-1")
    response = _post(api_client, "dgx-1", "register", tokens["dgx-1"],
                     {"inventory": {}, "agent_version": "t", "hypervisor": bad})
    assert response.status_code == 400, response.content
    beat = _post(api_client, "dgx-1", "heartbeat", tokens["dgx-1"],
                 _beat("dgx-1", hypervisor=bad))
    assert beat.status_code == 400, beat.content
    after = Host.objects.get(name="dgx-1")
    assert (after.hypervisor, after.facts, after.last_heartbeat) == (
        before.hypervisor, before.facts, before.last_heartbeat)
