"""Boot images on the host: checking a catalogue image, one overlay per job.

A job's VM never writes to the catalogue image: the agent gives it a qcow2
copy-on-write overlay (``qemu-img create -b``) in the job's own directory
under the agent's state directory, with the files QEMU writes the serial
console and the guest channel to.  ``remove_job_files`` removes that
directory at teardown.  File names come from ``ImageSpec`` (no slashes), so a
job cannot point the agent at a file outside the images directory.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from hostagent.domain_xml import BootFiles
from hostagent.protocol import ImageSpec, validate_domain_name

__all__ = ["ImageError", "JobFiles", "boot_files", "create_overlay", "job_dir", "read_tail",
           "remove_job_files", "sha256_of", "verify_image"]

CONSOLE_LOG = "console.log"
CHANNEL_LOG = "status.log"
OVERLAY = "disk.qcow2"


class ImageError(RuntimeError):
    """An image is missing, corrupt or cannot be copied; the text names the file."""


@dataclass(frozen=True)
class JobFiles:
    directory: Path
    disk: Path
    console_log: Path
    channel_log: Path


def job_dir(state_dir: Path | str, name: str) -> Path:
    return Path(state_dir) / "jobs" / validate_domain_name(name)


def job_files(state_dir: Path | str, name: str) -> JobFiles:
    d = job_dir(state_dir, name)
    return JobFiles(directory=d, disk=d / OVERLAY, console_log=d / CONSOLE_LOG,
                    channel_log=d / CHANNEL_LOG)


# (path, size, mtime_ns) -> digest: hashing a multi-GiB image once per agent, not per job.
_digests: dict[tuple[str, int, int], str] = {}


def sha256_of(path: Path) -> str:
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _digests:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        _digests[key] = h.hexdigest()
    return _digests[key]


def verify_image(images_dir: Path | str, image: ImageSpec) -> dict[str, Path]:
    """The image's files on this host, checked: present, and the disk's checksum
    right. Raises ImageError naming what is wrong."""
    root = Path(images_dir)
    out: dict[str, Path] = {}
    for key in ("disk", "kernel", "initrd"):
        name = getattr(image, key)
        if not name:
            continue
        path = root / name
        if not path.is_file():
            raise ImageError(f"image {image.name}: {key} {path} is not on this host")
        out[key] = path
    if image.sha256:
        have = sha256_of(out["disk"])
        if have != image.sha256:
            raise ImageError(f"image {image.name}: checksum of {out['disk']} is sha256:{have}, "
                             f"the catalogue says sha256:{image.sha256}")
    return out


def _qemu_img(*args: str) -> str:
    exe = shutil.which("qemu-img")
    if exe is None:
        raise ImageError("qemu-img is not installed (apt-get install qemu-utils)")
    proc = subprocess.run([exe, *args], capture_output=True, text=True, timeout=120,
                          check=False)
    if proc.returncode != 0:
        raise ImageError(f"qemu-img {args[0]}: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout


def create_overlay(base: Path, base_format: str, overlay: Path, *, size_gib: int = 0) -> Path:
    """A qcow2 overlay on ``base`` (idempotent: an existing overlay on the same base is
    kept, so a redelivered provision finds its disk)."""
    overlay.parent.mkdir(parents=True, exist_ok=True)
    if overlay.exists():
        return overlay
    tmp = overlay.with_name(overlay.name + ".tmp")
    args = ["create", "-q", "-f", "qcow2", "-F", base_format, "-b", str(base.resolve()), str(tmp)]
    if size_gib:
        args.append(f"{size_gib}G")
    _qemu_img(*args)
    os.replace(tmp, overlay)
    return overlay


def boot_files(state_dir: Path | str, images_dir: Path | str, name: str,
               image: ImageSpec | None, *, fresh: bool = True) -> BootFiles:
    """Prepare the job's directory (overlay, empty logs) and return the domain's paths.
    Without an image: no disk, only the console and channel files. ``fresh=False``
    (the domain already runs: a redelivered provision) keeps the logs."""
    files = job_files(state_dir, name)
    files.directory.mkdir(parents=True, exist_ok=True)
    # QEMU (user libvirt-qemu on Debian) opens these through libvirt, which labels them;
    # the directory must be traversable.
    files.directory.chmod(0o755)
    for log in (files.console_log, files.channel_log):
        if fresh or not log.exists():
            log.write_bytes(b"")  # a fresh attempt starts with empty logs
    if image is None:
        return BootFiles(console_log=str(files.console_log), channel_log=str(files.channel_log))
    found = verify_image(images_dir, image)
    create_overlay(found["disk"], image.format, files.disk, size_gib=image.min_disk_gib)
    return BootFiles(disk=str(files.disk), disk_format="qcow2",
                     kernel=str(found.get("kernel", "")), initrd=str(found.get("initrd", "")),
                     cmdline=image.cmdline, console_log=str(files.console_log),
                     channel_log=str(files.channel_log))


def remove_job_files(state_dir: Path | str, name: str) -> bool:
    d = job_dir(state_dir, name)
    if not d.exists():
        return False
    shutil.rmtree(d)
    return True


def read_tail(path: Path | str, lines: int = 20, max_bytes: int = 16384) -> list[str]:
    """The last ``lines`` lines of a (console) log, decoded leniently, without
    control characters."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            data = fh.read()
    except OSError:
        return []
    text = data.decode("utf-8", "replace").replace("\r", "")
    clean = ["".join(c for c in ln if c.isprintable() or c == "\t") for ln in text.split("\n")]
    while clean and not clean[-1]:
        clean.pop()
    return clean[-lines:]
