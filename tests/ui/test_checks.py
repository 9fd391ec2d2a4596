"""Checklists: every CHECKS.md item per host and fleet-wide; no row means
"not yet measured"; filters by failing and risk; re-run."""

from django.conf import settings
from django.utils import timezone

from console.core.models import CheckResult, Event, Host
from hostagent.protocol.checks import BY_ID, CATALOGUE


def result(host_name, check_id, status, risk, **evidence):
    return CheckResult.objects.create(
        host=Host.objects.get(name=host_name), check_id=check_id, status=status, risk=risk,
        evidence=evidence, remediation="Set it right.", measured_at=timezone.now())


def test_every_item_of_sections_1_and_2_is_listed(login, admin_user, cluster):
    html = login(admin_user).get("/hosts/dgx-1/checks/").content.decode()
    assert len(CATALOGUE) == 18
    for item in CATALOGUE:
        assert item.id in html
    assert html.count("not yet measured") >= 18
    assert ">pass<" not in html.lower().replace("badge green", "")


def test_a_host_shows_status_risk_evidence_and_remediation(login, admin_user, cluster):
    result("dgx-1", "memory.thp_madvise", "fail", "medium", enabled="[always] madvise never")
    result("dgx-1", "kvm.available", "pass", "critical", dev_kvm=True)
    html = login(admin_user).get("/hosts/dgx-1/checks/").content.decode()
    assert "[always] madvise never" in html
    # The remediation is the catalogue's, by check id (in the reader's language),
    # not the text the agent sent; none for a pass.
    assert BY_ID["memory.thp_madvise"].remediation.replace(">", "&gt;") in html
    assert BY_ID["kvm.available"].remediation not in html
    assert "1 pass" in html and "1 fail" in html and "16 not yet measured" in html


def test_the_host_list_filters_failing_and_risk(login, admin_user, cluster):
    result("dgx-1", "memory.thp_madvise", "fail", "medium")
    result("dgx-1", "bios.smt_disabled", "fail", "high")
    result("dgx-1", "kvm.available", "pass", "critical")
    client = login(admin_user)
    html = client.get("/hosts/dgx-1/checks/?failing=1").content.decode()
    assert "memory.thp_madvise" in html and "bios.smt_disabled" in html
    assert "kvm.available" not in html
    html = client.get("/hosts/dgx-1/checks/?failing=1&risk=high").content.decode()
    assert "bios.smt_disabled" in html and "memory.thp_madvise" not in html


def test_the_fleet_view_counts_per_item(login, admin_user, cluster):
    result("dgx-1", "bios.smt_disabled", "fail", "high", smt_active="1")
    result("dgx-2", "bios.smt_disabled", "pass", "high")
    html = login(admin_user).get("/checks/?failing=1").content.decode()
    assert "bios.smt_disabled" in html and "kvm.available" not in html
    assert 'href="/hosts/dgx-1/checks/"' in html
    html = login(admin_user).get("/checks/?risk=critical").content.decode()
    assert "network.hop_latency" in html and "bios.smt_disabled" not in html


def test_rerun_without_the_task_says_so(login, admin_user, cluster, monkeypatch):
    import console.ui.checks as checks

    monkeypatch.setattr(checks, "_task", lambda: None)
    response = login(admin_user).post("/hosts/dgx-1/checks/rerun/", follow=True)
    assert "not available" in response.content.decode()


def test_rerun_enqueues_the_task_on_commit(login, admin_user, cluster, monkeypatch,
                                           django_capture_on_commit_callbacks):
    import console.ui.checks as checks

    sent = []

    class Task:
        @staticmethod
        def delay(host_id, actor=""):
            sent.append(host_id)

    monkeypatch.setattr(checks, "_task", lambda: Task)
    with django_capture_on_commit_callbacks(execute=True):
        response = login(admin_user).post("/hosts/dgx-1/checks/rerun/")
    assert response.status_code == 302
    assert sent == [Host.objects.get(name="dgx-1").pk]


def test_rerun_is_post_only(login, admin_user, cluster):
    assert login(admin_user).get("/hosts/dgx-1/checks/rerun/").status_code == 405


def test_rerun_refreshes_the_hosts_check_results_through_the_agent(
        login, admin_user, cluster, django_capture_on_commit_callbacks):
    """Eager: button → run_host_checks → hostagent.run_checks on the host's sim root →
    CheckResult rows of that host (and only that host) replaced, audited."""
    old = result("dgx-1", "bios.smt_disabled", "pass", "high")
    CheckResult.objects.filter(pk=old.pk).update(measured_at=timezone.now() - timezone.timedelta(days=3))
    host = Host.objects.get(name="dgx-1")
    host.facts = {**host.facts, "sim_root": "misconfigured/smt_on"}
    host.save(update_fields=["facts"])
    with django_capture_on_commit_callbacks(execute=True):
        response = login(admin_user).post("/hosts/dgx-1/checks/rerun/", follow=True)
    assert response.status_code == 200
    rows = {r.check_id: r for r in CheckResult.objects.filter(host=host)}
    assert len(rows) == len(CATALOGUE)
    assert rows["bios.smt_disabled"].status == "fail"  # measured in the smt_on tree
    assert rows["bios.smt_disabled"].measured_at > timezone.now() - timezone.timedelta(minutes=1)
    assert rows["kvm.available"].status == "pass"
    # No peers (no agent advertised an echo responder) and no baseline: unknown, never pass.
    assert rows["network.hop_latency"].status == "unknown"
    assert not CheckResult.objects.exclude(host=host).exists()
    reasons = list(Event.objects.filter(host=host, kind__startswith="checks")
                   .values_list("reason", flat=True))
    assert reasons[0] == f"checks re-run requested by {admin_user.username}"
    assert reasons[-1].startswith("checks re-run: ") and "failing: bios.smt_disabled" in reasons[-1]
    assert "Checks of dgx-1 queued" in response.content.decode()


def test_rerun_sends_the_firmware_baseline_of_the_hosts_board(cluster):
    from console.core.actions.agent_checks import host_check_inputs
    from console.core.models import FirmwareBaseline
    from hostagent import sim

    host = Host.objects.get(name="dgx-1")
    board = host.board_name
    assert host_check_inputs(host)["baseline"] is None
    FirmwareBaseline.objects.create(board_name=board, bios_version="1.25", gpu_vbios="92.1")
    inputs = host_check_inputs(host)
    assert inputs["baseline"] == {"board_name": board, "bios_version": "1.25",
                                  "vbios_version": "92.1"}
    # No root pinned: the agent checks its own configured root; the demo configures a
    # simulated host's agent with its kind's tree.
    assert inputs["root"] is None
    from coupler_demo.simhosts import sim_checks_root

    assert sim_checks_root(host.facts) == str(sim.roots.kind_root(
        settings.VAR_DIR / "sim-roots", "dgx_a100", host.facts["sim_root"]))
    host.facts = {**host.facts, "checks_root": "/srv/captured-tree"}
    assert host_check_inputs(host)["root"] == "/srv/captured-tree"
    assert inputs["peers"] == []  # no other host's agent advertised an echo responder


def test_a_simulated_dgx_passes_its_firmware_baseline_and_a_different_bios_fails(
        cluster, tmp_path, settings):
    """Eager: the check reads the DMI, driver and VBIOS of the host's own kind (its sim
    root), so a DGX at the seeded baseline passes; a BIOS off the baseline fails and the
    evidence names both versions."""
    from console.core.actions.agent_checks import checks_root
    from console.core.models import FirmwareBaseline
    from console.core.tasks.hosts import run_host_checks
    from coupler_demo.simhosts import sim_checks_root
    from hostagent import sim
    from hostagent.sim.roots import build_root, kind_overrides

    settings.VAR_DIR = tmp_path / "var"
    dgx = sim.KINDS["dgx_a100"]
    FirmwareBaseline.objects.create(board_name=dgx.board_name, bios_version=dgx.bios_version,
                                    gpu_vbios=dgx.vbios, driver_version=dgx.driver_version)
    host = Host.objects.get(name="dgx-1")
    run_host_checks.delay(host.pk, actor="admin")
    row = CheckResult.objects.get(host=host, check_id="firmware.baseline")
    assert row.status == "pass", row.evidence
    assert row.evidence["observed"]["vbios_version"] == dgx.vbios
    assert row.evidence["observed"]["driver_version"] == dgx.driver_version
    assert checks_root(host) is None  # the in-process agent read its own (simulated) root
    assert sim_checks_root(host.facts) == str(settings.VAR_DIR / "sim-roots" / "dgx_a100" / "good")

    old_bios = build_root(tmp_path / "old-bios", **{**kind_overrides("dgx_a100"),
                                                    "bios_version": "1.19"})
    host.facts = {**host.facts, "checks_root": str(old_bios)}
    host.save(update_fields=["facts"])
    run_host_checks.delay(host.pk, actor="admin")
    row = CheckResult.objects.get(host=host, check_id="firmware.baseline")
    assert row.status == "fail"
    assert row.evidence["mismatches"] == {"bios_version": {"have": "1.19", "want": "1.25"}}
    assert row.remediation


def test_a_member_cannot_rerun_checks(login, member_a, cluster,
                                      django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = login(member_a).post("/hosts/dgx-1/checks/rerun/")
    assert response.status_code == 403
    assert callbacks == []
    assert not CheckResult.objects.exists()
    assert not Event.objects.filter(kind__startswith="checks").exists()
