"""Parse the text of ``nvidia-smi topo -m`` into a topology inventory.

The matrix is printed with tabs, but captures come back in many shapes: pasted
from a terminal (tabs expanded to spaces on 8-column stops), with ``#`` comment
lines, with the legend after it, with an empty ``CPU Affinity`` cell, with the
extra ``GPU NUMA ID`` column that nvidia-smi separates with a double tab.  The
parser rebuilds the tab-separated cells first and reads them by header name
afterwards, so every one of these shapes ends in the same ``TopoInventory``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from coupler_common import cpulist

__all__ = [
    "TopoGpu",
    "TopoInventory",
    "TopoLink",
    "TopoNic",
    "TopoParseError",
    "parse_cpulist",
    "parse_topo",
]


class TopoParseError(ValueError):
    """The text is not a ``nvidia-smi topo -m`` matrix this parser understands."""


@dataclass(frozen=True)
class TopoGpu:
    index: int
    cpu_affinity: tuple[int, ...]
    numa_node: int | None


@dataclass(frozen=True)
class TopoNic:
    index: int
    name: str
    label: str
    numa_node: int | None


@dataclass(frozen=True)
class TopoLink:
    a: str
    b: str
    kind: str
    nvlinks: int


@dataclass(frozen=True)
class TopoInventory:
    gpus: tuple[TopoGpu, ...]
    nics: tuple[TopoNic, ...]
    links: tuple[TopoLink, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "gpus": [
                {"index": g.index, "numa_node": g.numa_node, "cpu_affinity": list(g.cpu_affinity)}
                for g in self.gpus
            ],
            "nics": [
                {"name": n.name, "label": n.label, "index": n.index, "numa_node": n.numa_node}
                for n in self.nics
            ],
            "links": [
                {"a": lk.a, "b": lk.b, "kind": lk.kind, "nvlinks": lk.nvlinks} for lk in self.links
            ],
        }

    def link(self, a: str, b: str) -> TopoLink | None:
        """The link between two devices, in either order, or None."""
        for lk in self.links:
            if {lk.a, lk.b} == {a, b}:
                return lk
        return None


_GPU_RE = re.compile(r"^GPU(\d+)$")
_NIC_RE = re.compile(r"^NIC(\d+)$")
# Old drivers print the HCA name as the column header instead of NICn.
_HCA_RE = re.compile(r"^(mlx\d+_\d+|hfi\d+_\d+|bnxt_re\d+|irdma\d+|efa_?\d+)$")
_CELL_RE = re.compile(r"^(X|NV\d+|[A-Z]{2,5}|N/A)$")
_NV_RE = re.compile(r"^NV(\d+)$")
_LEGEND_RE = re.compile(r"^\s*(NIC\d+)\s*:\s*(\S+)\s*$")
_TRAILING = ("CPU Affinity", "NUMA Affinity", "GPU NUMA ID")
_TAB = 8


def parse_cpulist(text: str) -> tuple[int, ...]:
    """``"48-63,176-191"`` -> the cores, sorted.  Empty or ``N/A`` -> ``()``."""
    try:
        return tuple(sorted(cpulist.parse_cpulist(text)))
    except cpulist.CpuListError as exc:
        raise TopoParseError(str(exc)) from None


def _numa(text: str) -> int | None:
    text = text.strip()
    # A range ("0-1") or N/A names no single node; do not guess one.
    return int(text) if text.isdigit() else None


def _split_spaced(line: str) -> list[str]:
    """Rebuild tab cells of a line whose tabs were expanded to 8-column stops.

    Words separated by no tab stop belong to one cell ("CPU Affinity"); each
    tab stop crossed between two words is one tab, so two stops mean an empty
    cell, exactly as in the tab-separated original.
    """
    cells: list[str] = []
    current: list[str] = []
    prev_end = 0
    for m in re.finditer(r"\S+", line):
        start, end = m.span()
        if not current:
            if start > 0:
                cells.append("")  # the empty corner cell of the header
            current = [m.group()]
        else:
            tabs = start // _TAB - prev_end // _TAB
            if tabs == 0:
                current.append(m.group())
            else:
                cells.append(" ".join(current))
                cells.extend([""] * (tabs - 1))
                current = [m.group()]
        prev_end = end
    if current:
        cells.append(" ".join(current))
    return cells


def _split_loose(line: str) -> list[str]:
    """Split on runs of two or more blanks; for captures that lost their tab stops."""
    cells = re.split(r"\s{2,}|\t", line.strip())
    if line[:1].isspace():
        cells.insert(0, "")
    return cells


def _tokenize(line: str, splitter: str) -> list[str]:
    if splitter == "tab":
        return [c.strip() for c in line.rstrip("\r\n").split("\t")]
    if splitter == "stops":
        return _split_spaced(line.rstrip("\r\n").expandtabs(_TAB))
    return _split_loose(line.rstrip("\r\n"))


@dataclass
class _Matrix:
    columns: list[str]
    trailing: list[str]
    rows: dict[str, list[str]]
    extras: dict[str, list[str]]


def _is_device(name: str) -> bool:
    return bool(_GPU_RE.match(name) or _NIC_RE.match(name) or _HCA_RE.match(name))


_TRAILING_WORDS = tuple(name.split() for name in _TRAILING)


def _read_header(line: str) -> tuple[list[str], list[str]]:
    """Device columns and trailing column names of the header, read word by word.

    Header cells never hold a blank except the known trailing names ("CPU
    Affinity", "NUMA Affinity", "GPU NUMA ID"), so the header is read the same
    whether its cells are separated by tabs, tab stops or single spaces
    (``mlx5_1 CPU Affinity NUMA Affinity``); any other word is refused."""
    words = line.split()
    columns: list[str] = []
    trailing: list[str] = []
    i = 0
    while i < len(words):
        name = next((" ".join(w) for w in _TRAILING_WORDS if words[i:i + len(w)] == w), None)
        if name is not None:
            trailing.append(name)
            i += len(name.split())
            continue
        word = words[i]
        if trailing or not _is_device(word):
            where = "after the trailing columns" if trailing and _is_device(word) else ""
            raise TopoParseError(f"unexpected header cell {word!r} {where} in {line.strip()!r}"
                                 .replace("  ", " "))
        columns.append(word)
        i += 1
    return columns, trailing


def _read_matrix(lines: list[str], splitter: str) -> _Matrix:
    header_at = None
    for i, line in enumerate(lines):
        if line.lstrip().startswith("#") or not line.strip():
            continue
        if "GPU0" in line.split() or "\tGPU0" in line:
            header_at = i
            break
    if header_at is None:
        raise TopoParseError("no matrix header found (expected a line with GPU0, GPU1, ...)")
    columns, trailing = _read_header(lines[header_at])
    if not any(_GPU_RE.match(c) for c in columns):
        raise TopoParseError("matrix header names no GPU columns")
    if len(set(columns)) != len(columns):
        raise TopoParseError(f"duplicate column names in header: {columns}")
    rows: dict[str, list[str]] = {}
    extras: dict[str, list[str]] = {}
    for line in lines[header_at + 1 :]:
        if not line.strip():
            if rows:
                break
            continue
        cells = _tokenize(line, splitter)
        name = cells[0] if cells else ""
        if name not in columns:
            if rows:
                break  # legend or other text after the matrix
            raise TopoParseError(f"expected a matrix row after the header, got {line.strip()!r}")
        if name in rows:
            raise TopoParseError(f"row {name} appears twice")
        body = cells[1:]
        if len(body) < len(columns):
            raise TopoParseError(
                f"row {name} has {len(body)} cells, the header names {len(columns)} devices"
            )
        matrix_cells = body[: len(columns)]
        for col, cell in zip(columns, matrix_cells, strict=True):
            if not _CELL_RE.match(cell):
                raise TopoParseError(f"row {name}, column {col}: unknown link kind {cell!r}")
        rows[name] = matrix_cells
        extras[name] = body[len(columns) :]
        if len([v for v in extras[name] if v]) > len(trailing):
            raise TopoParseError(
                f"row {name} has {len([v for v in extras[name] if v])} cells after the matrix, "
                f"the header names {len(trailing)} ({', '.join(trailing) or 'none'})")
    for col in columns:
        if _GPU_RE.match(col) and col not in rows:
            raise TopoParseError(f"no matrix row for {col}")
    return _Matrix(columns, trailing, rows, extras)


def _trailing_values(trailing: list[str], values: list[str], splitter: str) -> dict[str, str]:
    """Map the cells after the matrix to their header names.

    nvidia-smi separates ``GPU NUMA ID`` with two tabs, so the last header takes
    the last non-empty cell; in a loose split empty cells vanish, and the one
    that goes missing is the CPU affinity (the known H100 quirk).
    """
    out: dict[str, str] = {}
    if splitter == "loose":
        values = [v for v in values if v]
        if len(values) == len(trailing) - 1 and trailing and trailing[0] == "CPU Affinity":
            values = ["", *values]
    for k, name in enumerate(trailing):
        if name == "GPU NUMA ID":
            rest = [v for v in values[k:] if v]
            out[name] = rest[-1] if rest else ""
        else:
            out[name] = values[k] if k < len(values) else ""
    return out


def _parse_with(lines: list[str], splitter: str) -> TopoInventory:
    m = _read_matrix(lines, splitter)
    legend: dict[str, str] = {}
    for line in lines:
        lm = _LEGEND_RE.match(line)
        if lm:
            legend[lm.group(1)] = lm.group(2)

    gpus: list[TopoGpu] = []
    nics: list[TopoNic] = []
    names: dict[str, str] = {}
    nic_ordinal = 0
    for col in m.columns:
        values = _trailing_values(m.trailing, m.extras.get(col, []), splitter)
        numa = _numa(values.get("NUMA Affinity", ""))
        if gm := _GPU_RE.match(col):
            cpus_text = values.get("CPU Affinity", "")
            try:
                cpus = parse_cpulist(cpus_text)
            except TopoParseError as exc:
                raise TopoParseError(f"{col}: {exc}") from None
            gpus.append(TopoGpu(index=int(gm.group(1)), cpu_affinity=cpus, numa_node=numa))
            names[col] = col
        else:
            nm = _NIC_RE.match(col)
            index = int(nm.group(1)) if nm else nic_ordinal
            label = f"NIC{index}"
            name = legend.get(col, col if not nm else label)
            nics.append(TopoNic(index=index, name=name, label=label, numa_node=numa))
            names[col] = name
            nic_ordinal += 1

    links: list[TopoLink] = []
    for i, a in enumerate(m.columns):
        for j in range(i + 1, len(m.columns)):
            b = m.columns[j]
            if a in m.rows:
                kind = m.rows[a][j]
            elif b in m.rows:
                kind = m.rows[b][i]
            else:
                continue
            if kind == "X":
                raise TopoParseError(f"{a} and {b} are marked as the same device (X)")
            nv = _NV_RE.match(kind)
            links.append(TopoLink(names[a], names[b], kind, int(nv.group(1)) if nv else 0))
    for name, cells in m.rows.items():
        if cells[m.columns.index(name)] != "X":
            raise TopoParseError(f"row {name}: the diagonal cell is {cells[m.columns.index(name)]!r}, not X")
    return TopoInventory(tuple(gpus), tuple(nics), tuple(links))


def parse_topo(text: str) -> TopoInventory:
    """Parse ``nvidia-smi topo -m`` output (tabs, or pasted with spaces)."""
    if not isinstance(text, str) or not text.strip():
        raise TopoParseError("empty topology capture")
    lines = text.splitlines()
    body = [ln for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    if any("\t" in ln for ln in body[:3]):
        splitters = ["tab"]
    else:
        splitters = ["stops", "loose"]
    first_error: TopoParseError | None = None
    for splitter in splitters:
        try:
            return _parse_with(lines, splitter)
        except TopoParseError as exc:
            first_error = first_error or exc
    assert first_error is not None
    raise first_error
