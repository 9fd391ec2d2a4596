"""Section 2 of CHECKS.md: the tuning matrix."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from hostagent.checks.base import Check, CheckContext, check
from hostagent.protocol import CheckResult

HUGE_1G = "sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages"
SCHED_BATCH = 3
VCPU_THREAD = re.compile(r"^CPU \d+/(KVM|TCG)$")


@check("memory.hugepages_1g")
def hugepages_1g(ctx: CheckContext, c: Check) -> CheckResult:
    total = ctx.read(HUGE_1G)
    per_node = {}
    nodes = ctx.path("sys/devices/system/node")
    if nodes.is_dir():
        for n in sorted(nodes.glob("node[0-9]*")):
            v = ctx.read(f"sys/devices/system/node/{n.name}/hugepages/hugepages-1048576kB/"
                         "nr_hugepages")
            if v is not None:
                per_node[n.name] = int(v)
    cmdline = ctx.read("proc/cmdline") or ""
    free = ctx.read(HUGE_1G.replace("nr_hugepages", "free_hugepages"))
    mounts = [ln.split()[1] for ln in (ctx.read("proc/mounts") or "").splitlines()
              if len(ln.split()) >= 4 and ln.split()[2] == "hugetlbfs"
              and "pagesize=1G" in ln.split()[3].replace("pagesize=1024M", "pagesize=1G")]
    largest = ctx.extra.get("largest_vm_gib")
    ev = {HUGE_1G: total, "free": free, "per_node": per_node,
          "default_hugepagesz": re.findall(r"default_hugepagesz=(\S+)", cmdline),
          "hugetlbfs_1g_mounts": mounts, "largest_vm_gib": largest}
    if total is None:
        if ctx.path("sys/kernel/mm/hugepages").is_dir():
            return c.result("fail", ev, "no 1 GiB hugepage pool on this kernel")
        return c.result("unknown", ev, "/sys/kernel/mm/hugepages not readable")
    if int(total) <= 0:
        return c.result("fail", ev, "no 1 GiB hugepages reserved")
    if not mounts:
        # libvirt: "Unable to find any usable hugetlbfs mount for 1048576 KiB".
        return c.result("fail", ev, f"{total} pages reserved but no hugetlbfs mount with "
                        "pagesize=1G (mount -t hugetlbfs -o pagesize=1G none /dev/hugepages1G)")
    if largest is not None and free is not None and int(free) < int(largest):
        return c.result("fail", ev, f"{free} free 1 GiB pages, the largest VM shape this host "
                        f"offers needs {largest}")
    return c.result("pass", ev)


def _vcpu_threads(ctx: CheckContext) -> dict[str, int]:
    """``pid/tid`` -> scheduling policy for the vCPU threads of running QEMU processes."""
    out: dict[str, int] = {}
    proc = ctx.path("proc")
    if not proc.is_dir():
        return out
    for p in proc.iterdir():
        if not p.name.isdigit():
            continue
        try:
            comm = (p / "comm").read_text().strip()
        except OSError:
            continue
        if not (comm.startswith("qemu-system") or comm == "qemu-kvm"):
            continue
        for t in (p / "task").glob("*"):
            try:
                tcomm = (t / "comm").read_text().strip()
                stat = (t / "stat").read_text()
            except OSError:
                continue
            if not VCPU_THREAD.match(tcomm):  # "CPU 3/KVM", or "CPU 3/TCG" without KVM
                continue
            fields = stat.rsplit(")", 1)[1].split()
            out[f"{p.name}/{t.name}"] = int(fields[38])  # field 41: policy
    return out


@check("sched.batch")
def sched_batch(ctx: CheckContext, c: Check) -> CheckResult:
    threads = _vcpu_threads(ctx)
    ev = {"vcpu_threads_policy": threads, "source": "/proc/<pid>/task/*/stat field 41"}
    if not threads:
        return c.result("unknown", ev, "no running VM (qemu vCPU threads) to inspect")
    return c.result("pass" if all(p == SCHED_BATCH for p in threads.values()) else "fail", ev)


def _mount_for(mounts: list[tuple[str, str, str]], path: str) -> tuple[str, str, str] | None:
    best = None
    for dev, mnt, fstype in mounts:
        if (path == mnt or path.startswith(mnt.rstrip("/") + "/")) and (
                best is None or len(mnt) > len(best[1])):
            best = (dev, mnt, fstype)
    return best


@check("storage.raw_xfs")
def raw_xfs(ctx: CheckContext, c: Check) -> CheckResult:
    text = ctx.read("proc/mounts")
    if text is None:
        return c.result("unknown", {}, "/proc/mounts not readable")
    mounts = [(f[0], f[1], f[2]) for f in (ln.split() for ln in text.splitlines()) if len(f) >= 3]
    ev: dict[str, Any] = {}
    for path in ctx.data_paths:
        m = _mount_for(mounts, path)
        if m and m[1] != "/":
            ev[path] = {"mount": m[1], "fstype": m[2], "device": m[0]}
    if not ev:
        return c.result("unknown", {"data_paths": list(ctx.data_paths)},
                        "no dedicated data volume mounted at the data paths")
    ok = all(v["fstype"] == "xfs" for v in ev.values())
    return c.result("pass" if ok else "fail", ev)


@check("memory.thp_madvise")
def thp_madvise(ctx: CheckContext, c: Check) -> CheckResult:
    rel = "sys/kernel/mm/transparent_hugepage/enabled"
    value = ctx.read(rel)
    ev = {rel: value}
    if value is None:
        return c.result("unknown", ev, f"/{rel} not readable")
    m = re.search(r"\[(\w+)\]", value)
    return c.result("pass" if m and m.group(1) == "madvise" else "fail", ev)


def _sysctl(ctx: CheckContext, c: Check, rel: str, ok: Any) -> CheckResult:
    value = ctx.read(rel)
    ev = {f"/{rel}": value}
    if value is None or not value.lstrip("-").isdigit():
        return c.result("unknown", ev, f"/{rel} not readable")
    return c.result("pass" if ok(int(value)) else "fail", ev)


@check("numa.balancing_off")
def numa_balancing(ctx: CheckContext, c: Check) -> CheckResult:
    return _sysctl(ctx, c, "proc/sys/kernel/numa_balancing", lambda v: v == 0)


@check("net.rps_flow_entries")
def rps_flow_entries(ctx: CheckContext, c: Check) -> CheckResult:
    return _sysctl(ctx, c, "proc/sys/net/core/rps_sock_flow_entries", lambda v: v > 0)


def _roce_netdevs(ctx: CheckContext) -> dict[str, list[str]]:
    """RDMA device -> its Ethernet netdevs (RoCE only; InfiniBand ports are left out)."""
    out: dict[str, list[str]] = {}
    ib = ctx.path("sys/class/infiniband")
    if not ib.is_dir():
        return out
    for dev in sorted(ib.iterdir()):
        layers = [ctx.read(str(Path("sys/class/infiniband") / dev.name / "ports" / p.name /
                               "link_layer")) for p in (dev / "ports").glob("*")]
        if "Ethernet" in layers:
            net = dev / "device" / "net"
            out[dev.name] = sorted(p.name for p in net.iterdir()) if net.is_dir() else []
    return out


@check("rdma.roce_pfc")
def roce_pfc(ctx: CheckContext, c: Check) -> CheckResult:
    roce = _roce_netdevs(ctx)
    if not roce:
        return c.result("unknown", {"roce_nics": {}}, "not applicable: no RoCE NIC found")
    # PFC state lives in the NIC firmware and is only visible through netlink
    # (dcb/mlnx_qos), not through files; the agent records it when it can run them.
    pfc = ctx.extra.get("pfc")
    ev = {"roce_nics": roce, "pfc": pfc, "method": "dcb pfc show dev <if>"}
    if not isinstance(pfc, dict):
        return c.result("unknown", ev, "PFC state not measured (needs `dcb pfc show`)")
    prio = ctx.roce_priority
    ok = all(prio in pfc.get(i, ()) for nets in roce.values() for i in nets)
    return c.result("pass" if ok else "fail", ev)


@check("rdma.roce_dcqcn")
def roce_dcqcn(ctx: CheckContext, c: Check) -> CheckResult:
    roce = _roce_netdevs(ctx)
    if not roce:
        return c.result("unknown", {"roce_nics": {}}, "not applicable: no RoCE NIC found")
    prio = ctx.roce_priority
    ev: dict[str, Any] = {}
    for nets in roce.values():
        for i in nets:
            ev[i] = {side: ctx.read(f"sys/class/net/{i}/ecn/{side}/enable/{prio}")
                     for side in ("roce_np", "roce_rp")}
    if not ev or any(v is None for d in ev.values() for v in d.values()):
        return c.result("unknown", ev, f"ECN files for priority {prio} not readable")
    return c.result("pass" if all(v == "1" for d in ev.values() for v in d.values()) else "fail", ev)


@check("storage.userspace_nvme")
def userspace_nvme(ctx: CheckContext, c: Check) -> CheckResult:
    nvme = [b for b in ctx.pci_devices()
            if (ctx.read(f"sys/bus/pci/devices/{b}/class") or "").startswith("0x0108")]
    drivers = {b: ctx.link_name(f"sys/bus/pci/devices/{b}/driver") for b in nvme}
    ev = {"nvme_drivers": drivers, "enabled": ctx.userspace_nvme}
    if not nvme:
        return c.result("unknown", ev, "no NVMe device found")
    userspace = [b for b, d in drivers.items() if d in ("vfio-pci", "uio_pci_generic")]
    if userspace:
        return c.result("pass", ev)
    if not ctx.userspace_nvme:
        return c.result("unknown", ev, "userspace NVMe not enabled for this host")
    return c.result("fail", ev)
