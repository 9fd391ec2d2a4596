"""Reading the Alibaba GPU trace (openb format, Weng et al. ATC 2023) into planner inputs.

This is the simulator's I/O shell; the planning core never imports it.

Nodes: ``sn,cpu_milli,memory_mib,gpu,model``. A node becomes one host with one NUMA node,
``cpu_milli // 1000`` cores, ``memory_mib // 1024`` GiB and fully NVLink-connected GPUs.
Pods: ``name,cpu_milli,memory_mib,num_gpu,gpu_milli`` required; ``gpu_spec`` (allowed
models, ``|``-separated), ``creation_time``, ``deletion_time`` and ``tenant`` optional.
A pod asks for ``ceil(cpu_milli / 1000)`` vCPUs and ``ceil(memory_mib / 1024)`` GiB; a
1-GPU pod with ``gpu_milli`` < 1000 asks for a GPU share.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from scheduler.model import GpuState, HostState, JobRequest, NumaState

NODE_COLUMNS = ("sn", "cpu_milli", "memory_mib", "gpu", "model")
POD_COLUMNS = ("name", "cpu_milli", "memory_mib", "num_gpu", "gpu_milli")
CSV_NODE_LINK = "NV12"


class TraceError(ValueError):
    """A trace file is missing or malformed; the message says where."""


@dataclass(frozen=True, slots=True)
class Pod:
    job: JobRequest
    creation_time: float | None
    deletion_time: float | None
    row: int


def _rows(path: str | Path, required: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    p = Path(path)
    try:
        f = p.open(newline="", encoding="utf-8")
    except OSError as e:
        raise TraceError(f"cannot read {p}: {e.strerror or e}") from None
    with f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        missing = [c for c in required if c not in header]
        if missing:
            raise TraceError(
                f"{p}: missing column(s) {', '.join(missing)}; expected at least {','.join(required)}"
            )
        try:
            yield from enumerate(reader, start=2)
        except (csv.Error, UnicodeDecodeError) as e:
            raise TraceError(f"{p}: not a valid CSV file ({e})") from None


def _int(p: str | Path, line: int, row: dict[str, str], col: str, default: int | None = None) -> int:
    raw = (row.get(col) or "").strip()
    if not raw and default is not None:
        return default
    try:
        v = float(raw)
    except ValueError:
        raise TraceError(f"{p}, line {line}: column {col} must be a number, got {raw!r}") from None
    if v < 0 or math.isnan(v) or math.isinf(v):
        raise TraceError(f"{p}, line {line}: column {col} must be >= 0, got {raw!r}")
    return int(v)


def _opt_float(p: str | Path, line: int, row: dict[str, str], col: str) -> float | None:
    raw = (row.get(col) or "").strip()
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        raise TraceError(f"{p}, line {line}: column {col} must be a number, got {raw!r}") from None


def read_nodes(path: str | Path) -> list[HostState]:
    hosts = []
    seen = set()
    for line, row in _rows(path, NODE_COLUMNS):
        name = (row.get("sn") or "").strip()
        if not name or name in seen:
            raise TraceError(f"{path}, line {line}: empty or repeated node name {name!r}")
        seen.add(name)
        cores = _int(path, line, row, "cpu_milli") // 1000
        mem = _int(path, line, row, "memory_mib") // 1024
        n = _int(path, line, row, "gpu", 0)
        model = (row.get("model") or "").strip()
        gpus = tuple(GpuState(i, model, 0) for i in range(n))
        links = tuple((a, b, CSV_NODE_LINK) for a in range(n) for b in range(a + 1, n))
        hosts.append(
            HostState(name, gpus, (NumaState(0, tuple(range(cores)), mem),), links)
        )
    if not hosts:
        raise TraceError(f"{path}: no nodes")
    return hosts


def read_pods(path: str | Path, tenants: int = 1) -> list[Pod]:
    """Pods in file order. Without a ``tenant`` column, row i goes to ``tenant-(i % N)``."""
    if tenants < 1:
        raise TraceError("--tenants must be at least 1")
    pods = []
    seen = set()
    for line, row in _rows(path, POD_COLUMNS):
        idx = len(pods)
        name = (row.get("name") or "").strip()
        if not name or name in seen:
            raise TraceError(f"{path}, line {line}: empty or repeated pod name {name!r}")
        seen.add(name)
        num_gpu = _int(path, line, row, "num_gpu", 0)
        gpu_milli = _int(path, line, row, "gpu_milli", 0)
        share = num_gpu == 1 and 0 < gpu_milli < 1000  # shares only on 1-GPU pods
        spec = tuple(m.strip() for m in (row.get("gpu_spec") or "").split("|") if m.strip())
        tenant = (row.get("tenant") or "").strip() or (
            "default" if tenants == 1 else f"tenant-{idx % tenants}"
        )
        created = _opt_float(path, line, row, "creation_time")
        job = JobRequest(
            id=name,
            tenant=tenant,
            gpus_per_host=num_gpu,
            gpu_models=spec,
            gpu_milli=gpu_milli if share else None,
            vcpus_per_host=math.ceil(_int(path, line, row, "cpu_milli") / 1000),
            memory_gib_per_host=math.ceil(_int(path, line, row, "memory_mib") / 1024),
            submit_time=created if created is not None else float(idx),
        )
        pods.append(Pod(job, created, _opt_float(path, line, row, "deletion_time"), idx))
    if not pods:
        raise TraceError(f"{path}: no pods")
    return pods
