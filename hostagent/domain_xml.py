"""Build a libvirt domain XML document from a ``ProvisionSpec``.

Built with ElementTree, so no value from a job can change the document's
structure; the domain name is checked against ``[A-Za-z0-9_.-]`` as well
because libvirt uses it in file and cgroup names.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

from coupler_common.cpulist import format_cpulist
from hostagent.protocol import PCI_ADDRESS_RE, ProvisionSpec, SpecError, validate_domain_name

__all__ = ["CPU_MODES", "DOMAIN_TYPES", "GUEST_CHANNEL", "METADATA_NS", "BootFiles",
           "HostOptions", "build_domain_xml", "pci_address_parts"]

DOMAIN_TYPES = ("kvm", "qemu", "test")
CPU_MODES = ("host-passthrough", "host-model", "custom", "maximum", "")
METADATA_NS = "https://coupler.invalid/xmlns/hostagent/1"
# The virtio-serial port through which the guest reports "up" and its exit status
# (guest side: /sys/class/virtio-ports/*/name == this; see hostagent/guest.py).
GUEST_CHANNEL = "org.coupler.status.0"


@dataclass(frozen=True)
class BootFiles:
    """Host paths of one job's VM: its disk overlay, direct-boot kernel/initrd, and
    the files QEMU writes its serial console and guest channel to."""

    disk: str = ""
    disk_format: str = "qcow2"
    kernel: str = ""
    initrd: str = ""
    cmdline: str = ""
    console_log: str = ""
    channel_log: str = ""


@dataclass(frozen=True)
class HostOptions:
    """What the host decides about a domain, not the job: hypervisor, CPU model,
    network, cgroup partition (libvirt's ``<resource><partition>``)."""

    domain_type: str = "kvm"
    cpu_mode: str = ""  # "" = host-passthrough under kvm, QEMU's default under qemu
    cpu_model: str = ""
    network: str = ""  # "" none, "user", "network:NAME", "bridge:NAME"
    partition: str = ""  # e.g. "/coupler"; "" = libvirt's default (/machine)
    # libvirt raises QEMU's RLIMIT_MEMLOCK to memtune's hard_limit, which needs
    # CAP_SYS_RESOURCE; without it the agent writes the hard limit to the cgroup itself.
    memtune_hard_limit: bool = True
    # Firmware for direct kernel boot, e.g. QEMU's qboot.rom: starts a kernel in a
    # fraction of SeaBIOS's time (seconds under TCG). "" = the machine's default.
    kernel_loader: str = ""


def pci_address_parts(address: str) -> dict[str, str]:
    """``0000:3b:00.0`` -> libvirt ``<address>`` attributes (hex with 0x)."""
    address = address.lower()
    if not PCI_ADDRESS_RE.match(address):
        raise SpecError(f"gpus: {address!r} is not a PCI address like 0000:3b:00.0")
    domain, bus, rest = address.split(":")
    slot, function = rest.split(".")
    return {"domain": f"0x{domain}", "bus": f"0x{bus}", "slot": f"0x{slot}",
            "function": f"0x{function}"}


def _sub(parent: ET.Element, tag: str, text: str | int | None = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, attrs)
    if text is not None:
        el.text = str(text)
    return el


def _numatune(dom: ET.Element, spec: ProvisionSpec) -> None:
    """Memory strict on the job's host NUMA nodes; with guest cells, each cell's memory
    strict on its own host node (``memnode``), so a vCPU's memory sits next to it."""
    numatune = _sub(dom, "numatune")
    _sub(numatune, "memory", mode="strict", nodeset=format_cpulist(spec.numa_nodes))
    for cell_id, cell in enumerate(spec.numa_cells):
        if cell.memory_mib:
            _sub(numatune, "memnode", cellid=str(cell_id), mode="strict",
                 nodeset=str(cell.host_node))


def _guest_numa(cpu: ET.Element, spec: ProvisionSpec) -> None:
    """``<cpu><numa>``: one guest cell per host node the job got, holding the vCPUs pinned
    there and the memory bound there, so the guest's framework sees the GPUs' locality.
    Cells take consecutive vCPU ids (the spec lists its cores cell by cell)."""
    numa = _sub(cpu, "numa")
    first = 0
    for cell_id, cell in enumerate(spec.numa_cells):
        attrs = {"id": str(cell_id), "memory": str(cell.memory_mib), "unit": "MiB"}
        if cell.cpus:
            attrs["cpus"] = format_cpulist(range(first, first + len(cell.cpus)))
            first += len(cell.cpus)
        _sub(numa, "cell", **attrs)


def _nic_vf_hostdevs(devices: ET.Element, spec: ProvisionSpec) -> None:
    """Each NIC virtual function (SR-IOV) next to the job's GPUs, passed through whole
    for GPUDirect RDMA."""
    for vf in spec.nic_vfs:
        hostdev = _sub(devices, "hostdev", mode="subsystem", type="pci", managed="yes")
        _sub(hostdev, "driver", name="vfio")
        _sub(_sub(hostdev, "source"), "address", **pci_address_parts(vf))


def build_domain_xml(spec: ProvisionSpec, *, domain_type: str = "kvm",
                     arch: str = "x86_64", machine: str | None = None,
                     files: BootFiles | None = None, host: HostOptions | None = None) -> str:
    """The domain XML for ``spec``; ``domain_type`` is ``kvm`` with hardware
    virtualization, ``qemu`` (TCG) without, ``test`` on libvirt's test driver.
    ``files`` gives the disk, kernel and log paths of a bootable VM; ``host`` the
    host's choices (it overrides ``domain_type``)."""
    if host is not None:
        domain_type = host.domain_type
    host = host or HostOptions(domain_type=domain_type)
    if domain_type not in DOMAIN_TYPES:
        raise SpecError(f"domain_type: {domain_type!r} is not one of {DOMAIN_TYPES}")
    validate_domain_name(spec.name)
    if machine is None:
        machine = "q35" if domain_type in ("kvm", "qemu") else None

    dom = ET.Element("domain", {"type": domain_type})
    _sub(dom, "name", spec.name)
    meta = _sub(dom, "metadata")
    ET.SubElement(meta, f"{{{METADATA_NS}}}job", {"id": spec.job_id})
    _sub(dom, "memory", spec.memory_mib, unit="MiB")
    _sub(dom, "currentMemory", spec.memory_mib, unit="MiB")

    # Passthrough GPUs pin all guest memory for DMA anyway; say so explicitly. Only
    # then: <locked/> needs RLIMIT_MEMLOCK raised (CAP_SYS_RESOURCE; pre-flight).
    locked = bool(spec.gpus or spec.gpu_shares)
    if spec.hugepages or locked:
        backing = _sub(dom, "memoryBacking")
        if spec.hugepages:
            pages = _sub(backing, "hugepages")
            _sub(pages, "page", size="1", unit="G")
        if locked:
            _sub(backing, "locked")

    cg = spec.cgroup
    if cg.memory_max is not None or cg.memory_high is not None:
        memtune = _sub(dom, "memtune")
        if cg.memory_max is not None and host.memtune_hard_limit:
            _sub(memtune, "hard_limit", cg.memory_max // 1024, unit="KiB")
        if cg.memory_high is not None:
            _sub(memtune, "soft_limit", cg.memory_high // 1024, unit="KiB")

    if spec.io_limits or spec.io_weight is not None:
        blkio = _sub(dom, "blkiotune")
        if spec.io_weight is not None:
            _sub(blkio, "weight", spec.io_weight)
        for io in spec.io_limits:
            dev = _sub(blkio, "device")
            _sub(dev, "path", io.device)
            for key, tag in (("riops", "read_iops_sec"), ("wiops", "write_iops_sec"),
                             ("rbps", "read_bytes_sec"), ("wbps", "write_bytes_sec")):
                value = getattr(io, key)
                if value is not None:
                    _sub(dev, tag, value)

    if host.partition and domain_type != "test":
        # QEMU's cgroup under Coupler's partition, not libvirt's default /machine.
        _sub(_sub(dom, "resource"), "partition", host.partition)

    _sub(dom, "vcpu", spec.vcpus, placement="static")
    cputune = _sub(dom, "cputune")
    _sub(cputune, "shares", cg.cpu_weight)
    for vcpu, core in enumerate(spec.cpus):
        _sub(cputune, "vcpupin", vcpu=str(vcpu), cpuset=str(core))
    _sub(cputune, "emulatorpin", cpuset=format_cpulist(spec.cpus))
    # Training vCPU threads run SCHED_BATCH (checks: sched.batch): libvirt sets the
    # policy on every vCPU thread when it starts the domain.
    _sub(cputune, "vcpusched", vcpus=f"0-{spec.vcpus - 1}" if spec.vcpus > 1 else "0",
         scheduler="batch")

    _numatune(dom, spec)

    os_el = _sub(dom, "os")
    type_attrs = {"arch": arch}
    if machine:
        type_attrs["machine"] = machine
    _sub(os_el, "type", "hvm", **type_attrs)
    files = files or BootFiles()
    if files.kernel:
        if host.kernel_loader:
            _sub(os_el, "loader", host.kernel_loader, readonly="yes", type="rom")
        _sub(os_el, "kernel", files.kernel)
        if files.initrd:
            _sub(os_el, "initrd", files.initrd)
        cmdline = " ".join(x for x in ("console=ttyS0", files.cmdline) if x)
        _sub(os_el, "cmdline", cmdline)
    else:
        _sub(os_el, "boot", dev="hd")

    features = _sub(dom, "features")
    _sub(features, "acpi")
    _sub(features, "apic")
    cpu_mode = host.cpu_mode or ("host-passthrough" if domain_type == "kvm" else "")
    if cpu_mode not in CPU_MODES:
        raise SpecError(f"cpu_mode: {cpu_mode!r} is not one of {CPU_MODES}")
    cpu = None
    if host.cpu_model:
        cpu = _sub(dom, "cpu", mode="custom", match="exact", check="none")
        _sub(cpu, "model", host.cpu_model, fallback="forbid")
    elif cpu_mode and domain_type != "test":
        cpu = _sub(dom, "cpu", mode=cpu_mode, check="none")
    if spec.numa_cells:
        _guest_numa(cpu if cpu is not None else _sub(dom, "cpu"), spec)
    _sub(dom, "clock", offset="utc")
    _sub(dom, "on_poweroff", "destroy")
    _sub(dom, "on_reboot", "restart")
    _sub(dom, "on_crash", "destroy")

    devices = _sub(dom, "devices")
    for gpu in spec.gpus:
        hostdev = _sub(devices, "hostdev", mode="subsystem", type="pci", managed="yes")
        _sub(hostdev, "driver", name="vfio")
        source = _sub(hostdev, "source")
        _sub(source, "address", **pci_address_parts(gpu))
    for share in spec.gpu_shares:
        # A time-sliced share: the mediated device the agent created on the GPU.
        mdev = _sub(devices, "hostdev", mode="subsystem", type="mdev", model="vfio-pci",
                    display="off")
        _sub(_sub(mdev, "source"), "address", uuid=share.mdev_uuid)
    _boot_devices(devices, files, host.network)
    _nic_vf_hostdevs(devices, spec)
    _sub(devices, "memballoon", model="none")  # a balloon cannot shrink pinned memory

    ET.register_namespace("coupler", METADATA_NS)
    ET.indent(dom)
    return ET.tostring(dom, encoding="unicode") + "\n"


def _boot_devices(devices: ET.Element, files: BootFiles, network: str) -> None:
    """Disk, NIC, serial console, guest channel and panic device of a bootable VM."""
    if files.disk:
        disk = _sub(devices, "disk", type="file", device="disk")
        # CHECKS.md storage.raw_xfs: no host page cache, native AIO on the host file.
        _sub(disk, "driver", name="qemu", type=files.disk_format, cache="none", io="native",
             discard="unmap")
        _sub(disk, "source", file=files.disk)
        _sub(disk, "target", dev="vda", bus="virtio")
    kind, _, name = network.partition(":")
    if kind == "user":
        iface = _sub(devices, "interface", type="user")
        _sub(iface, "model", type="virtio")
    elif kind in ("network", "bridge") and name:
        iface = _sub(devices, "interface", type=kind)
        _sub(iface, "source", **{kind: name})
        _sub(iface, "model", type="virtio")
    elif network:
        raise SpecError(f"network: {network!r} is not user, network:NAME or bridge:NAME")
    if files.console_log:
        serial = _sub(devices, "serial", type="file")
        _sub(serial, "source", path=files.console_log, append="on")
        _sub(serial, "target", port="0")
    if files.channel_log:
        channel = _sub(devices, "channel", type="file")
        _sub(channel, "source", path=files.channel_log, append="on")
        _sub(channel, "target", type="virtio", name=GUEST_CHANNEL)
    if files.disk or files.kernel:
        # A guest kernel panic ends the domain (on_crash destroy, reason crashed)
        # instead of leaving a dead VM "running".
        _sub(devices, "panic", model="isa")
