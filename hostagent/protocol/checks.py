"""The host-check catalogue: one entry per check of CHECKS.md sections 1 and 2,
in their order, with its id, section, risk, title, standard, remediation and
where its evidence is measured.

Pure data, no I/O and no imports beyond the standard library: the agent's
checks (``hostagent.checks``) take their descriptions from here, and the
console imports this module (and only this one of the agent's checks) to list
and explain them. Titles, sections and remediations are marked with ``_`` so
the console's ``makemessages`` extracts them; the console translates them at
render time by check id, the agent reports them in English.
"""

from __future__ import annotations

from dataclasses import dataclass


def _(text: str) -> str:
    """Marks text for translation (extracted by the console's makemessages); the
    text itself is English."""
    return text


@dataclass(frozen=True)
class CheckSpec:
    id: str
    section: str
    risk: str  # critical, high, medium, low
    title: str
    standard: str  # the measurable rule, as CHECKS.md states it
    remediation: str
    measured_from: str  # where the evidence comes from (paths, tools)


PREDEPLOY = _("1. Pre-deployment checklist")
TUNING = _("2. Tuning matrix")

CATALOGUE: tuple[CheckSpec, ...] = (
    CheckSpec(
        id='bios.smt_disabled', section=PREDEPLOY, risk='high',
        title=_('Hyper-threading off in BIOS'),
        standard='SMT disabled in BIOS: smt/active = 0 or smt/control in {off, forceoff, notsupported}',
        remediation=_('Disable Hyper-Threading/SMT in the BIOS setup (or boot with nosmt as a stopgap)'),
        measured_from='/sys/devices/system/cpu/smt/active = 0, or smt/control ∈ {off, forceoff, notsupported}',
    ),
    CheckSpec(
        id='firmware.baseline', section=PREDEPLOY, risk='medium',
        title=_("Mainboard/BMC/GPU firmware at the admin's baseline for that host model"),
        standard="BIOS, board and GPU VBIOS/driver versions equal the admin's baseline for this host model",
        remediation=_('Update BIOS/BMC/GPU firmware (or the driver) to the baseline versions'),
        measured_from='DMI bios_version/board_name, NVML VBIOS and driver version vs the baseline',
    ),
    CheckSpec(
        id='network.hop_latency', section=PREDEPLOY, risk='critical',
        title=_('Single-hop latency < 5 µs between hosts of a cluster'),
        standard='one-way latency between hosts of a cluster below 5 µs (RDMA ib_send_lat-style, else TCP round trip / 2)',
        remediation=_('Check the fabric: same leaf switch, RDMA enabled, no congestion; busy-poll for TCP'),
        measured_from='Measured between host agents (RDMA when present, else TCP round trip)',
    ),
    CheckSpec(
        id='kvm.available', section=PREDEPLOY, risk='critical',
        title=_('KVM usable'),
        standard='/dev/kvm opens, KVM_GET_API_VERSION is 12 and KVM_CREATE_VM works; the CPUs offer vmx or svm',
        remediation=_('Enable VT-x/AMD-V in the BIOS and load kvm_intel or kvm_amd'),
        measured_from='/dev/kvm exists; kvm_intel or kvm_amd loaded',
    ),
    CheckSpec(
        id='iommu.enabled', section=PREDEPLOY, risk='critical',
        title=_('IOMMU on (needed for passthrough)'),
        standard='/sys/class/iommu has units; intel_iommu=on / amd_iommu / iommu=pt on the kernel cmdline',
        remediation=_('Enable VT-d/AMD-Vi in the BIOS and boot with intel_iommu=on iommu=pt (or amd_iommu=on)'),
        measured_from='/sys/class/iommu/* present; intel_iommu=on / amd_iommu / iommu=pt in /proc/cmdline',
    ),
    CheckSpec(
        id='iommu.gpu_isolated', section=PREDEPLOY, risk='high',
        title=_('Each GPU in an IOMMU group with no foreign device'),
        standard="each GPU's IOMMU group holds only that GPU's functions (and bridges)",
        remediation=_('Move the GPU to a slot with its own IOMMU group, enable ACS on the bridges above it'),
        measured_from='/sys/kernel/iommu_groups/*/devices/',
    ),
    CheckSpec(
        id='pcie.acs', section=PREDEPLOY, risk='medium',
        title=_('ACS enabled on the bridges above the GPUs'),
        standard='the ACS capability of every bridge above a GPU has Source Validation, Request and Completion Redirect and Upstream Forwarding enabled',
        remediation=_('Enable ACS in the BIOS (PCIe/ACS option) or with setpci on the switch downstream ports'),
        measured_from="ACS extended capability in the bridges' config space (ACSCtl)",
    ),
    CheckSpec(
        id='vfio.bound', section=PREDEPLOY, risk='high',
        title=_('GPUs meant for passthrough bound to vfio-pci'),
        standard='every GPU meant for passthrough is bound to vfio-pci',
        remediation=_('Bind the GPUs to vfio-pci (vfio-pci.ids=10de:XXXX or driverctl set-override)'),
        measured_from='/sys/bus/pci/devices/<bdf>/driver',
    ),
    CheckSpec(
        id='gpu.persistence_ecc', section=PREDEPLOY, risk='medium',
        title=_('Persistence mode on, ECC on, no pending page retirement / row remap'),
        standard='persistence mode on, ECC on, no pending page retirement or row remap',
        remediation=_('nvidia-smi -pm 1; nvidia-smi -e 1 and reboot; reset the GPU to apply pending remaps'),
        measured_from='NVML',
    ),
    CheckSpec(
        id='memory.hugepages_1g', section=TUNING, risk='high',
        title=_('1 GiB hugepages reserved for VMs'),
        standard='1 GiB hugepages reserved for VMs (hugepages=1G), default_hugepagesz=1G',
        remediation=_('Boot with default_hugepagesz=1G hugepagesz=1G hugepages=<N> (or write nr_hugepages per node early at boot)'),
        measured_from='nr_hugepages of hugepages-1048576kB (per NUMA node); default_hugepagesz=1G',
    ),
    CheckSpec(
        id='sched.batch', section=TUNING, risk='medium',
        title=_('Training vCPU threads run with SCHED_BATCH'),
        standard='training vCPU threads run with SCHED_BATCH',
        remediation=_("Coupler's domain XML sets <cputune><vcpusched scheduler='batch'> on every vCPU (applied by libvirt at start); for a domain defined without it: chrt -b -p 0 <tid> for each vCPU thread"),
        measured_from="Scheduling policy of the domains' vCPU threads",
    ),
    CheckSpec(
        id='storage.raw_xfs', section=TUNING, risk='medium',
        title=_('VM data disks on raw block devices, host data volumes on XFS'),
        standard='VM data disks on raw block devices; host data volumes on XFS',
        remediation=_('Put the VM data volumes on XFS (mkfs.xfs) and give VMs raw block devices'),
        measured_from="/proc/mounts; domain disk type='block'",
    ),
    CheckSpec(
        id='memory.thp_madvise', section=TUNING, risk='medium',
        title=_('Transparent hugepages = madvise'),
        standard='/sys/kernel/mm/transparent_hugepage/enabled shows [madvise]',
        remediation=_('echo madvise > /sys/kernel/mm/transparent_hugepage/enabled (and transparent_hugepage=madvise on the kernel cmdline)'),
        measured_from='/sys/kernel/mm/transparent_hugepage/enabled shows [madvise]',
    ),
    CheckSpec(
        id='numa.balancing_off', section=TUNING, risk='low',
        title=_('Automatic NUMA balancing off on pinned hosts'),
        standard='/proc/sys/kernel/numa_balancing = 0 on hosts with pinned VMs',
        remediation=_('sysctl -w kernel.numa_balancing=0 (persist in /etc/sysctl.d)'),
        measured_from='/proc/sys/kernel/numa_balancing = 0',
    ),
    CheckSpec(
        id='net.rps_flow_entries', section=TUNING, risk='low',
        title=_('rps_sock_flow_entries set (e.g. 32768)'),
        standard='/proc/sys/net/core/rps_sock_flow_entries set (e.g. 32768)',
        remediation=_('sysctl -w net.core.rps_sock_flow_entries=32768'),
        measured_from='/proc/sys/net/core/rps_sock_flow_entries',
    ),
    CheckSpec(
        id='rdma.roce_pfc', section=TUNING, risk='high',
        title=_('RoCE NICs: PFC on the RDMA traffic class'),
        standard='PFC enabled on the RDMA traffic class of every RoCE NIC',
        remediation=_('dcb pfc set dev <if> prio-pfc <prio>:on (or mlnx_qos -i <if> --pfc ...)'),
        measured_from='dcb pfc show dev <if>',
    ),
    CheckSpec(
        id='rdma.roce_dcqcn', section=TUNING, risk='high',
        title=_('RoCE NICs: DCQCN (ECN notification + reaction) on'),
        standard='ECN notification point and reaction point enabled for the RDMA priority',
        remediation=_('echo 1 > /sys/class/net/<if>/ecn/roce_np/enable/<prio> and .../roce_rp/enable/<prio>'),
        measured_from='mlx5 ecn/roce_np and roce_rp enable per priority',
    ),
    CheckSpec(
        id='storage.userspace_nvme', section=TUNING, risk='low',
        title=_('NVMe for high-IOPS scratch available to a userspace (SPDK) stack when enabled'),
        standard='NVMe devices for high-IOPS scratch bound to vfio-pci/uio when enabled',
        remediation=_('Bind the scratch NVMe devices to vfio-pci (SPDK scripts/setup.sh)'),
        measured_from='NVMe devices bound to vfio-pci/uio',
    ),
)
BY_ID: dict[str, CheckSpec] = {spec.id: spec for spec in CATALOGUE}
CHECK_IDS: tuple[str, ...] = tuple(spec.id for spec in CATALOGUE)
