"""Kernel-log scanner: NVRM Xid lines, PCIe AER and KVM errors.

``parse_line`` understands the prefixes the same kernel line gets from
``dmesg`` (``[24128.828315]``), ``dmesg --ctime`` (``[Fri Aug 30 11:43:09
2024]``), syslog/journalctl (``May 18 19:02:39 host kernel:``), ISO
timestamps, and bare lines.  ``XidScanner`` reads a log file incrementally: it
remembers the file's inode and the offset it reached in a small JSON state
file, so a re-scan reports only new lines, and starts over when the file was
rotated or truncated.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

from hostagent.protocol import XidEvent
from hostagent.protocol.faults import (
    AER_CORRECTED_ACTION,
    AER_FATAL_ACTION,
    AER_NAME,
    AER_NON_FATAL_ACTION,
    KVM_DISABLED_ACTION,
    KVM_OTHER_ACTION,
    classify_xid,
)

# The Xid table and fault sets are the protocol's (``hostagent.protocol.faults``).
__all__ = ["XidScanner", "kernel_log_source", "parse_line", "read_kernel_messages", "scan_text"]

_TIMESTAMP_RE = re.compile(
    r"^\s*(?:"
    r"\[\s*(?P<uptime>\d+\.\d+)\]"  # dmesg
    r"|\[(?P<ctime>[A-Z][a-z]{2} [A-Z][a-z]{2} +\d+ \d\d:\d\d:\d\d \d{4})\]"  # dmesg --ctime
    r"|(?P<iso>\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?)"
    r"|(?P<syslog>[A-Z][a-z]{2} +\d+ \d\d:\d\d:\d\d)"  # syslog / journalctl
    r")"
)
_PCI = r"[0-9a-fA-F]{4,8}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}(?:\.[0-7])?"
_XID_RE = re.compile(rf"NVRM: Xid \((?:PCI:)?(?P<pci>{_PCI})\): (?P<xid>\d+)(?:,\s*(?P<rest>.*))?$")
_PID_NAME_RE = re.compile(r"^pid=(?P<q>'?)(?P<pid>[^,']*)(?P=q),\s*name=(?P<name>[^,]*),?\s*(?P<msg>.*)$")
_AER_RE = re.compile(rf"(?P<dev>{_PCI}): AER: (?P<msg>.*)$")
_AER_SOURCE_RE = re.compile(rf"error received: (?P<src>{_PCI})")
_KVM_RE = re.compile(r"(?:^|[\s:])(?P<mod>kvm(?:_intel|_amd)?)(?: \[\d+\])?: (?P<msg>.*)$")


# KVM lines a healthy host prints at boot or under normal guests: not events.
_KVM_BENIGN = re.compile(
    r"(nested (virtualization|paging)|enabled$|supported$|^using |tsc scaling|"
    r"lapic timer period limited|already loaded the other module|"
    r"virtual apic|pml enabled|\bept\b|hardware virtualization)")


def _timestamp(line: str) -> str | None:
    m = _TIMESTAMP_RE.match(line)
    if not m:
        return None
    return next(v for v in m.groupdict().values() if v is not None)


def _norm_pci(pci: str) -> str:
    return pci.lower()


def parse_line(line: str, *, host: str = "") -> XidEvent | None:
    """One kernel-log line as an event, or None when it is neither Xid, AER nor KVM."""
    line = line.rstrip("\r\n")
    if m := _XID_RE.search(line):
        xid = int(m.group("xid"))
        rest = (m.group("rest") or "").strip()
        pid: int | None = None
        process: str | None = None
        message = rest
        if pm := _PID_NAME_RE.match(rest):
            pid = int(pm.group("pid")) if pm.group("pid").isdigit() else None
            name = pm.group("name").strip()
            process = None if name in ("", "<unknown>") else name
            message = pm.group("msg").strip()
        fault, name, action, cordon = classify_xid(xid)
        return XidEvent(kind="xid", line=line, message=message, xid=xid,
                        pci=_norm_pci(m.group("pci")), pid=pid, process=process,
                        timestamp=_timestamp(line), fault=fault, name=name, action=action,
                        host=host, cordon=cordon)
    if m := _AER_RE.search(line):
        message = m.group("msg").strip()
        src = _AER_SOURCE_RE.search(message)
        pci = _norm_pci(src.group("src") if src else m.group("dev"))
        fatal = "Fatal" in message and "Non-Fatal" not in message
        if "Corrected" in message and "Uncorrected" not in message:
            action = AER_CORRECTED_ACTION
        elif fatal:
            action = AER_FATAL_ACTION
        else:
            action = AER_NON_FATAL_ACTION
        return XidEvent(kind="aer", line=line, message=message, pci=pci,
                        timestamp=_timestamp(line), fault="hardware", name=AER_NAME,
                        action=action, host=host, cordon=fatal)
    if (m := _KVM_RE.search(line)) and "NVRM" not in line:
        message = m.group("msg").strip()
        lowered = message.lower()
        if _KVM_BENIGN.search(lowered):
            return None  # module load / capability lines every boot prints
        if "disabled by bios" in lowered or "not supported" in lowered:
            fault, action = "hardware", KVM_DISABLED_ACTION
        else:
            fault, action = "unknown", KVM_OTHER_ACTION
        return XidEvent(kind="kvm", line=line, message=message, timestamp=_timestamp(line),
                        fault=fault, name=m.group("mod"), action=action, host=host,
                        cordon=fault == "hardware")
    return None


def kernel_log_source(configured: str = "", *, root: Path = Path("/")) -> str:
    """Where to read the kernel log on this host: the configured file, else
    ``/var/log/kern.log`` if present (rsyslog), else ``journal`` (``journalctl -k``:
    Debian 12 without rsyslog), else ``kmsg`` (``/dev/kmsg``)."""
    if configured:
        return configured
    if (root / "var/log/kern.log").exists():
        return str(root / "var/log/kern.log")
    if shutil.which("journalctl"):
        return "journal"
    return "kmsg"


def read_kernel_messages(source: str, cursor: str = "") -> tuple[list[str], str]:
    """New kernel-log lines from ``journal`` or ``kmsg`` since ``cursor``; returns the
    lines and the cursor to pass next time (the journal's cursor, or the last kmsg
    sequence number)."""
    if source == "journal":
        args = ["journalctl", "-k", "-o", "short-iso", "--no-pager", "--show-cursor", "-q"]
        args += [f"--after-cursor={cursor}"] if cursor else ["-b"]
        proc = subprocess.run(args, capture_output=True, text=True, timeout=30,
                              check=False)
        lines, new = [], cursor
        for line in proc.stdout.splitlines():
            if line.startswith("-- cursor: "):
                new = line.removeprefix("-- cursor: ").strip()
            elif line and not line.startswith("-- "):
                lines.append(line)
        return lines, new
    if source == "kmsg":
        last = int(cursor or -1)
        lines = []
        try:
            fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
        except OSError:
            return [], cursor
        try:
            while True:
                try:
                    record = os.read(fd, 8192).decode("utf-8", "replace")
                except BlockingIOError:
                    break
                except OSError:  # EPIPE: records overwritten meanwhile; keep reading
                    continue
                head, _, text = record.partition(";")
                fields = head.split(",")
                seq = int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else 0
                if seq <= last:
                    continue
                last = seq
                usec = int(fields[2]) if len(fields) > 2 and fields[2].isdigit() else 0
                lines.append(f"[{usec / 1e6:12.6f}] {text.splitlines()[0] if text else ''}")
        finally:
            os.close(fd)
        return lines, str(last)
    raise ValueError(f"kernel log source {source!r} is not journal, kmsg or a file")


def scan_text(text: str, *, host: str = "") -> list[XidEvent]:
    """Every event in a block of kernel-log text, in order."""
    events = []
    for line in text.splitlines():
        event = parse_line(line, host=host)
        if event is not None:
            events.append(event)
    return events


class XidScanner:
    """Incremental scanner over one log file, with its cursor kept in ``state_path``."""

    def __init__(self, log_path: Path | str, state_path: Path | str, *, host: str = "") -> None:
        self.log_path = Path(log_path)
        self.state_path = Path(state_path)
        self.host = host

    def _load_state(self) -> dict[str, int]:
        try:
            state = json.loads(self.state_path.read_text())
            return {"inode": int(state["inode"]), "offset": int(state["offset"])}
        except (OSError, ValueError, KeyError, TypeError):
            return {"inode": -1, "offset": 0}  # missing or damaged state: start over

    def _save_state(self, inode: int, offset: int) -> None:
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_name(self.state_path.name + ".tmp")
        tmp.write_text(json.dumps({"inode": inode, "offset": offset}))
        os.replace(tmp, self.state_path)  # a crash never leaves half a state file

    def scan(self) -> list[XidEvent]:
        """Events in the lines added since the last scan (all lines the first time)."""
        if str(self.log_path) in ("journal", "kmsg"):
            return self._scan_stream(str(self.log_path))
        state = self._load_state()
        with open(self.log_path, "rb") as fh:
            st = os.fstat(fh.fileno())
            offset = state["offset"]
            if st.st_ino != state["inode"] or st.st_size < offset:
                offset = 0  # rotated (new inode) or truncated: read the new file from the start
            fh.seek(offset)
            data = fh.read()
        end = data.rfind(b"\n")
        complete = data[: end + 1] if end >= 0 else b""  # a half-written last line waits
        events = scan_text(complete.decode("utf-8", errors="replace"), host=self.host)
        self._save_state(st.st_ino, offset + len(complete))
        return events

    def _scan_stream(self, source: str) -> list[XidEvent]:
        try:
            cursor = str(json.loads(self.state_path.read_text()).get("cursor", ""))
        except (OSError, ValueError, AttributeError):
            cursor = ""
        lines, cursor = read_kernel_messages(source, cursor)
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_name(self.state_path.name + ".tmp")
        tmp.write_text(json.dumps({"cursor": cursor}))
        os.replace(tmp, self.state_path)
        return scan_text("\n".join(lines), host=self.host)
