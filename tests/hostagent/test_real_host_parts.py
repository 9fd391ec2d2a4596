"""The real-host parts that need no hypervisor: outcomes, pre-flight, images, the
bootable domain XML, reconnecting to libvirt, a heartbeat that outlives libvirt."""

import hashlib
import shutil
import subprocess
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from hostagent import guest, images, preflight
from hostagent.domain_xml import GUEST_CHANNEL, BootFiles, HostOptions, build_domain_xml
from hostagent.protocol import ImageSpec, ProvisionSpec, SpecError


def spec(**kw):
    base = {"job_id": "5", "name": "coupler-job-5", "vcpus": 1, "memory_mib": 1024,
            "cpus": [1], "numa_nodes": [0], "gpus": [], "hugepages": False}
    base.update(kw)
    return ProvisionSpec.from_dict(base)


# --- how a domain ended -------------------------------------------------------------------

@pytest.mark.parametrize(("state", "reason", "status", "succeeded", "why"), [
    ("shutoff", "shutdown", guest.GuestStatus(True, 0), True, "exit status 0"),
    ("shutoff", "shutdown", guest.GuestStatus(True, 3), False, "exit status 3"),
    ("shutoff", "shutdown", guest.GuestStatus(True, None), False, "without reporting"),
    ("shutoff", "crashed", guest.GuestStatus(True, None), False, "crashed"),
    ("shutoff", "crashed", guest.GuestStatus(True, 0), False, "crashed"),
    ("shutoff", "destroyed", None, False, "killed"),
    ("shutoff", "unknown", guest.GuestStatus(True, None), False, "host-shutdown"),
    ("crashed", "panicked", guest.GuestStatus(True, None), False, "panicked"),
    ("shutoff", "shutdown", None, True, "shut down"),  # the test driver: no channel
])
def test_a_shutoff_is_success_only_with_a_clean_poweroff_and_status_0(state, reason, status,
                                                                      succeeded, why):
    end = guest.outcome(state, reason, status)
    assert end.succeeded is succeeded and why in end.reason


@pytest.mark.parametrize("state", ["running", "paused", "blocked", "shutdown"])
def test_a_domain_still_alive_has_no_end(state):
    assert guest.outcome(state, "1", guest.GuestStatus(True, None)) is None


def test_the_guest_channel_is_read_line_by_line(tmp_path):
    log = tmp_path / "status.log"
    assert guest.read_guest_status(log) == guest.GuestStatus(False, None)
    log.write_bytes(b"noise\r\nCOUPLER up\r\nCOUPLER exit 42\n")
    assert guest.read_guest_status(log) == guest.GuestStatus(True, 42)


# --- pre-flight ---------------------------------------------------------------------------

@pytest.fixture
def sys_tree(tmp_path):
    (tmp_path / "devices/system/cpu").mkdir(parents=True)
    (tmp_path / "devices/system/cpu/online").write_text("0-1\n")
    node = tmp_path / "devices/system/node/node0/hugepages/hugepages-1048576kB"
    node.mkdir(parents=True)
    (node / "free_hugepages").write_text("2\n")
    (tmp_path / "devices/system/node/online").write_text("0\n")
    return tmp_path


HUGE_MOUNT = "none /dev/hugepages1G hugetlbfs rw,relatime,pagesize=1024M 0 0\n"


def test_pre_flight_names_what_the_host_lacks(sys_tree):
    preflight.check(spec(), sys=sys_tree, mounts_text="")
    with pytest.raises(preflight.PreflightError, match=r"CPUs \[4\] do not exist"):
        preflight.check(spec(cpus=[4]), sys=sys_tree, mounts_text="")
    with pytest.raises(preflight.PreflightError, match=r"NUMA node\(s\) \[1\] do not exist"):
        preflight.check(spec(numa_nodes=[1]), sys=sys_tree, mounts_text="")
    with pytest.raises(preflight.PreflightError, match="no hugetlbfs mount with pagesize=1G"):
        preflight.check(spec(hugepages=True), sys=sys_tree, mounts_text="")
    preflight.check(spec(hugepages=True, memory_mib=2048), sys=sys_tree, mounts_text=HUGE_MOUNT)
    with pytest.raises(preflight.PreflightError, match=r"3 free 1 GiB hugepages needed.*2 free"):
        preflight.check(spec(hugepages=True, memory_mib=3072), sys=sys_tree,
                        mounts_text=HUGE_MOUNT)
    with pytest.raises(preflight.PreflightError, match="requires KVM; this host runs qemu"):
        preflight.check(spec(require_kvm=True), sys=sys_tree, mounts_text="", domain_type="qemu")


def test_hugetlbfs_mounts_are_read_with_their_page_size():
    """/proc/mounts says pagesize=1024M for a 1 GiB hugetlbfs."""
    assert preflight.hugetlbfs_mounts(HUGE_MOUNT + "hugetlbfs /dev/hugepages hugetlbfs rw 0 0\n") \
        == {"/dev/hugepages1G": "1G", "/dev/hugepages": ""}
    sizes = preflight.hugetlbfs_mounts("none /h hugetlbfs rw,pagesize=1G 0 0\n")
    assert sizes == {"/h": "1G"}


# --- images -------------------------------------------------------------------------------

def test_an_image_is_refused_when_missing_or_its_checksum_differs(tmp_path):
    disk = tmp_path / "base.raw"
    image = ImageSpec(name="b", disk="base.raw", format="raw")
    with pytest.raises(images.ImageError, match="not on this host"):
        images.verify_image(tmp_path, image)
    disk.write_bytes(b"x" * 4096)
    good = hashlib.sha256(disk.read_bytes()).hexdigest()
    assert images.verify_image(tmp_path, ImageSpec(name="b", disk="base.raw", sha256=good))
    with pytest.raises(images.ImageError, match="checksum"):
        images.verify_image(tmp_path, ImageSpec(name="b", disk="base.raw", sha256="0" * 64))


def test_image_file_names_cannot_leave_the_images_directory():
    for bad in ("../etc/shadow", "/etc/passwd", "a/b"):
        with pytest.raises(SpecError, match="file name"):
            ImageSpec.from_dict({"name": "x", "disk": bad})


@pytest.mark.skipif(shutil.which("qemu-img") is None, reason="qemu-img not installed")
def test_each_job_gets_its_own_overlay_and_teardown_removes_it(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "images/base.raw").write_bytes(b"\0" * 1024 * 1024)
    image = ImageSpec(name="b", disk="base.raw", format="raw")
    files = images.boot_files(tmp_path / "state", tmp_path / "images", "coupler-job-5", image)
    info = subprocess.run(["qemu-img", "info", "--output=json", files.disk],
                          capture_output=True, text=True, check=True).stdout
    assert '"backing-filename"' in info and "base.raw" in info
    assert images.remove_job_files(tmp_path / "state", "coupler-job-5") is True
    assert not Path(files.disk).exists()


def test_the_console_tail_is_the_last_printable_lines(tmp_path):
    log = tmp_path / "console.log"
    log.write_bytes(b"".join(b"line %d\r\n" % i for i in range(30)) + b"\x1b[0mend\n")
    tail = images.read_tail(log, 3)
    assert tail == ["line 28", "line 29", "[0mend"]


# --- the bootable domain --------------------------------------------------------------------

def test_a_bootable_domain_has_disk_kernel_nic_console_channel_panic_and_partition(tmp_path):
    files = BootFiles(disk="/s/disk.qcow2", kernel="/i/k", initrd="/i/r", cmdline="quiet",
                      console_log="/s/console.log", channel_log="/s/status.log")
    host = HostOptions(domain_type="qemu", network="user", partition="/coupler",
                       memtune_hard_limit=False)
    xml = build_domain_xml(spec(cgroup={"memory_max": 3 * 2**30, "memory_high": 2 * 2**30}),
                           files=files, host=host)
    dom = ET.fromstring(xml)
    assert dom.get("type") == "qemu" and dom.find("cpu") is None
    assert dom.find("devices/disk/driver").attrib == {"name": "qemu", "type": "qcow2",
                                                      "cache": "none", "io": "native",
                                                      "discard": "unmap"}
    assert dom.findtext("os/kernel") == "/i/k" and dom.findtext("os/cmdline") == "console=ttyS0 quiet"
    assert dom.find("os/boot") is None
    assert dom.find("devices/interface[@type='user']/model").get("type") == "virtio"
    assert dom.find("devices/serial[@type='file']/source").get("path") == "/s/console.log"
    assert dom.find("devices/channel/target").get("name") == GUEST_CHANNEL
    assert dom.find("devices/panic").get("model") == "isa"
    assert dom.findtext("resource/partition") == "/coupler"
    assert dom.find("memtune/hard_limit") is None and dom.find("memtune/soft_limit") is not None
    if shutil.which("virt-xml-validate"):
        path = tmp_path / "d.xml"
        path.write_text(xml)
        subprocess.run(["virt-xml-validate", str(path), "domain"], check=True,
                       capture_output=True)


def test_cpu_mode_and_model_are_the_operators_choice():
    dom = ET.fromstring(build_domain_xml(spec(), host=HostOptions(domain_type="kvm")))
    assert dom.find("cpu").get("mode") == "host-passthrough"
    dom = ET.fromstring(build_domain_xml(spec(), host=HostOptions(domain_type="kvm",
                                                                 cpu_model="Skylake-Server")))
    assert dom.find("cpu").get("mode") == "custom" and dom.findtext("cpu/model") == "Skylake-Server"
    with pytest.raises(SpecError, match="network"):
        build_domain_xml(spec(), files=BootFiles(disk="/d"), host=HostOptions(network="wifi"))


# --- libvirt connection and heartbeat ---------------------------------------------------------

def test_a_closed_libvirt_connection_is_reopened():
    pytest.importorskip("libvirt")
    from hostagent import runtime

    runtime.reset()
    try:
        first = runtime.connection("reconnect-host")
        first.close()  # what a libvirtd restart does to every client
        assert runtime.list_domains("reconnect-host") == []
        assert runtime.connection("reconnect-host") is not first
    finally:
        runtime.reset()


def test_the_heartbeat_outlives_an_unreachable_libvirt():
    pytest.importorskip("libvirt")
    from hostagent import runtime
    from hostagent.agentconfig import AgentConfig

    runtime.reset()
    try:
        runtime.configure(AgentConfig.from_dict({"hosts": [
            {"name": "gone", "libvirt_uri": "qemu+tcp://127.0.0.1:9/system",
             "hypervisor": "qemu"}]}))
        body = runtime.heartbeat_body("gone")
        assert body["healthy"] is False and "127.0.0.1:9" in body["libvirt_error"]
        assert "domain_states" not in body
        posted = []
        loop = runtime.HeartbeatLoop(runtime.AgentConfig.from_dict(
            {"hosts": [{"name": "gone", "libvirt_uri": "qemu+tcp://127.0.0.1:9/system",
                        "hypervisor": "qemu"}]}),
            post=lambda url, token, body: posted.append(body) or {})
        loop.beat_once()
        assert posted[-1]["libvirt_error"]
    finally:
        runtime.reset()
