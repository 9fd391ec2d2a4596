"""``python -m hostagent``: operator commands.

Human-readable by default, ``--json`` for machines; bad input gives a clear
message on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hostagent.protocol import SpecError

__all__ = ["main"]

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1


class CliError(Exception):
    """Bad input from the operator; printed without a traceback."""


def _read_text(path: str, what: str) -> str:
    try:
        return Path(path).read_text()
    except FileNotFoundError:
        raise CliError(f"{what} not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read {what} {path}: {exc}") from None


def _emit(doc: Any, as_json: bool, human: str) -> None:
    print(json.dumps(doc, indent=2, sort_keys=True) if as_json else human)


def _cmd_inventory(args: argparse.Namespace) -> int:
    from hostagent.inventory import collect_inventory
    from hostagent.topo import TopoParseError

    text = _read_text(args.topo, "topology capture") if args.topo else None
    try:
        doc = collect_inventory(topo_text=text, root=args.root)
    except TopoParseError as exc:
        raise CliError(f"{args.topo}: not a nvidia-smi topo -m capture: {exc}") from None
    lines = [f"GPU source: {doc['source']}" + (f" ({doc['error']})" if doc.get("error") else "")]
    for g in doc["gpus"]:
        cpus = g["cpu_affinity"]
        lines.append(f"  GPU{g['index']}  numa={g['numa_node']}  cpus={len(cpus)}"
                     + (f"  {g['name']}  {g['pci_bus_id']}" if g.get("name") else ""))
    for n in doc["nics"]:
        lines.append(f"  {n['label']:6} {n['name']}")
    nv = [lk for lk in doc["links"] if lk["nvlinks"]]
    lines.append(f"links: {len(doc['links'])} pairs, {len(nv)} over NVLink")
    host = doc["host"]
    lines.append(f"host: {len(host['cpus'] or [])} CPUs, SMT active={host['smt_active']}, "
                 f"{len(host['numa_nodes'])} NUMA nodes, {len(host['iommu_groups'])} IOMMU groups")
    _emit(doc, args.json, "\n".join(lines))
    return 0


def _cmd_checks(args: argparse.Namespace) -> int:
    from hostagent.checks import run_checks

    if not Path(args.root).is_dir():
        raise CliError(f"root tree not found: {args.root}")
    baseline = None
    if args.baseline:
        try:
            baseline = json.loads(_read_text(args.baseline, "baseline"))
        except json.JSONDecodeError as exc:
            raise CliError(f"{args.baseline}: not JSON: {exc}") from None
    results = run_checks(args.root, baseline=baseline, peers=args.peer or ())
    lines = [f"{r.status.upper():8} {r.risk:9} {r.id:24} "
             + (r.reason or ("" if r.status == "pass" else r.remediation)) for r in results]
    _emit([r.to_dict() for r in results], args.json, "\n".join(lines))
    return EXIT_FAILED if any(r.status == "fail" for r in results) else 0


def _cmd_xid(args: argparse.Namespace) -> int:
    from hostagent.xid import XidScanner, scan_text

    if args.state:
        try:
            events = XidScanner(args.log, args.state).scan()
        except FileNotFoundError:
            raise CliError(f"kernel log not found: {args.log}") from None
    else:
        events = scan_text(_read_text(args.log, "kernel log") if args.log != "-"
                           else sys.stdin.read())
    lines = [f"{e.kind:4} xid={e.xid if e.xid is not None else '-':<4} pci={e.pci or '-':13} "
             f"{e.fault:11} {'CORDON ' if e.cordon else ''}{e.name}: {e.action}" for e in events]
    _emit([e.to_dict() for e in events], args.json, "\n".join(lines) or "no Xid, AER or KVM lines")
    return 0


def _cmd_render(args: argparse.Namespace) -> int:
    from hostagent.domain_xml import build_domain_xml
    from hostagent.protocol import ProvisionSpec

    try:
        data = json.loads(_read_text(args.spec, "provision spec"))
    except json.JSONDecodeError as exc:
        raise CliError(f"{args.spec}: not JSON: {exc}") from None
    spec = ProvisionSpec.from_dict(data)
    sys.stdout.write(build_domain_xml(spec, domain_type=args.domain_type))
    return 0


def _cmd_prepare_host(args: argparse.Namespace) -> int:
    """This machine ready to host VMs: daemons, hugepages if asked, the busybox image.
    Prints a JSON document: its console inventory and the image's files."""
    from hostagent import guestimage, realhost

    try:
        started = realhost.ensure_daemons()
    except realhost.DaemonError as exc:
        raise CliError(f"no hypervisor on this machine: {exc}") from None
    hugepages = realhost.reserve_hugepages(args.hugepages) if args.hugepages else None
    image = guestimage.build_busybox_image(args.images)
    print(json.dumps({"daemons_started": started, "hugepages": hugepages,
                      "inventory": realhost.console_inventory(),
                      "image": {"disk": image.disk, "kernel": image.kernel,
                                "initrd": image.initrd, "sha256": image.sha256()}}))
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from hostagent import runtime

    # The worker's app is handed in, so runtime does not import agent_tasks (which
    # imports runtime): no import cycle in hostagent.
    from hostagent.agent_tasks import app

    return runtime.main(args, app)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m hostagent", description="Coupler host agent")
    sub = p.add_subparsers(dest="command", required=True)

    inv = sub.add_parser("inventory", help="GPUs, links and host resources")
    inv.add_argument("--topo", metavar="FILE", help="read GPUs from a nvidia-smi topo -m capture")
    inv.add_argument("--root", default="/", help="read sysfs from this tree (default /)")
    inv.add_argument("--json", action="store_true")
    inv.set_defaults(fn=_cmd_inventory)

    chk = sub.add_parser("checks", help="pre-deployment checklist and tuning matrix")
    chk.add_argument("--root", default="/", help="read from this tree instead of /")
    chk.add_argument("--baseline", metavar="FILE", help="firmware baseline JSON")
    chk.add_argument("--peer", action="append", metavar="HOST:PORT",
                     help="agent echo responder to measure latency to (repeatable)")
    chk.add_argument("--json", action="store_true")
    chk.set_defaults(fn=_cmd_checks)

    xid = sub.add_parser("xid", help="scan a kernel log for Xid, AER and KVM lines")
    xid.add_argument("--log", default="/var/log/kern.log", help="log file, or - for stdin")
    xid.add_argument("--state", metavar="FILE", help="cursor file: report only new lines")
    xid.add_argument("--json", action="store_true")
    xid.set_defaults(fn=_cmd_xid)

    ren = sub.add_parser("render-domain", help="print the libvirt domain XML for a spec")
    ren.add_argument("spec", metavar="SPEC.json")
    ren.add_argument("--domain-type", default="kvm", choices=["kvm", "qemu", "test"])
    ren.set_defaults(fn=_cmd_render)

    prep = sub.add_parser("prepare-host", help="start libvirtd/virtlogd, build the busybox "
                          "guest image, print this machine's inventory (make demo-host)")
    prep.add_argument("--images", default="/var/lib/coupler/images")
    prep.add_argument("--hugepages", type=int, default=0,
                      help="reserve this many 1 GiB hugepages and mount hugetlbfs")
    prep.set_defaults(fn=_cmd_prepare_host)

    run = sub.add_parser("run", help="run the host agent")
    run.set_defaults(fn=_cmd_run)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.fn(args))
    except (CliError, SpecError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:
        return 0
