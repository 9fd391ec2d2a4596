"""The one seam between the host agent and libvirt.

Plain functions over a connection; every action is idempotent (defining an
existing domain updates it, starting a running one or destroying a stopped
one does nothing, undefining a missing one does nothing), so a redelivered
task finds its step done.  Production uses ``qemu:///system`` with domain
type ``kvm``; tests and simulated hosts use ``test:///<node file>`` with
domain type ``test``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from coupler_common.cpulist import parse_cpulist
from hostagent.domain_xml import BootFiles, HostOptions, build_domain_xml
from hostagent.guest import CRASHED_REASONS, SHUTOFF_REASONS
from hostagent.protocol import ProvisionSpec, validate_domain_name

try:  # libvirt-python is optional on machines that only run checks or inventory
    import libvirt
except ImportError:  # pragma: no cover - exercised only where the binding is absent
    libvirt = None

__all__ = [
    "DriverError",
    "connect",
    "define_domain",
    "destroy_domain",
    "domain_state",
    "domain_state_reason",
    "domain_xml",
    "is_connection_lost",
    "list_domains",
    "node_device_xml",
    "node_info",
    "placement_differences",
    "placement_of",
    "provision",
    "start_domain",
    "teardown",
    "undefine_domain",
]

_STATES = {
    0: "nostate", 1: "running", 2: "blocked", 3: "paused", 4: "shutdown",
    5: "shutoff", 6: "crashed", 7: "pmsuspended",
}


class DriverError(RuntimeError):
    """libvirt refused an action; the message names the action and the domain."""


def _require() -> Any:
    if libvirt is None:
        raise DriverError("libvirt-python is not installed (pip install libvirt-python)")
    return libvirt


def _silence_default_handler() -> None:
    # libvirt prints every error to stderr by default; errors reach us as exceptions.
    _require().registerErrorHandler(lambda _ctx, _err: None, None)


def connect(uri: str) -> Any:
    """Open a libvirt connection (``qemu:///system``, ``test:///path/node.xml``)."""
    lv = _require()
    _silence_default_handler()
    try:
        return lv.open(uri)
    except lv.libvirtError as exc:
        raise DriverError(f"cannot connect to libvirt at {uri}: {exc}") from exc


def _lookup(conn: Any, name: str) -> Any | None:
    lv = _require()
    try:
        return conn.lookupByName(name)
    except lv.libvirtError as exc:
        if exc.get_error_code() == lv.VIR_ERR_NO_DOMAIN:
            return None
        raise DriverError(f"looking up domain {name}: {exc}") from exc


def domain_state(conn: Any, name: str) -> str | None:
    """``running``, ``shutoff``, ... or None when no such domain is defined."""
    dom = _lookup(conn, validate_domain_name(name))
    if dom is None:
        return None
    state, _reason = dom.state()
    return _STATES.get(state, f"state{state}")


def domain_state_reason(conn: Any, name: str) -> tuple[str, str] | None:
    """(state, reason) — ``("shutoff", "crashed")``, ``("running", "booted")`` — or
    None when no such domain is defined. The reason tells a clean poweroff from a
    killed QEMU, which the state alone does not."""
    dom = _lookup(conn, validate_domain_name(name))
    if dom is None:
        return None
    state, reason = dom.state()
    label = _STATES.get(state, f"state{state}")
    if label == "shutoff":
        return label, SHUTOFF_REASONS.get(reason, f"reason{reason}")
    if label == "crashed":
        return label, CRASHED_REASONS.get(reason, f"reason{reason}")
    return label, str(reason)


def is_connection_lost(exc: BaseException, conn: Any = None) -> bool:
    """True when libvirt's error means the connection itself is gone (libvirtd
    restarted: ``client socket is closed``, ``Cannot write data``, …)."""
    lv = libvirt
    if lv is None:
        return False
    cause = exc
    while cause is not None and not isinstance(cause, lv.libvirtError):
        cause = cause.__cause__
    text = str(exc).lower()
    if any(t in text for t in ("client socket is closed", "broken pipe", "cannot write data",
                               "cannot recv data", "end of file while reading data",
                               "connection reset")):
        return True
    if isinstance(cause, lv.libvirtError):
        code = cause.get_error_code()
        if code in (lv.VIR_ERR_INTERNAL_ERROR, lv.VIR_ERR_SYSTEM_ERROR, lv.VIR_ERR_RPC,
                    getattr(lv, "VIR_ERR_NO_CONNECT", -1), getattr(lv, "VIR_ERR_INVALID_CONN", -1)):
            return conn is None or not _alive(conn)
    return False


def _alive(conn: Any) -> bool:
    try:
        return bool(conn.isAlive())
    except Exception:
        return False


def list_domains(conn: Any) -> list[str]:
    """Names of all defined domains, running or not, sorted."""
    return sorted(d.name() for d in conn.listAllDomains(0))


def domain_xml(conn: Any, name: str) -> str:
    dom = _lookup(conn, validate_domain_name(name))
    if dom is None:
        raise DriverError(f"no domain named {name}")
    return str(dom.XMLDesc(0))


def define_domain(conn: Any, xml: str) -> str:
    """Define (or redefine) the domain in ``xml``; returns its name."""
    lv = _require()
    root = ET.fromstring(xml)  # noqa: S314 - our own document
    name = root.findtext("name") or ""
    validate_domain_name(name)
    existing = _lookup(conn, name)
    if existing is not None and root.find("uuid") is None:
        # Redefining keeps the domain's identity; without its UUID libvirt refuses.
        uuid_el = ET.Element("uuid")
        uuid_el.text = existing.UUIDString()
        root.insert(1, uuid_el)
        xml = ET.tostring(root, encoding="unicode")
    try:
        conn.defineXML(xml)
    except lv.libvirtError as exc:
        raise DriverError(f"defining domain {name}: {exc}") from exc
    return name


def start_domain(conn: Any, name: str) -> str:
    """Start a defined domain unless it already runs; returns the state."""
    lv = _require()
    dom = _lookup(conn, validate_domain_name(name))
    if dom is None:
        raise DriverError(f"cannot start domain {name}: it is not defined")
    if not dom.isActive():
        try:
            dom.create()
        except lv.libvirtError as exc:
            raise DriverError(f"starting domain {name}: {exc}") from exc
    return domain_state(conn, name) or "unknown"


def destroy_domain(conn: Any, name: str) -> bool:
    """Power off the domain if it runs; True when something was stopped."""
    lv = _require()
    dom = _lookup(conn, validate_domain_name(name))
    if dom is None or not dom.isActive():
        return False
    try:
        dom.destroy()
    except lv.libvirtError as exc:
        if not dom.isActive():  # it stopped by itself meanwhile
            return False
        raise DriverError(f"destroying domain {name}: {exc}") from exc
    return True


def undefine_domain(conn: Any, name: str) -> bool:
    """Remove the definition (and managed save / snapshots metadata); True if removed."""
    lv = _require()
    dom = _lookup(conn, validate_domain_name(name))
    if dom is None:
        return False
    flags = (lv.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
             | lv.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA)
    try:
        try:
            dom.undefineFlags(flags)
        except lv.libvirtError as exc:
            if exc.get_error_code() != lv.VIR_ERR_NO_SUPPORT:
                raise
            dom.undefine()
    except lv.libvirtError as exc:
        if _lookup(conn, name) is None:
            return False
        raise DriverError(f"undefining domain {name}: {exc}") from exc
    return True


_MEMORY_UNITS = {"b": 1, "bytes": 1, "k": 1024, "kib": 1024, "m": 1024**2, "mib": 1024**2,
                 "g": 1024**3, "gib": 1024**3, "t": 1024**4, "tib": 1024**4,
                 "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4}


def placement_of(xml: str) -> dict[str, Any]:
    """What decides whose hardware a domain holds, normalised so the XML we build
    and the XML libvirt hands back compare equal: vCPU count, memory (bytes),
    hostdev PCI addresses, vCPU and emulator pinning, NUMA memory nodes."""
    root = ET.fromstring(xml)  # noqa: S314 - libvirt's or our own document
    memory = root.find("memory")
    mem_bytes = None
    if memory is not None and (memory.text or "").strip():
        unit = (memory.get("unit") or "KiB").lower()
        mem_bytes = int(memory.text.strip()) * _MEMORY_UNITS.get(unit, 1024)
    hostdevs = []
    for hostdev in root.iterfind("devices/hostdev"):
        address = hostdev.find("source/address")
        if address is None:
            continue
        if address.get("uuid"):  # a mediated device (a GPU share): its instance UUID
            hostdevs.append(("mdev", address.get("uuid", "").lower()))
            continue
        hostdevs.append(("pci", *(int(address.get(k) or "0", 0)
                                  for k in ("domain", "bus", "slot", "function"))))
    numa = root.find("numatune/memory")
    return {
        "vcpus": int((root.findtext("vcpu") or "0").strip() or 0),
        "memory": mem_bytes,
        "hostdevs": sorted(hostdevs),
        "vcpupin": {int(p.get("vcpu") or 0): parse_cpulist(p.get("cpuset"), allow_exclusions=True)
                    for p in root.iterfind("cputune/vcpupin")},
        "emulatorpin": parse_cpulist(root.find("cputune/emulatorpin").get("cpuset"),
                                     allow_exclusions=True)
        if root.find("cputune/emulatorpin") is not None else frozenset(),
        "numa_nodes": (parse_cpulist(numa.get("nodeset"), allow_exclusions=True)
                       if numa is not None else frozenset()),
    }


def placement_differences(existing_xml: str, wanted_xml: str) -> list[str]:
    """The placement keys on which an existing domain differs from the wanted one."""
    have, want = placement_of(existing_xml), placement_of(wanted_xml)
    return [key for key in want if have.get(key) != want[key]]


def provision(conn: Any, spec: ProvisionSpec, *, domain_type: str = "kvm",
              files: BootFiles | None = None, host: HostOptions | None = None) -> str:
    """Define and start the job's domain; returns its state (``running``).

    A domain of that name that already runs is adopted only if it holds exactly
    the spec's hardware (``placement_differences``): a job requeued onto the same
    host gets the same name, and a VM left over from an earlier attempt may hold
    GPUs and cores given to someone else since.  Such a domain is destroyed and
    undefined, and the job's domain defined and started afresh."""
    xml = build_domain_xml(spec, domain_type=domain_type, files=files, host=host)
    dom = _lookup(conn, validate_domain_name(spec.name))
    if dom is not None and dom.isActive():
        if placement_differences(str(dom.XMLDesc(0)), xml):
            teardown(conn, spec.name)
        else:
            return domain_state(conn, spec.name) or "unknown"
    define_domain(conn, xml)
    return start_domain(conn, spec.name)


def teardown(conn: Any, name: str) -> None:
    """Destroy and undefine; safe to repeat."""
    destroy_domain(conn, name)
    undefine_domain(conn, name)


def node_info(conn: Any) -> dict[str, Any]:
    """The hypervisor's view of the host (CPU model, memory, NUMA cells, cores)."""
    model, memory_mib, cpus, mhz, nodes, sockets, cores, threads = conn.getInfo()
    return {"model": model, "memory_mib": memory_mib, "cpus": cpus, "mhz": mhz,
            "numa_nodes": nodes, "sockets": sockets, "cores": cores, "threads": threads}


def node_device_xml(conn: Any, pci_address: str) -> str | None:
    """``nodedev-dumpxml`` of a PCI device (``0000:3b:00.0``), or None if unknown."""
    lv = _require()
    name = "pci_" + pci_address.lower().replace(":", "_").replace(".", "_")
    try:
        return str(conn.nodeDeviceLookupByName(name).XMLDesc(0))
    except lv.libvirtError as exc:
        if exc.get_error_code() == lv.VIR_ERR_NO_NODE_DEVICE:
            return None
        raise DriverError(f"looking up node device {name}: {exc}") from exc
