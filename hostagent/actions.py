"""What the agent does on a host: provision, teardown, list, checks, kernel log.

Every action takes the host's name, runs under the host's lock on its one
libvirt connection (``hostagent.connections``) and is idempotent.  On a real
host (``qemu:///system``) a provision is: pre-flight (``hostagent.preflight``)
→ the job's files (disk overlay, console and channel logs:
``hostagent.images``) → define and start the domain → wait until the guest
reports "up" on its channel → read the isolation back from the kernel
(``hostagent.isolation``).  Any failure removes everything made so far and is
reported, not raised: the console decides what follows.
"""

from __future__ import annotations

import functools
import logging
import time
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from coupler_common.naming import DOMAIN_PREFIX
from hostagent import cgroups, guest, hypervisor, images, isolation, mdev, preflight
from hostagent import libvirt_driver as lv
from hostagent.agentconfig import HostConfig
from hostagent.connections import (
    _injected_failures,
    _lock,
    connection,
    host_config,
    with_connection,
)
from hostagent.domain_xml import BootFiles, HostOptions
from hostagent.protocol import ProvisionResult, ProvisionSpec, SpecError, TeardownResult

__all__ = ["DOMAIN_PREFIX", "domain_xml", "hypervisor_facts", "list_domains", "provision",
           "run_checks", "scan_kernel_log", "teardown"]

log = logging.getLogger("hostagent")

# Errors an action reports instead of raising.
ACTION_ERRORS = (lv.DriverError, cgroups.CgroupError, mdev.MdevError, images.ImageError,
                 preflight.PreflightError, SpecError, OSError)


class BootError(RuntimeError):
    """The guest did not come up; the text says what was seen."""


@functools.cache
def _choice(libvirt_uri: str, override: str) -> hypervisor.HypervisorChoice:
    return hypervisor.choose(libvirt_uri, override)


def hypervisor_facts(host: str) -> dict[str, Any]:
    """The host's hypervisor (kvm, qemu, test), the KVM probe, warnings and the
    cgroup layout: for the console's host facts and scheduling."""
    cfg = host_config(host)
    if cfg.is_test_driver:
        # A simulated host stands for a KVM host (the GPU servers it simulates); its
        # config's ``hypervisor: qemu`` simulates a host without KVM.
        return {"hypervisor": cfg.hypervisor or "kvm", "simulated": True}
    facts = _choice(cfg.libvirt_uri, cfg.hypervisor).facts()
    facts["cgroup_layout"] = cgroups.layout()["mode"]
    facts["hugetlbfs_1g"] = "1G" in preflight.hugetlbfs_mounts().values()
    facts["cpu_mode"] = cfg.cpu_mode or ("host-passthrough" if facts["hypervisor"] == "kvm"
                                         else "qemu default")
    if cfg.cpu_model:
        facts["cpu_model"] = cfg.cpu_model
    return facts


def _host_options(cfg: HostConfig) -> HostOptions:
    return HostOptions(domain_type=cfg.domain_type, cpu_mode=cfg.cpu_mode,
                       cpu_model=cfg.cpu_model, network=cfg.network,
                       partition=cfg.partition, kernel_loader=cfg.kernel_loader,
                       memtune_hard_limit=cfg.is_test_driver or preflight.can_raise_memlock())


def _write_hard_limit(name: str, spec: ProvisionSpec) -> None:
    """The memory hard limit libvirt could not set (no CAP_SYS_RESOURCE to raise
    RLIMIT_MEMLOCK with it): written to the domain's memory cgroup directly."""
    if spec.cgroup.memory_max is None:
        return
    pid = isolation.qemu_pid(name)
    group = isolation.domain_group_dir(pid, "memory") if pid else None
    if group is None:
        raise cgroups.CgroupError(f"no memory cgroup found for {name}'s QEMU (pid {pid})")
    cgroups.check_cgroupfs(group)
    target = "memory.max" if (group / "memory.max").exists() else "memory.limit_in_bytes"
    cgroups.write_value(group / target, str(spec.cgroup.memory_max))


def provision(host: str, spec: ProvisionSpec | dict[str, Any]) -> dict[str, Any]:
    """Make the job's VM run on this host. Idempotent; a failure leaves nothing
    behind (domain, overlay, cgroup, mediated devices) and is reported."""
    job_id = str(spec.get("job_id", "")) if isinstance(spec, dict) else ""
    try:
        parsed = ProvisionSpec.from_dict(spec)
    except SpecError as exc:
        return ProvisionResult(job_id=job_id, host=host, ok=False, error=f"bad spec: {exc}").to_dict()
    cfg = host_config(host)
    evidence: dict[str, Any] = {}
    with _lock(host):
        try:
            injected = _injected_failures.pop((host, "provision"), None)
            if injected:
                raise lv.DriverError(injected)
            conn = connection(host)
            files = None
            already_running = lv.domain_state(conn, parsed.name) == "running"
            if not cfg.is_test_driver:
                preflight.check(parsed, domain_type=cfg.domain_type,
                                overlay_dir=Path(cfg.state_dir))
                files = images.boot_files(cfg.state_dir, cfg.images_dir, parsed.name,
                                          parsed.image, fresh=not already_running)
                if cfg.partition:  # libvirt creates no partition without systemd
                    cgroups.ensure_partition(cfg.partition)
            if cfg.cgroup_root:
                cgroups.apply_spec(cfg.cgroup_root, parsed)
            root = _mdev_root(cfg)
            if root is not None:
                for share in parsed.gpu_shares:
                    mdev.create(root, share.pci, share.mdev_uuid, milli=share.milli,
                                mdev_type=share.mdev_type)
            state = with_connection(host, lambda c: lv.provision(
                c, parsed, domain_type=cfg.domain_type, files=files, host=_host_options(cfg)))
            if files is not None:
                if not _host_options(cfg).memtune_hard_limit:
                    _write_hard_limit(parsed.name, parsed)
                _wait_until_up(host, parsed.name, files, cfg.boot_timeout_s)
                evidence = _evidence(parsed, cfg)
        except (*ACTION_ERRORS, BootError) as exc:
            log.warning("provision of %s on %s failed: %s", parsed.name, host, exc)
            _clean(host, parsed.name)
            return ProvisionResult(job_id=parsed.job_id, host=host, ok=False,
                                   domain=parsed.name, error=str(exc)).to_dict()
    return ProvisionResult(job_id=parsed.job_id, host=host, ok=True, domain=parsed.name,
                           state=state, evidence=evidence).to_dict()


def _wait_until_up(host: str, name: str, files: BootFiles, timeout: float) -> None:
    """Until the guest writes ``COUPLER up`` on its channel; BootError when the
    domain ends first or ``timeout`` passes (with the console's last line)."""
    deadline = time.monotonic() + timeout
    while True:
        if guest.read_guest_status(files.channel_log).up:
            return
        state = with_connection(host, lambda c: lv.domain_state_reason(c, name))
        last = images.read_tail(files.console_log, 1)
        seen = f" (last console line: {last[0]!r})" if last else " (console empty)"
        if state is None or state[0] not in ("running", "blocked", "paused"):
            what = f"{state[0]}, reason {state[1]}" if state else "gone"
            raise BootError(f"guest of {name} ended before it reported up: {what}{seen}")
        if time.monotonic() > deadline:
            raise BootError(f"guest of {name} did not report up within {timeout:.0f} s{seen}")
        time.sleep(0.5)


def _evidence(spec: ProvisionSpec, cfg: HostConfig) -> dict[str, Any]:
    pid = isolation.qemu_pid(spec.name)
    if pid is None:
        return {"verified": False, "mismatches": ["QEMU's pid file not found"]}
    try:
        return isolation.collect(spec, pid, partition=cfg.partition)
    except OSError as exc:  # QEMU exited meanwhile
        return {"verified": False, "mismatches": [f"reading QEMU {pid}: {exc}"]}


def _mdev_root(cfg: HostConfig) -> Path | None:
    if cfg.mdev_root:
        return Path(cfg.mdev_root)
    return Path("/") if cfg.domain_type == "kvm" else None


def _mdev_uuids(host: str, name: str) -> list[str]:
    """The mediated devices a defined domain uses (read before it is undefined)."""
    try:
        xml = with_connection(host, lambda c: lv.domain_xml(c, name))
    except lv.DriverError:
        return []
    if not xml:
        return []
    dom = ET.fromstring(xml)  # noqa: S314 - libvirt's copy of our own document
    return [a.get("uuid", "") for a in dom.findall("./devices/hostdev[@type='mdev']/source/address")
            if a.get("uuid")]


def _remove_mdevs(cfg: HostConfig, uuids: list[str]) -> None:
    root = _mdev_root(cfg)
    if root is None:
        return
    for uuid in uuids:
        mdev.remove(root, uuid)


def _clean(host: str, name: str) -> None:
    cfg = host_config(host)
    try:
        uuids = _mdev_uuids(host, name)
        with_connection(host, lambda c: lv.teardown(c, name))
        _remove_mdevs(cfg, uuids)
    except (lv.DriverError, mdev.MdevError) as exc:
        log.warning("cleanup of %s on %s: %s", name, host, exc)
    if cfg.cgroup_root:
        try:
            cgroups.remove_job_cgroup(cfg.cgroup_root, name)
        except cgroups.CgroupError as exc:
            log.warning("cgroup cleanup of %s on %s: %s", name, host, exc)
    if not cfg.is_test_driver:
        images.remove_job_files(cfg.state_dir, name)


def teardown(host: str, name: str, job_id: str = "") -> dict[str, Any]:
    """Destroy and undefine the domain, remove its files and cgroup. Safe to repeat."""
    cfg = host_config(host)
    with _lock(host):
        try:
            injected = _injected_failures.pop((host, "teardown"), None)
            if injected:
                raise lv.DriverError(injected)
            uuids = _mdev_uuids(host, name)
            with_connection(host, lambda c: lv.teardown(c, name))
            _remove_mdevs(cfg, uuids)
            if cfg.cgroup_root:
                cgroups.remove_job_cgroup(cfg.cgroup_root, name)
            if not cfg.is_test_driver:
                images.remove_job_files(cfg.state_dir, name)
        except ACTION_ERRORS as exc:
            return TeardownResult(job_id=job_id, host=host, ok=False, domain=name,
                                  error=str(exc)).to_dict()
    return TeardownResult(job_id=job_id, host=host, ok=True, domain=name,
                          state="absent").to_dict()


def domain_xml(host: str, name: str) -> str:
    """The definition libvirt holds for one domain (what was really defined)."""
    with _lock(host):
        return with_connection(host, lambda c: lv.domain_xml(c, name))


def list_domains(host: str) -> list[dict[str, Any]]:
    """Coupler's domains on the host: state, libvirt's reason, and for a domain
    that ended, how (``end``: hostagent.guest.outcome); the console's last lines."""
    cfg = host_config(host)
    with _lock(host):
        def read(conn: Any) -> list[tuple[str, tuple[str, str] | None]]:
            return [(n, lv.domain_state_reason(conn, n)) for n in lv.list_domains(conn)
                    if n.startswith(DOMAIN_PREFIX)]

        found = with_connection(host, read)
    out = []
    for name, state_reason in found:
        state, reason = state_reason or ("absent", "")
        item: dict[str, Any] = {"name": name, "state": state, "reason": reason}
        status = None
        if not cfg.is_test_driver:
            files = images.job_files(cfg.state_dir, name)
            if files.channel_log.exists():
                status = guest.read_guest_status(files.channel_log)
                item["guest"] = {"up": status.up, "exit_status": status.exit_status}
            tail = images.read_tail(files.console_log, 20)
            if tail:
                item["console"] = tail
        end = guest.outcome(state, reason, status)
        if end is not None:
            item["end"] = end.to_dict()
        out.append(item)
    return out


def run_checks(host: str, *, root: str | None = None, baseline: dict[str, str] | None = None,
               peers: list[str] | tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """The host checklist (CHECKS.md) against ``root`` (default: the host's configured
    root, a sim tree in the demo), with the admin's firmware ``baseline`` and the
    ``peers`` (``host:port`` echo responders) to measure hop latency against."""
    from hostagent.checks import run_checks as run

    cfg = host_config(host)
    gpus = cfg.inventory.get("gpus") or None
    facts = cfg.inventory.get("facts") or {}
    return [r.to_dict() for r in run(root or cfg.checks_root or "/", gpus=gpus,
                                     driver_version=facts.get("driver_version"),
                                     baseline=baseline or None, peers=peers or ())]


def scan_kernel_log(host: str, state_dir: Path) -> list[dict[str, Any]]:
    """New Xid/AER/KVM events: from the configured kernel log (a file, ``journal`` or
    ``kmsg``); a real host without one reads kern.log, else the journal, else /dev/kmsg."""
    from hostagent.xid import XidScanner, kernel_log_source

    cfg = host_config(host)
    source = cfg.kernel_log if cfg.is_test_driver else kernel_log_source(cfg.kernel_log)
    if not source or (source not in ("journal", "kmsg") and not Path(source).exists()):
        return []
    scanner = XidScanner(source, state_dir / f"{host}.xid-cursor.json", host=host)
    return [e.to_dict() for e in scanner.scan()]
