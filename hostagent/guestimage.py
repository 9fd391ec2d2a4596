"""A minimal bootable image built on this host: the Debian kernel + a busybox initramfs.

For the real-host demo (``make demo-host``) and the hypervisor tests: no download,
only Debian's ``linux-image-amd64`` and ``busybox-static``.  The guest's ``/init``
speaks Coupler's guest protocol (``hostagent.guest``): it writes ``COUPLER up``
and, when its workload ends, ``COUPLER exit <status>`` to the virtio-serial port
named ``org.coupler.status.0`` (and to the serial console), then powers off.

The workload is chosen on the kernel command line (tests and demos):
``coupler.sleep=S`` runs ``sleep S``, ``coupler.exit=N`` exits with N,
``coupler.panic=1`` panics the kernel (sysrq ``c``).  The image's disk is a small
raw file the guest checks it can read (``/dev/vda``).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

from hostagent.domain_xml import GUEST_CHANNEL

__all__ = ["BUSYBOX", "GuestImage", "build_busybox_image", "find_kernel"]

BUSYBOX = "/bin/busybox"
# virtio-serial (guest channel), virtio disk, pvpanic on ISA (ACPI QEMU0001).
MODULES = ("virtio_pci", "virtio_console", "virtio_blk", "pvpanic-mmio")

INIT = f"""#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /lib/modules/order); do insmod /lib/modules/$m.ko 2>/dev/null; done
PORT=""
for i in 1 2 3 4 5 6 7 8 9 10; do
  for p in /sys/class/virtio-ports/*; do
    [ -e "$p/name" ] && [ "$(cat $p/name)" = "{GUEST_CHANNEL}" ] && PORT=/dev/${{p##*/}}
  done
  [ -n "$PORT" ] && [ -e "$PORT" ] && break
  sleep 0.2
done
say() {{
  echo "COUPLER $*"
  [ -n "$PORT" ] && echo "COUPLER $*" > "$PORT"
}}
ARGS=$(cat /proc/cmdline)
arg() {{ for w in $ARGS; do case "$w" in "$1"=*) echo "${{w#*=}}";; esac; done; }}
[ -b /dev/vda ] && dd if=/dev/vda of=/dev/null bs=4096 count=1 2>/dev/null && echo "disk /dev/vda readable"
say up
SLEEP=$(arg coupler.sleep)
STATUS=$(arg coupler.exit)
[ -n "$SLEEP" ] && echo "workload: sleep $SLEEP" && sleep "$SLEEP"
if [ "$(arg coupler.panic)" = 1 ]; then
  echo "workload: kernel panic"
  echo 1 > /proc/sys/kernel/sysrq
  echo c > /proc/sysrq-trigger
fi
say "exit ${{STATUS:-0}}"
sync
poweroff -f
"""


class GuestImage:
    """Where the built files are (file names inside ``images_dir``)."""

    def __init__(self, images_dir: Path, prefix: str) -> None:
        self.images_dir = images_dir
        self.kernel = f"{prefix}.vmlinuz"
        self.initrd = f"{prefix}.initrd"
        self.disk = f"{prefix}.raw"

    def sha256(self) -> str:
        h = hashlib.sha256()
        h.update((self.images_dir / self.disk).read_bytes())
        return h.hexdigest()


def find_kernel(boot: Path = Path("/boot")) -> tuple[Path, str]:
    """The newest Debian kernel in /boot and its release (``6.1.0-57-amd64``)."""
    kernels = sorted(boot.glob("vmlinuz-*"))
    if not kernels:
        raise FileNotFoundError("no kernel in /boot (apt-get install linux-image-amd64)")
    kernel = kernels[-1]
    return kernel, kernel.name.removeprefix("vmlinuz-")


def _module_file(release: str, name: str) -> Path | None:
    base = Path("/lib/modules") / release / "kernel"
    for candidate in (name, name.replace("-", "_"), name.replace("_", "-")):
        hits = list(base.rglob(f"{candidate}.ko"))
        if hits:
            return hits[0]
    return None


def _modules_in_load_order(release: str) -> list[Path]:
    """MODULES and what they depend on (``modinfo -F depends``), dependencies first."""
    order: list[Path] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        path = _module_file(release, name)
        if path is None or path.name in seen:
            return  # built into the kernel
        seen.add(path.name)
        deps = subprocess.run(["modinfo", "-F", "depends", str(path)],
                              capture_output=True, text=True, check=True).stdout.strip()
        for dep in filter(None, deps.split(",")):
            visit(dep)
        order.append(path)

    for name in MODULES:
        visit(name)
    return order


def build_busybox_image(images_dir: Path | str, prefix: str = "coupler-busybox") -> GuestImage:
    """Build (or rebuild) kernel, initramfs and disk into ``images_dir``."""
    if platform.machine() != "x86_64":
        raise RuntimeError("the busybox guest image is built for x86_64 hosts")
    if not Path(BUSYBOX).exists():
        raise FileNotFoundError(f"{BUSYBOX} missing (apt-get install busybox-static)")
    images = Path(images_dir)
    images.mkdir(parents=True, exist_ok=True)
    out = GuestImage(images, prefix)
    kernel, release = find_kernel()
    shutil.copyfile(kernel, images / out.kernel)
    with tempfile.TemporaryDirectory(prefix="coupler-initramfs-") as tmp:
        root = Path(tmp)
        for d in ("bin", "proc", "sys", "dev", "lib/modules"):
            (root / d).mkdir(parents=True)
        shutil.copyfile(BUSYBOX, root / "bin/busybox")
        (root / "bin/busybox").chmod(0o755)
        (root / "bin/sh").symlink_to("busybox")
        names = []
        for module in _modules_in_load_order(release):
            shutil.copyfile(module, root / "lib/modules" / module.name)
            names.append(module.name.removesuffix(".ko"))
        (root / "lib/modules/order").write_text("\n".join(names) + "\n")
        (root / "init").write_text(INIT)
        (root / "init").chmod(0o755)
        files = subprocess.run(["find", "."], cwd=root, capture_output=True, check=True,
                               ).stdout
        archive = subprocess.run(["cpio", "-o", "-H", "newc", "--quiet"], cwd=root,
                                 input=files, capture_output=True, check=True).stdout
    tmp_initrd = images / (out.initrd + ".tmp")
    tmp_initrd.write_bytes(gzip.compress(archive, compresslevel=6, mtime=0))
    os.replace(tmp_initrd, images / out.initrd)
    disk = images / out.disk
    if not disk.exists():
        with open(disk, "wb") as fh:
            fh.write(b"COUPLER-DISK\n".ljust(4096, b"\0"))
            fh.truncate(16 * 1024 * 1024)
    return out
