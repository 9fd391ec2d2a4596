"""The kernel's and libvirt's CPU-list notation (``"0-3,8-11"``), both ways.

Used for ``cpuset.cpus``/``cpuset.mems``, sysfs ``cpulist``/``online`` files,
``nvidia-smi topo -m``'s CPU affinity column, libvirt's ``cpuset`` attributes
and the console's core ranges. One parser, one formatter.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["CpuListError", "format_cpulist", "parse_cpulist"]

# One item: N, N-M, or (libvirt only) ^N / ^N-M to exclude.
_ITEM_RE = re.compile(r"^(\^)?(\d+)(?:-(\d+))?$")


class CpuListError(ValueError):
    """The text is not a CPU list; the message quotes it."""


def parse_cpulist(text: str | None, *, allow_exclusions: bool = False) -> frozenset[int]:
    """``"48-51,60"`` -> ``frozenset({48, 49, 50, 51, 60})``.

    Whitespace and empty items are ignored, so ``""``, ``"\\n"`` and ``None`` are
    the empty set, as is ``"N/A"`` (``nvidia-smi``'s "no affinity").
    ``allow_exclusions`` accepts libvirt's ``^N`` items, removed from the rest.
    A descending range or any other text raises :class:`CpuListError`.
    """
    text = (text or "").strip()
    if text == "N/A":
        return frozenset()
    cores: set[int] = set()
    excluded: set[int] = set()
    for raw in text.replace(" ", "").split(","):
        if not raw:
            continue
        m = _ITEM_RE.match(raw)
        if m is None or (m.group(1) and not allow_exclusions):
            raise CpuListError(f"not a CPU list: {text!r}")
        first = int(m.group(2))
        last = int(m.group(3)) if m.group(3) is not None else first
        if last < first:
            raise CpuListError(f"descending CPU range {raw!r} in {text!r}")
        (excluded if m.group(1) else cores).update(range(first, last + 1))
    return frozenset(cores - excluded)


def format_cpulist(values: Iterable[int]) -> str:
    """``[0, 1, 2, 7]`` -> ``"0-2,7"``; duplicates and order do not matter; ``[]`` -> ``""``."""
    nums = sorted(set(values))
    parts: list[str] = []
    i = 0
    while i < len(nums):
        j = i
        while j + 1 < len(nums) and nums[j + 1] == nums[j] + 1:
            j += 1
        parts.append(str(nums[i]) if i == j else f"{nums[i]}-{nums[j]}")
        i = j + 1
    return ",".join(parts)
