"""The wire protocol between the console and the host agents: declared, versioned types.

The console imports this package (and only this one) from ``hostagent``. Every
message is a frozen ``msgspec.Struct`` with a ``version`` (``wire``); the
provision spec's parts are in ``spec``, the messages by direction in
``messages``. ``decode(Type, data)`` validates on arrival (``SpecError`` naming
the field), ``encode(msg, version)`` writes for a peer of that version.
``python -m hostagent.protocol doc`` prints docs/protocol.md; ``bench`` times the
heartbeat decode. See docs/protocol.md.
"""

from hostagent.protocol.messages import (
    CHECK_STATUSES,
    EVENT_KINDS,
    FAULTS,
    RISKS,
    CheckResult,
    ChecksContext,
    ChecksResult,
    ConsoleAnswer,
    DomainEnd,
    DomainReport,
    DomainsResult,
    GuestReport,
    Heartbeat,
    Inventory,
    InventoryGpu,
    InventoryLink,
    InventoryNic,
    InventoryNumaNode,
    JobContext,
    ListDomainsCommand,
    ProvisionCommand,
    ProvisionResult,
    Registration,
    ReportTo,
    RunChecksCommand,
    TeardownCommand,
    TeardownResult,
    XidEvent,
)
from hostagent.protocol.spec import (
    FILE_NAME_RE,
    IMAGE_FORMATS,
    PCI_ADDRESS_RE,
    SHA256_RE,
    CgroupSettings,
    GpuShare,
    ImageSpec,
    IoLimit,
    NumaCell,
    ProvisionSpec,
    validate_domain_name,
)
from hostagent.protocol.wire import (
    PROTOCOL_VERSION,
    Message,
    Part,
    SpecError,
    decode,
    encode,
    peer_version,
)

# Each command task and the type of its message.
COMMANDS: dict[str, type[Message]] = {
    "hostagent.provision": ProvisionCommand,
    "hostagent.teardown": TeardownCommand,
    "hostagent.list_domains": ListDomainsCommand,
    "hostagent.run_checks": RunChecksCommand,
}
# Each command task and the type of the answer the agent sends back.
RESULTS: dict[str, type[Message]] = {
    "hostagent.provision": ProvisionResult,
    "hostagent.teardown": TeardownResult,
    "hostagent.list_domains": DomainsResult,
    "hostagent.run_checks": ChecksResult,
}

__all__ = [
    "CHECK_STATUSES", "COMMANDS", "EVENT_KINDS", "FAULTS", "FILE_NAME_RE", "IMAGE_FORMATS",
    "PCI_ADDRESS_RE", "PROTOCOL_VERSION", "RESULTS", "RISKS", "SHA256_RE", "CgroupSettings",
    "CheckResult", "ChecksContext", "ChecksResult", "ConsoleAnswer", "DomainEnd",
    "DomainReport", "DomainsResult", "GpuShare", "GuestReport", "Heartbeat", "ImageSpec",
    "Inventory", "InventoryGpu", "InventoryLink", "InventoryNic", "InventoryNumaNode",
    "IoLimit", "JobContext", "ListDomainsCommand", "Message", "NumaCell", "Part",
    "ProvisionCommand", "ProvisionResult", "ProvisionSpec", "Registration", "ReportTo",
    "RunChecksCommand", "SpecError", "TeardownCommand", "TeardownResult", "XidEvent",
    "decode", "encode", "peer_version", "validate_domain_name",
]
