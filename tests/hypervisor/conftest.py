"""The real hypervisor: libvirtd + QEMU on this machine (qemu:///system, TCG where
KVM is not usable). Every test here is marked ``hypervisor`` and skips, with the
reason, where QEMU, libvirtd, a kernel or busybox are missing or not startable."""

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path("/var/lib/coupler/test")  # QEMU (user libvirt-qemu) must reach the files


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/hypervisor" in str(item.fspath):
            item.add_marker(pytest.mark.hypervisor)


def _why_not() -> str:
    if os.geteuid() != 0:
        return "the hypervisor tests run as root (qemu:///system)"
    for exe in ("qemu-system-x86_64", "qemu-img", "cpio", "modinfo"):
        if shutil.which(exe) is None and not Path(f"/usr/sbin/{exe}").exists():
            return f"{exe} is not installed (make hypervisor-deps)"
    if not Path("/bin/busybox").exists():
        return "busybox-static is not installed"
    if not list(Path("/boot").glob("vmlinuz-*")):
        return "no kernel in /boot (linux-image-amd64)"
    try:
        import libvirt  # noqa: F401
    except ImportError:
        return "libvirt-python is not installed"
    from hostagent.realhost import DaemonError, ensure_daemons

    try:
        ensure_daemons()
    except DaemonError as exc:
        return str(exc)
    return ""


@pytest.fixture(scope="session")
def real_host():
    """This machine's agent-side setup: daemons up, the busybox image built, a
    state directory; yields the directories and removes them at the end."""
    why = _why_not()
    if why:
        pytest.skip(f"no real hypervisor here: {why}")
    from hostagent.guestimage import build_busybox_image

    run = ROOT / str(os.getpid())
    images = run / "images"
    image = build_busybox_image(images)
    for d in (ROOT, run):
        d.chmod(0o755)
    yield {"images_dir": str(images), "state_dir": str(run / "state"), "image": image}
    shutil.rmtree(run, ignore_errors=True)
