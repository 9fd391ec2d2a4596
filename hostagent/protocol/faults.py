"""The fault vocabulary both sides read: what an Xid number means, who owns the
fault, whether the host must stop taking work, and the fixed texts of the
agent's PCIe AER and KVM events.

A ``XidEvent`` carries these names and actions on the wire; the console
translates them (``console/ui/faulttext.py``) and files incidents by the same
sets (``console/core/actions/xid_events.py``). The table is NVIDIA's Xid
catalog, shipped in ``data/xid_catalog.csv`` beside this module with its
sources. The agent's kernel-log parser (``hostagent.xid``) classifies with it.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from functools import cache
from pathlib import Path

CATALOG_PATH = Path(__file__).resolve().parent / "data" / "xid_catalog.csv"

# Fault owner per Xid, from the catalog's likely causes and the NVIDIA device
# plugin's application-error list (13, 31, 43, 45, 68).
APPLICATION_XIDS = frozenset({13, 31, 43, 45, 68})
DRIVER_XIDS = frozenset({8, 32, 38, 61})
HARDWARE_XIDS = frozenset({48, 62, 63, 64, 69, 74, 79, 92, 94, 95, 119, 120, 140})
# The host must stop taking work: the GPU needs a reset, a reboot or repair.
CORDON_XIDS = frozenset({48, 62, 64, 74, 79, 95, 119, 140})
# Xids whose evidence the CUDA_ERROR_LAUNCH_FAILED runbook (CHECKS.md §4) walks through.
LAUNCH_FAILED_XIDS = frozenset({13, 31, 43, 48, 63, 64, 74, 79, 94, 95})

UNKNOWN_XID_ACTION = ("Not in the Xid catalog: look it up in NVIDIA's Xid documentation and "
                      "check the surrounding kernel log")

AER_NAME = "PCIe AER"
AER_CORRECTED_ACTION = ("Corrected PCIe error: no action for a single one; repeated ones mean a "
                        "marginal link or riser, reseat or replace at the next maintenance")
AER_FATAL_ACTION = ("Uncorrected fatal PCIe error: cordon the host, check the slot, riser "
                    "and GPU; expect Xid 79 on that GPU")
AER_NON_FATAL_ACTION = ("Uncorrected non-fatal PCIe error: watch for Xid lines on the device; "
                        "drain the host if it repeats")
KVM_DISABLED_ACTION = "Enable VT-x/AMD-V (SVM) in the BIOS; the host cannot run VMs"
KVM_OTHER_ACTION = "Check the guest named by the vCPU/pid; usually harmless"

# Every fixed English text an event may carry besides the catalog's (to translate).
EVENT_TEXTS = (UNKNOWN_XID_ACTION, AER_NAME, AER_CORRECTED_ACTION, AER_FATAL_ACTION,
               AER_NON_FATAL_ACTION, KVM_DISABLED_ACTION, KVM_OTHER_ACTION)


@dataclass(frozen=True)
class CatalogEntry:
    xid: int
    name: str
    meaning: str
    likely_cause: str
    recommended_action: str
    source: str


@cache
def load_catalog(path: Path | None = None) -> dict[int, CatalogEntry]:
    """The Xid catalog shipped in ``hostagent/protocol/data/xid_catalog.csv``."""
    text = (path or CATALOG_PATH).read_text()
    body = "".join(ln for ln in io.StringIO(text) if not ln.startswith("#"))
    out: dict[int, CatalogEntry] = {}
    for row in csv.DictReader(io.StringIO(body)):
        entry = CatalogEntry(xid=int(row["xid"]), name=row["name"], meaning=row["meaning"],
                             likely_cause=row["likely_cause"],
                             recommended_action=row["recommended_action"], source=row["source"])
        out[entry.xid] = entry
    return out


def classify_xid(xid: int) -> tuple[str, str, str, bool]:
    """``(fault, name, recommended action, cordon)`` for an Xid number."""
    entry = load_catalog().get(xid)
    if xid in APPLICATION_XIDS:
        fault = "application"
    elif xid in HARDWARE_XIDS:
        fault = "hardware"
    elif xid in DRIVER_XIDS:
        fault = "driver"
    else:
        fault = "unknown"
    if entry is None:
        return fault, f"Xid {xid}", UNKNOWN_XID_ACTION, xid in CORDON_XIDS
    return fault, entry.name, entry.recommended_action, xid in CORDON_XIDS
