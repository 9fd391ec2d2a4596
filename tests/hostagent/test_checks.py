import threading

import pytest

from hostagent.checks import CHECK_IDS, echo_responder, run_checks
from hostagent.checks.predeploy import _acs_ctrl
from hostagent.sim import KINDS, ROOTS_DIR
from hostagent.sim.roots import VARIANTS, build_root, kind_overrides, kind_root

SECTION_1 = ["bios.smt_disabled", "firmware.baseline", "network.hop_latency", "kvm.available",
             "iommu.enabled", "iommu.gpu_isolated", "pcie.acs", "vfio.bound",
             "gpu.persistence_ecc"]
SECTION_2 = ["memory.hugepages_1g", "sched.batch", "storage.raw_xfs", "memory.thp_madvise",
             "numa.balancing_off", "net.rps_flow_entries", "rdma.roce_pfc", "rdma.roce_dcqcn",
             "storage.userspace_nvme"]


def status(root, check_id, **kw):
    (result,) = run_checks(root, only=[check_id], **kw)
    return result


def test_every_checks_md_id_is_implemented_in_order():
    assert list(CHECK_IDS) == SECTION_1 + SECTION_2


def test_every_result_has_the_reporting_fields(tmp_path):
    for r in run_checks(build_root(tmp_path)):
        d = r.to_dict()
        assert d["status"] in ("pass", "fail", "unknown") and d["risk"]
        assert isinstance(d["evidence"], dict)
        assert (d["status"] == "unknown") == bool(d["reason"]) or d["status"] == "fail"
        if d["status"] != "pass":
            assert d["remediation"]


def test_all_checks_run_on_this_machines_real_root():
    results = run_checks("/")
    assert [r.id for r in results] == SECTION_1 + SECTION_2
    for r in results:
        if r.status == "unknown":
            assert r.reason


def test_empty_tree_is_all_unknown_never_pass(tmp_path):
    results = run_checks(tmp_path)
    assert {r.status for r in results} == {"unknown"}


@pytest.mark.parametrize(
    ("check_id", "overrides"),
    [
        ("bios.smt_disabled", {"smt_active": "1", "smt_control": "on"}),
        ("kvm.available", {"kvm": False}),
        ("iommu.enabled", {"iommu_units": (), "cmdline": "root=/dev/sda2"}),
        ("iommu.gpu_isolated", {"foreign_in_group": True}),
        ("vfio.bound", {"gpu_driver": "nvidia"}),
        ("memory.hugepages_1g", {"hugepages_1g": 0}),
        ("storage.raw_xfs", {"data_fs": "ext4"}),
        ("memory.thp_madvise", {"thp": "[always] madvise never"}),
        ("numa.balancing_off", {"numa_balancing": "1"}),
        ("net.rps_flow_entries", {"rps_sock_flow_entries": "0"}),
    ],
)
def test_file_checks_pass_on_a_good_tree_and_fail_on_a_bad_one(tmp_path, check_id, overrides):
    assert status(build_root(tmp_path / "good"), check_id).status == "pass"
    bad = status(build_root(tmp_path / "bad", **overrides), check_id)
    assert bad.status == "fail"
    assert bad.evidence and bad.remediation


def test_shipped_sim_roots_fail_exactly_their_misconfiguration():
    expected = {"good": set(), "misconfigured/smt_on": {"bios.smt_disabled"},
                "misconfigured/no_hugepages": {"memory.hugepages_1g"},
                "misconfigured/thp_always": {"memory.thp_madvise"}}
    for variant in VARIANTS:
        results = run_checks(ROOTS_DIR / variant)
        assert {r.id for r in results if r.status == "fail"} == expected[variant], variant
    good = {r.id: r.status for r in run_checks(ROOTS_DIR / "good")}
    for check_id in ("bios.smt_disabled", "kvm.available", "iommu.enabled", "vfio.bound",
                     "memory.hugepages_1g", "memory.thp_madvise"):
        assert good[check_id] == "pass"


def test_firmware_baseline(tmp_path):
    root = build_root(tmp_path)
    assert status(root, "firmware.baseline").status == "unknown"
    assert status(root, "firmware.baseline", baseline={"bios_version": "2.3.1"}).status == "pass"
    r = status(root, "firmware.baseline", baseline={"bios_version": "2.4.0"})
    assert r.status == "fail" and r.evidence["mismatches"]["bios_version"]["have"] == "2.3.1"
    r = status(root, "firmware.baseline", baseline={"bios_version": "2.3.1", "vbios_version": "x"})
    assert r.status == "unknown" and "vbios_version" in r.reason
    r = status(root, "firmware.baseline", baseline={"vbios_version": "92.00.45.00.05"},
               gpus=[{"vbios_version": "92.00.45.00.05"}])
    assert r.status == "pass"


def _kind_baseline(kind):
    k = KINDS[kind]
    return {"board_name": k.board_name, "bios_version": k.bios_version,
            "driver_version": k.driver_version, "vbios_version": k.vbios}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_simulated_hosts_tree_reports_the_firmware_of_its_kind(tmp_path, kind):
    """Board and BIOS from DMI, driver and VBIOS from the driver's procfs files: every
    part of the baseline is measured, and a host of the kind is at its baseline."""
    r = status(kind_root(tmp_path, kind), "firmware.baseline", baseline=_kind_baseline(kind))
    assert r.status == "pass", r.evidence
    assert r.evidence["observed"]["vbios_version"] == KINDS[kind].vbios
    assert r.evidence["sources"]["driver_version"] == "/proc/driver/nvidia/version"
    # NVML's figures win over the procfs files when the agent has them.
    r = status(kind_root(tmp_path, kind), "firmware.baseline", baseline=_kind_baseline(kind),
               driver_version="999.1", gpus=[{"vbios_version": "nvml-vbios"}])
    assert r.status == "fail" and r.evidence["sources"]["vbios_version"] == "NVML"
    assert r.evidence["mismatches"]["driver_version"] == {
        "have": "999.1", "want": KINDS[kind].driver_version}


def test_a_host_whose_bios_differs_from_the_baseline_fails_naming_both_versions(tmp_path):
    root = build_root(tmp_path, **{**kind_overrides("dgx_a100"), "bios_version": "1.21"})
    r = status(root, "firmware.baseline", baseline=_kind_baseline("dgx_a100"))
    assert r.status == "fail" and r.remediation
    assert r.evidence["mismatches"] == {"bios_version": {"have": "1.21", "want": "1.25"}}
    assert r.evidence["observed"]["board_name"] == "DGXA100"


def test_kind_roots_keep_their_misconfiguration_and_are_rebuilt_when_stale(tmp_path):
    for variant in VARIANTS:
        failing = {r.id for r in run_checks(kind_root(tmp_path, "hgx_h100", variant))
                   if r.status == "fail"}
        expected = {r.id for r in run_checks(ROOTS_DIR / variant) if r.status == "fail"}
        assert failing == expected, variant
    root = kind_root(tmp_path, "dgx_a100")
    (root / "sys/class/dmi/id/bios_version").write_text("tampered\n")
    assert kind_root(tmp_path, "dgx_a100") == root  # same definition: left alone
    (root / ".coupler-sim-root.json").write_text("{}")
    kind_root(tmp_path, "dgx_a100")
    assert (root / "sys/class/dmi/id/bios_version").read_text() == "1.25\n"
    with pytest.raises(ValueError):
        kind_root(tmp_path, "dgx_a100", "nonsense")


def test_persistence_and_ecc_from_nvml_values():
    good = [{"pci_bus_id": "00000000:07:00.0", "persistence_mode": True, "ecc_mode": True,
             "retired_pages_pending": False, "remapped_rows_pending": False,
             "remapped_rows_failure": False}]
    assert status("/nonexistent", "gpu.persistence_ecc").status == "unknown"
    assert status("/nonexistent", "gpu.persistence_ecc", gpus=good).status == "pass"
    pending = [{**good[0], "remapped_rows_pending": True}]
    assert status("/nonexistent", "gpu.persistence_ecc", gpus=pending).status == "fail"


def test_roce_dcqcn_reads_ecn_files(tmp_path):
    root = build_root(tmp_path)
    (root / "sys/class/infiniband/mlx5_0/ports/1").mkdir(parents=True)
    (root / "sys/class/infiniband/mlx5_0/ports/1/link_layer").write_text("Ethernet\n")
    (root / "sys/class/infiniband/mlx5_0/device/net/ens1f0").mkdir(parents=True)
    for side in ("roce_np", "roce_rp"):
        (root / f"sys/class/net/ens1f0/ecn/{side}/enable").mkdir(parents=True)
        (root / f"sys/class/net/ens1f0/ecn/{side}/enable/3").write_text("1\n")
    assert status(root, "rdma.roce_dcqcn").status == "pass"
    (root / "sys/class/net/ens1f0/ecn/roce_rp/enable/3").write_text("0\n")
    assert status(root, "rdma.roce_dcqcn").status == "fail"
    assert status(root, "rdma.roce_pfc").status == "unknown"
    assert status(root, "rdma.roce_pfc", extra={"pfc": {"ens1f0": [3]}}).status == "pass"


def test_sched_batch_reads_vcpu_thread_policy(tmp_path):
    task = tmp_path / "proc/4242/task/4250"
    task.mkdir(parents=True)
    (tmp_path / "proc/4242/comm").write_text("qemu-system-x86\n")
    (task / "comm").write_text("CPU 0/KVM\n")
    fields = ["0"] * 50
    fields[38] = "3"
    (task / "stat").write_text("4250 (CPU 0/KVM) " + " ".join(fields) + "\n")
    assert status(tmp_path, "sched.batch").status == "pass"
    fields[38] = "0"
    (task / "stat").write_text("4250 (CPU 0/KVM) " + " ".join(fields) + "\n")
    assert status(tmp_path, "sched.batch").status == "fail"


def test_userspace_nvme(tmp_path):
    dev = tmp_path / "sys/bus/pci/devices/0000:c1:00.0"
    dev.mkdir(parents=True)
    (dev / "class").write_text("0x010802\n")
    (dev / "driver").write_text("nvme\n")
    assert status(tmp_path, "storage.userspace_nvme").status == "unknown"
    assert status(tmp_path, "storage.userspace_nvme", userspace_nvme=True).status == "fail"
    (dev / "driver").write_text("vfio-pci\n")
    assert status(tmp_path, "storage.userspace_nvme").status == "pass"


def test_acs_control_register_is_found_in_extended_config_space():
    config = bytearray(4096)
    config[0x100:0x104] = (0x0001 | (1 << 16) | (0x140 << 20)).to_bytes(4, "little")  # AER
    config[0x140:0x144] = (0x000D | (1 << 16)).to_bytes(4, "little")  # ACS, last
    config[0x146:0x148] = (0x001D).to_bytes(2, "little")
    assert _acs_ctrl(bytes(config)) == 0x1D
    assert _acs_ctrl(bytes(4096)) is None


def test_hop_latency_measures_against_an_echo_responder():
    assert status("/", "network.hop_latency").status == "unknown"
    stop, ready, bound = threading.Event(), threading.Event(), []
    t = threading.Thread(target=echo_responder, args=("127.0.0.1", 0),
                         kwargs={"stop": stop, "ready": ready, "bound": bound}, daemon=True)
    t.start()
    assert ready.wait(5)
    try:
        r = status("/", "network.hop_latency", peers=[f"127.0.0.1:{bound[0]}"],
                   latency_rounds=5)
        assert r.status in ("pass", "unknown")
        assert "tcp" in r.evidence["method"]
        if r.status == "unknown":
            assert "upper bound" in r.reason or "loopback" in r.reason
        assert r.evidence[f"127.0.0.1:{bound[0]}"]["rounds"] == 5
    finally:
        stop.set()
        t.join(2)


def test_a_fast_loopback_peer_passes_nothing_but_a_fast_remote_peer_passes(monkeypatch):
    from hostagent.checks import network

    monkeypatch.setattr(network, "tcp_round_trip_us", lambda peer, rounds: [6.0] * rounds)
    local = status("/", "network.hop_latency", peers=["127.0.0.1:7471"], latency_rounds=3)
    assert local.status == "unknown" and "loopback" in local.reason
    assert local.evidence["127.0.0.1:7471"]["one_way_us"] == 3.0
    remote = status("/", "network.hop_latency", peers=["127.0.0.1:7471", "192.0.2.10:7471"],
                    latency_rounds=3)
    assert remote.status == "pass"


def test_tcp_latency_over_the_limit_proves_nothing_but_rdma_over_it_fails():
    from hostagent.checks.network import judge_latency

    assert judge_latency(3.2, method="tcp") == ("pass", "")
    status, reason = judge_latency(21.0, method="tcp")
    assert status == "unknown" and "21.0 µs" in reason
    assert judge_latency(7.5, method="rdma") == ("fail", "")
    assert judge_latency(1.0, method="tcp", errors=["h:1: refused"])[0] == "unknown"


def test_unreachable_peer_is_unknown():
    r = status("/", "network.hop_latency", peers=["127.0.0.1:1"])
    assert r.status == "unknown" and "127.0.0.1:1" in r.reason


def test_unknown_check_id_is_rejected():
    with pytest.raises(ValueError, match="unknown check ids"):
        run_checks("/", only=["nope"])


def test_sched_batch_recognises_tcg_vcpu_threads_and_ignores_other_threads(tmp_path):
    """Under QEMU's TCG (no KVM) vCPU threads are "CPU n/TCG"; I/O threads never count."""
    fields = ["0"] * 50
    for tid, comm, policy in [("4250", "CPU 0/TCG", "3"), ("4251", "worker", "0")]:
        task = tmp_path / f"proc/4242/task/{tid}"
        task.mkdir(parents=True)
        (task / "comm").write_text(comm + "\n")
        fields[38] = policy
        (task / "stat").write_text(f"{tid} ({comm}) " + " ".join(fields) + "\n")
    (tmp_path / "proc/4242/comm").write_text("qemu-system-x86\n")
    result = status(tmp_path, "sched.batch")
    assert result.status == "pass"
    assert list(result.evidence["vcpu_threads_policy"]) == ["4242/4250"]


def test_hugepages_need_a_1g_hugetlbfs_mount_and_enough_free_pages(tmp_path):
    root = build_root(tmp_path / "r")
    assert status(root, "memory.hugepages_1g").status == "pass"
    assert status(root, "memory.hugepages_1g", extra={"largest_vm_gib": 64}).status == "pass"
    result = status(root, "memory.hugepages_1g", extra={"largest_vm_gib": 65})
    assert result.status == "fail" and "64 free" in result.reason
    mounts = root / "proc/mounts"
    mounts.write_text("".join(ln for ln in mounts.read_text().splitlines(keepends=True)
                              if "hugetlbfs" not in ln))
    result = status(root, "memory.hugepages_1g")
    assert result.status == "fail" and "no hugetlbfs mount with pagesize=1G" in result.reason


def test_kvm_available_fails_on_cpus_without_vmx_or_svm_in_a_tree(tmp_path):
    root = build_root(tmp_path / "r")
    (root / "proc/cpuinfo").write_text("processor\t: 0\nflags\t\t: fpu sse2 hypervisor\n")
    result = status(root, "kvm.available")
    assert result.status == "fail" and "vmx nor svm" in result.reason
    (root / "proc/cpuinfo").write_text("processor\t: 0\nflags\t\t: fpu vmx sse2\n")
    assert status(root, "kvm.available").status == "pass"


def test_kvm_available_on_this_machine_asks_the_kernel():
    """On a real root /dev/kvm is probed by ioctl: the evidence is the probe's."""
    from pathlib import Path

    if not Path("/dev/kvm").is_char_device():
        pytest.skip("no /dev/kvm here")
    result = status(Path("/"), "kvm.available")
    probe = result.evidence["probe"]
    assert result.status in ("pass", "fail")
    assert (result.status == "pass") == probe["usable"]
    assert probe["api_version"] in (None, 12)
