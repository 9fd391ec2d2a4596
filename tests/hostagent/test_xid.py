import json
import os

import pytest

from hostagent.protocol.faults import classify_xid, load_catalog
from hostagent.xid import XidScanner, parse_line, scan_text

from .conftest import FIXTURES

SAMPLES = (FIXTURES / "xid" / "kernel_log_samples.txt").read_text()


def test_every_sample_xid_line_is_found():
    events = scan_text(SAMPLES)
    xid_lines = [ln for ln in SAMPLES.splitlines() if "NVRM: Xid" in ln]
    assert len(xid_lines) == len(events) == 9
    assert [e.xid for e in events if e.kind == "xid"] == [79, 13, 13, 13, 109, 45, 45, 32, 31]


def test_journalctl_line():
    e = parse_line("May 18 19:02:39 kernel: NVRM: Xid (PCI:0000:2b:00): 79, GPU has fallen off the bus.")
    assert (e.xid, e.pci, e.timestamp) == (79, "0000:2b:00", "May 18 19:02:39")
    assert e.fault == "hardware" and e.cordon is True
    assert e.message == "GPU has fallen off the bus."
    assert "hardware attention" in e.action


def test_dmesg_ctime_line_with_unknown_pid_and_name():
    e = parse_line("[Fri Aug 30 11:43:09 2024] NVRM: Xid (PCI:0000:cb:00): 13, pid='<unknown>', "
                   "name=<unknown>, Graphics SM Warp Exception on (GPC 7, TPC 7, SM 0)")
    assert e.timestamp == "Fri Aug 30 11:43:09 2024"
    assert e.pid is None and e.process is None
    assert e.message.startswith("Graphics SM Warp Exception")
    assert e.fault == "application" and e.cordon is False


def test_pid_and_process_are_extracted():
    e = parse_line("[Fri Aug 30 11:43:14 2024] NVRM: Xid (PCI:0000:cb:00): 109, pid=1797828, "
                   "name=pt_main_thread, Ch 00000008, errorString CTX SWITCH TIMEOUT, Info 0x58005")
    assert (e.pid, e.process) == (1797828, "pt_main_thread")
    assert e.message.startswith("Ch 00000008")
    assert e.fault == "unknown"


def test_bare_and_uptime_lines():
    bare = parse_line("kernel: NVRM: Xid (PCI:0000:dc:00): 45, pid=1818990, name=python3, "
                      "Ch 00000001 caused by previous Xid 149")
    assert bare.timestamp is None and bare.xid == 45 and bare.fault == "application"
    up = parse_line("[24128.828315] NVRM: Xid (PCI:0000:01:00): 32, Channel ID 00000000 intr 00004000")
    assert up.timestamp == "24128.828315" and up.pid is None and up.fault == "driver"
    assert up.message == "Channel ID 00000000 intr 00004000"


def test_other_pci_domains_and_iso_timestamps():
    e = parse_line("2024-05-01T10:00:00.123456+00:00 gpu07 kernel: NVRM: Xid (PCI:10000:3B:00): "
                   "48, pid=77, name=train, An uncorrectable double bit error")
    assert e.pci == "10000:3b:00" and e.timestamp.startswith("2024-05-01T10:00:00")
    assert e.cordon and e.name == "Double Bit ECC Error"


def test_aer_lines():
    corrected = parse_line("[ 512.000001] pcieport 0000:00:03.1: AER: Corrected error received: "
                           "0000:3b:00.0")
    assert corrected.kind == "aer" and corrected.pci == "0000:3b:00.0" and not corrected.cordon
    fatal = parse_line("Jun  2 03:04:05 host kernel: pcieport 0000:40:01.1: AER: Uncorrected "
                       "(Fatal) error received: 0000:41:00.0")
    assert fatal.cordon and fatal.pci == "0000:41:00.0" and fatal.timestamp == "Jun  2 03:04:05"
    nonfatal = parse_line("nvidia 0000:3b:00.0: AER: PCIe Bus Error: severity=Uncorrected "
                          "(Non-Fatal), type=Transaction Layer, (Requester ID)")
    assert nonfatal.pci == "0000:3b:00.0" and not nonfatal.cordon


def test_kvm_lines():
    e = parse_line("[  10.1] kvm: disabled by bios")
    assert e.kind == "kvm" and e.fault == "hardware"
    e = parse_line("kvm [4242]: vcpu0, guest rIP: 0xffffffff8106c5e2 unhandled rdmsr: 0x140")
    assert e.kind == "kvm" and e.fault == "unknown"
    assert parse_line("kernel: NVRM: GPU at PCI:0000:2b:00: GPU-0b11d014") is None
    assert parse_line("systemd[1]: Started Session 3.") is None


def test_catalog_has_source_and_classification():
    catalog = load_catalog()
    assert {13, 31, 48, 63, 64, 74, 79, 94, 95}.issubset(catalog)
    assert classify_xid(74)[0] == "hardware"
    assert classify_xid(31)[0] == "application"
    fault, _, action, _ = classify_xid(999)
    assert fault == "unknown" and "Not in the Xid catalog" in action


def test_scanner_reports_only_new_lines(tmp_path):
    log = tmp_path / "kern.log"
    state = tmp_path / "state" / "xid.json"
    log.write_text(SAMPLES)
    scanner = XidScanner(log, state, host="h1")
    assert len(scanner.scan()) == 9
    assert scanner.scan() == []
    with open(log, "a") as fh:
        fh.write("[99.1] NVRM: Xid (PCI:0000:07:00): 94, pid=1, name=x, Contained\n")
        fh.write("[99.2] NVRM: Xid (PCI:0000:07:00): 95, half a li")
    new = XidScanner(log, state, host="h1").scan()  # a fresh object reads the saved cursor
    assert [e.xid for e in new] == [94] and new[0].host == "h1"
    with open(log, "a") as fh:
        fh.write("ne\n")
    assert [e.xid for e in scanner.scan()] == [95]
    assert json.loads(state.read_text())["offset"] == log.stat().st_size


def test_scanner_handles_truncation_and_rotation(tmp_path):
    log = tmp_path / "kern.log"
    state = tmp_path / "xid.json"
    log.write_text(SAMPLES)
    scanner = XidScanner(log, state)
    scanner.scan()
    log.write_text("[1.0] NVRM: Xid (PCI:0000:07:00): 79, GPU has fallen off the bus.\n")
    assert [e.xid for e in scanner.scan()] == [79]  # truncated in place
    os.rename(log, tmp_path / "kern.log.1")
    log.write_text("[2.0] NVRM: Xid (PCI:0000:07:00): 43, pid=3, name=y, Ch 1\n" * 3)
    assert [e.xid for e in scanner.scan()] == [43, 43, 43]  # new inode
    state.write_text("{not json")
    assert len(scanner.scan()) == 3  # a damaged state file starts over, never crashes


def test_missing_log_is_an_os_error(tmp_path):
    with pytest.raises(OSError):
        XidScanner(tmp_path / "nope", tmp_path / "s.json").scan()


@pytest.mark.parametrize("line", [
    "[    0.912345] kvm: Nested Virtualization enabled",
    "[    0.912345] kvm: Nested Paging enabled",
    "[    1.000000] kvm_amd: TSC scaling supported",
    "[    1.000000] kvm_intel: Using Hyper-V Enlightened VMCS",
    "[   99.000000] kvm: vcpu 0: requested 128 ns lapic timer period limited to 200000 ns",
])
def test_benign_kvm_boot_lines_are_not_events(line):
    assert parse_line(line) is None


def test_the_kernel_log_source_falls_back_to_the_journal_or_kmsg(tmp_path):
    from hostagent.xid import kernel_log_source

    assert kernel_log_source("/x/kern.log", root=tmp_path) == "/x/kern.log"
    assert kernel_log_source(root=tmp_path) in ("journal", "kmsg")  # Debian 12: no kern.log
    (tmp_path / "var/log").mkdir(parents=True)
    (tmp_path / "var/log/kern.log").write_text("")
    assert kernel_log_source(root=tmp_path) == str(tmp_path / "var/log/kern.log")


def test_kmsg_is_read_incrementally(tmp_path):
    """/dev/kmsg records on this machine: read once, then only new ones (cursor)."""
    import os

    from hostagent.xid import read_kernel_messages

    if not os.access("/dev/kmsg", os.R_OK):
        pytest.skip("/dev/kmsg not readable here")
    lines, cursor = read_kernel_messages("kmsg")
    assert cursor and int(cursor) >= 0
    again, cursor2 = read_kernel_messages("kmsg", cursor)
    assert int(cursor2) >= int(cursor) and len(again) <= len(lines) + 5
