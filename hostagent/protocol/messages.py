"""Every message between the console and the agents, by direction.

Console → agent, through the broker, inside the signed envelope
(``hostagent.protocol.signing``): ``ProvisionCommand``, ``TeardownCommand``,
``ListDomainsCommand``, ``RunChecksCommand`` — commands: unknown keys refused.

Agent → console, through the broker (signed, ``{"payload", "context"}``):
``ProvisionResult`` (member up / failed), ``TeardownResult`` (member torn down),
``DomainsResult``, ``ChecksResult``; the ``context`` the console gave is echoed
back and read as ``JobContext`` or ``ChecksContext``.

Agent → console, through the REST agent endpoints (host token):
``Registration`` (with its ``Inventory``) and ``Heartbeat`` (with ``XidEvent``s,
``CheckResult``s and ``DomainEnd``s); the console answers ``ConsoleAnswer``.

Reports ignore unknown keys, so a newer peer can talk to an older one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

import msgspec

from hostagent.protocol.spec import ProvisionSpec
from hostagent.protocol.wire import Message, Part, SpecError, Timestamp

__all__ = [
    "CHECK_STATUSES",
    "EVENT_KINDS",
    "FAULTS",
    "RISKS",
    "CheckResult",
    "ChecksContext",
    "ChecksResult",
    "ConsoleAnswer",
    "DomainEnd",
    "DomainReport",
    "DomainsResult",
    "Heartbeat",
    "Inventory",
    "InventoryGpu",
    "InventoryLink",
    "InventoryNic",
    "InventoryNumaNode",
    "JobContext",
    "ListDomainsCommand",
    "ProvisionCommand",
    "ProvisionResult",
    "Registration",
    "ReportTo",
    "RunChecksCommand",
    "TeardownCommand",
    "TeardownResult",
    "XidEvent",
]

CHECK_STATUSES = ("pass", "fail", "unknown")
RISKS = ("critical", "high", "medium", "low")
FAULTS = ("application", "hardware", "driver", "unknown")
EVENT_KINDS = ("xid", "aer", "kvm")


def _one_of(value: str, allowed: tuple[str, ...], key: str) -> None:
    if value not in allowed:
        raise SpecError(f"{key}: {value!r} is not one of {allowed}")


# --- console → agent ------------------------------------------------------------------


class ReportTo(Part, frozen=True, kw_only=True):
    """Where the agent sends its answer: the console task, its queue, and the
    ``context`` to echo back untouched (the agent does not read it)."""

    strict = True
    task: str
    queue: str = "workflow"
    context: dict[str, Any] = {}


class ProvisionCommand(Message, frozen=True, kw_only=True):
    """``hostagent.provision``: start the job's VM on ``host`` as ``spec`` says."""

    strict = True
    host: str
    spec: ProvisionSpec
    report_to: ReportTo | None = None


class TeardownCommand(Message, frozen=True, kw_only=True):
    """``hostagent.teardown``: destroy and undefine domain ``name`` and its leftovers."""

    strict = True
    host: str
    name: str
    job_id: str = ""
    report_to: ReportTo | None = None


class ListDomainsCommand(Message, frozen=True, kw_only=True):
    """``hostagent.list_domains``: Coupler's domains on ``host`` (with libvirt's XML)."""

    strict = True
    host: str
    with_xml: bool = False
    report_to: ReportTo | None = None


class RunChecksCommand(Message, frozen=True, kw_only=True):
    """``hostagent.run_checks``: the host checklist against ``root``, the firmware
    ``baseline`` and the ``peers`` (``host:port`` echo responders) to measure."""

    strict = True
    host: str
    root: str | None = None
    baseline: dict[str, str] | None = None
    peers: tuple[str, ...] = ()
    report_to: ReportTo | None = None


# --- agent → console through the broker ----------------------------------------------


class ProvisionResult(Message, frozen=True, kw_only=True):
    """The answer to a provision: ``ok`` (member up, ``evidence`` of its isolation
    read back from the kernel: ``hostagent.isolation``) or not (member failed,
    ``error``)."""

    job_id: str
    host: str
    ok: bool
    domain: str = ""
    state: str = ""
    error: str = ""
    evidence: dict[str, Any] = {}


class TeardownResult(Message, frozen=True, kw_only=True):
    """The answer to a teardown: ``ok`` (member torn down) or the ``error``."""

    job_id: str = ""
    host: str
    ok: bool
    domain: str = ""
    state: str = ""
    error: str = ""


class DomainEnd(Part, frozen=True, kw_only=True):
    """How a domain ended (``hostagent.guest.outcome``): the console's verdict."""

    succeeded: bool
    reason: str
    exit_status: int | None = None


class GuestReport(Part, frozen=True, kw_only=True):
    up: bool = False
    exit_status: int | None = None


class DomainReport(Part, frozen=True, kw_only=True):
    """One of Coupler's domains on a host: libvirt's state and reason, what the
    guest reported, how it ended, its console's last lines (and XML when asked)."""

    name: str
    state: str
    reason: str = ""
    guest: GuestReport | None = None
    end: DomainEnd | None = None
    console: tuple[str, ...] = ()
    xml: str = ""


class DomainsResult(Message, frozen=True, kw_only=True):
    """The answer to ``hostagent.list_domains``."""

    host: str
    ok: bool = True
    domains: tuple[DomainReport, ...] = ()
    error: str = ""


class CheckResult(Part, frozen=True, kw_only=True):
    """The outcome of one host check (ids from CHECKS.md)."""

    id: str
    status: str
    risk: str
    evidence: dict[str, Any] = {}
    remediation: str = ""
    reason: str = ""
    title: str = ""

    def __post_init__(self) -> None:
        _one_of(self.status, CHECK_STATUSES, "status")
        _one_of(self.risk, RISKS, "risk")


class ChecksResult(Message, frozen=True, kw_only=True):
    """The answer to ``hostagent.run_checks``: every check's result, or the error."""

    host: str
    ok: bool
    checks: tuple[CheckResult, ...] = ()
    error: str = ""


class JobContext(Message, frozen=True, kw_only=True):
    """The context of a provision or teardown, echoed back with its answer: the
    job, its ``generation`` when the command was sent, the host it went to."""

    op: Literal["provision", "teardown"]
    job_id: int
    generation: int
    host: str = ""

    @classmethod
    def upgrade(cls, data: dict[str, Any], version: int) -> dict[str, Any]:
        if version == 1 and "generation" not in data and "attempt" in data:
            data["generation"] = data.pop("attempt")  # version 1's name
        return data

    @classmethod
    def downgrade(cls, data: dict[str, Any], version: int) -> dict[str, Any]:
        if version == 1:
            data["attempt"] = data.pop("generation")
        return data


class ChecksContext(Message, frozen=True, kw_only=True):
    """The context of a check round, echoed back with its answer."""

    op: Literal["checks"] = "checks"
    host_id: int
    requested_by: str = ""


# --- agent → console through the REST API --------------------------------------------


class XidEvent(Part, frozen=True, kw_only=True):
    """One classified kernel-log line: an NVRM Xid, a PCIe AER or a KVM error.
    ``timestamp`` is the line's own time as the log wrote it (evidence, any of
    the formats ``hostagent.xid`` reads), not a time of the protocol."""

    kind: str
    line: str
    message: str = ""
    xid: int | None = None
    pci: str | None = None
    pid: int | None = None
    process: str | None = None
    timestamp: str | None = None
    fault: str = "unknown"
    name: str = ""
    action: str = ""
    host: str = ""
    cordon: bool = False

    def __post_init__(self) -> None:
        _one_of(self.kind, EVENT_KINDS, "kind")
        _one_of(self.fault, FAULTS, "fault")


class Heartbeat(Message, frozen=True, kw_only=True):
    """Sent by the agent for every host every few seconds.

    ``domains`` are running; ``stopped_domains``, ``domain_states``,
    ``domain_ends`` and ``console_tail`` are None when libvirt failed (then
    ``libvirt_error`` says why and the console keeps the last report).
    ``latency_endpoint`` None: not reported (kept); "": none."""

    host: str = ""
    sent_at: Timestamp
    agent_version: str = ""
    domains: tuple[str, ...] = ()
    gpus: tuple[str, ...] = ()
    healthy: bool = True
    load: dict[str, float] = {}
    stopped_domains: tuple[str, ...] | None = None
    domain_states: dict[str, str] | None = None
    domain_ends: dict[str, DomainEnd] | None = None
    console_tail: dict[str, tuple[str, ...]] | None = None
    hypervisor: dict[str, Any] | None = None
    libvirt_error: str = ""
    xid_events: tuple[XidEvent, ...] = ()
    checks: tuple[CheckResult, ...] | None = None
    latency_endpoint: str | None = None

    @classmethod
    def upgrade(cls, data: dict[str, Any], version: int) -> dict[str, Any]:
        sent_at = data.get("sent_at")
        if version == 1 and isinstance(sent_at, int | float) and not isinstance(sent_at, bool):
            try:  # version 1 sent Unix time
                data["sent_at"] = datetime.fromtimestamp(sent_at, UTC)
            except (OverflowError, OSError, ValueError) as exc:
                raise SpecError(f"Heartbeat: sent_at: {sent_at!r} is not a time") from exc
        return data

    @classmethod
    def downgrade(cls, data: dict[str, Any], version: int) -> dict[str, Any]:
        if version == 1:  # Unix time
            data["sent_at"] = datetime.fromisoformat(data["sent_at"]).timestamp()
        return data


class InventoryGpu(Part, frozen=True, kw_only=True):
    index: int
    uuid: str
    pci_address: str
    model: str
    memory_mib: int = 0
    numa_node: int | None = None
    cpu_affinity: tuple[int, ...] = ()
    iommu_group: int | None = None
    iommu_foreign: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for key in ("uuid", "pci_address", "model"):
            if not getattr(self, key):
                raise SpecError(f"{key}: required, got an empty string")


class InventoryNumaNode(Part, frozen=True, kw_only=True):
    node: int
    cpus: tuple[int, ...] = ()
    memory_gib: int = 0
    hugepages_1g: int = 0
    socket: int = 0


class InventoryNic(Part, frozen=True, kw_only=True):
    name: str
    label: str = ""
    numa_node: int | None = None
    pci_address: str = ""
    link_type: str = ""
    sriov_totalvfs: int = 0
    sriov_numvfs: int = 0
    vfs: tuple[str, ...] = ()


class InventoryLink(Part, frozen=True, kw_only=True):
    """A link between two GPUs (``GPU3`` labels or GPU indices)."""

    a: str | int
    b: str | int
    kind: str
    nvlinks: int = 0


class Inventory(Part, frozen=True, kw_only=True):
    """A host's hardware (``hostagent.inventory``, or a simulated host's). ``gpus``
    None: no inventory in this registration (the stored one is kept)."""

    cpu_count: int = 0
    memory_gib: int = 0
    group: str = ""
    reserved_cores: tuple[int, ...] = ()
    facts: dict[str, Any] = {}
    numa_nodes: tuple[InventoryNumaNode, ...] = ()
    gpus: tuple[InventoryGpu, ...] | None = None
    nics: tuple[InventoryNic, ...] = ()
    links: tuple[InventoryLink, ...] = ()


class Registration(Message, frozen=True, kw_only=True):
    """Sent by the agent for every host when it starts (and until accepted)."""

    inventory: Inventory = msgspec.field(default_factory=Inventory)
    libvirt_uri: str = ""
    agent_version: str = ""
    latency_endpoint: str = ""
    hypervisor: dict[str, Any] | None = None


class ConsoleAnswer(Message, frozen=True, kw_only=True):
    """The console's answer to a registration or a heartbeat: the host's state,
    the ``peers`` and firmware ``baseline`` of its next check round; after a
    heartbeat, how many incidents it opened and jobs it finished."""

    host: str = ""
    state: str = ""
    queue: str = ""
    peers: tuple[str, ...] = ()
    baseline: dict[str, str] | None = None
    incidents: int = 0
    finished: int = 0
