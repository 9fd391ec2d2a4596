"""Topology: per host, the GPU/NIC matrix of `nvidia-smi topo -m` as a coloured
grid and the NVLink/PCIe link graph as inline SVG; a cluster view of hosts by
GPU model and state."""

import math
import re
from collections import defaultdict

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.utils.html import format_html, format_html_join

from console.core.choices import HOST_STATE_COLOURS, LinkKind
from console.core.models import Host
from console.ui.access import get_host
from console.ui.hosts import host_rows
from coupler_common.cpulist import format_cpulist

LINK_COLOURS = {
    "NV": "#166534",
    "PIX": "#2f855a",
    "PXB": "#68a57f",
    "PHB": "#d69e2e",
    "NODE": "#dd6b20",
    "SYS": "#c53030",
}
NUMA_FILLS = ["#e8f0fb", "#fdf1e2", "#e6f4ea", "#f3e8f9", "#fbe9ec", "#e4f3f3", "#f5f3dc", "#eceff3"]


def _n(value: float) -> str:
    return f"{value:.1f}"


def link_class(kind: str) -> str:
    """CSS class of a matrix cell: NV12 → NV, X (self) → X."""
    if kind == "X":
        return "X"
    if re.fullmatch(r"NV\d+", kind):
        return "NV"
    return kind if kind in LINK_COLOURS else "none"


def host_devices(host: Host) -> list[dict]:
    """GPUs then NICs, grouped by NUMA node as the matrix and the graph draw them."""
    devices = []
    for gpu in host.gpus.all():
        devices.append({"label": f"GPU{gpu.index}", "kind": "gpu", "numa": gpu.numa_node,
                        "affinity": format_cpulist(gpu.cpu_affinity or []), "title": gpu.model,
                        "pci": gpu.pci_address})
    for nic in host.nics.all():
        devices.append({"label": nic.name, "kind": "nic", "numa": nic.numa_node,
                        "affinity": "", "title": nic.label or nic.name, "pci": ""})

    def order(d):
        numa = d["numa"] if d["numa"] is not None else 1_000
        return (numa, d["kind"] != "gpu", d["label"])

    return sorted(devices, key=order)


def link_table(host: Host) -> dict[tuple[str, str], tuple[str, int]]:
    links = {}
    for link in host.links.all():
        links[(link.a, link.b)] = (link.kind, link.nvlinks)
        links[(link.b, link.a)] = (link.kind, link.nvlinks)
    return links


def matrix(host: Host) -> dict:
    devices = host_devices(host)
    links = link_table(host)
    rows = []
    for d in devices:
        cells = []
        for e in devices:
            kind = "X" if d is e else links.get((d["label"], e["label"]), ("", 0))[0]
            cells.append({"kind": kind or "–", "css": link_class(kind) if kind else "none"})
        rows.append({"device": d, "cells": cells})
    groups = []
    for d in devices:
        if groups and groups[-1]["numa"] == d["numa"]:
            groups[-1]["span"] += 1
        else:
            groups.append({"numa": d["numa"], "span": 1})
    return {"devices": devices, "rows": rows, "groups": groups}


def link_graph_svg(host: Host) -> str:
    """Devices on a circle, grouped by NUMA node (shaded sectors); NVLink edges
    (width by link count) and close PCIe pairs (PIX, PXB) drawn as lines. Pairs
    that meet only at a host bridge or across CPUs (PHB, NODE, SYS) are left
    out of the drawing to keep it readable: the matrix shows them."""
    devices = host_devices(host)
    links = host.links.all()
    size, cx, cy = 560, 280, 280
    radius = 190 if len(devices) > 4 else 150
    n = max(len(devices), 1)
    pos = {}
    for i, d in enumerate(devices):
        angle = -math.pi / 2 + 2 * math.pi * i / n
        pos[d["label"]] = (cx + radius * math.cos(angle), cy + radius * math.sin(angle), angle)
    parts = []
    # NUMA sectors.
    by_numa = defaultdict(list)
    for i, d in enumerate(devices):
        by_numa[d["numa"]].append(i)
    for k, (numa, idx) in enumerate(by_numa.items()):
        start = -math.pi / 2 + 2 * math.pi * (idx[0] - 0.5) / n
        end = -math.pi / 2 + 2 * math.pi * (idx[-1] + 0.5) / n
        r_out = radius + 55
        large = 1 if end - start > math.pi else 0
        path = (f"M {cx:.1f} {cy:.1f} L {cx + r_out * math.cos(start):.1f} "
                f"{cy + r_out * math.sin(start):.1f} A {r_out} {r_out} 0 {large} 1 "
                f"{cx + r_out * math.cos(end):.1f} {cy + r_out * math.sin(end):.1f} Z")
        parts.append(format_html('<path d="{}" fill="{}" stroke="#c9d0d8"/>', path,
                                 NUMA_FILLS[k % len(NUMA_FILLS)]))
        mid = (start + end) / 2
        label = "no NUMA affinity" if numa is None else f"NUMA {numa}"
        parts.append(format_html(
            '<text x="{}" y="{}" text-anchor="middle" font-size="12" fill="#3f4750">{}</text>',
            _n(cx + (radius + 42) * math.cos(mid)), _n(cy + (radius + 42) * math.sin(mid) + 4),
            label))
    # Edges.
    for link in links:
        if link.a not in pos or link.b not in pos:
            continue
        css = link_class(link.kind)
        if css not in ("NV", "PIX", "PXB"):
            continue
        x1, y1, _ = pos[link.a]
        x2, y2, _ = pos[link.b]
        width = 1.5 + min(link.nvlinks, 18) / 3 if css == "NV" else 2
        dash = "6 4" if css == "PXB" else "none"
        parts.append(format_html(
            '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="{}"'
            ' stroke-opacity="0.8" stroke-dasharray="{}"><title>{} – {}: {}</title></line>',
            _n(x1), _n(y1), _n(x2), _n(y2), LINK_COLOURS[css], _n(width), dash,
            link.a, link.b, link.kind))
    # Nodes.
    for d in devices:
        x, y, _ = pos[d["label"]]
        if d["kind"] == "gpu":
            shape = format_html(
                '<rect x="{}" y="{}" width="64" height="30" rx="5" fill="#14213d"/>',
                _n(x - 32), _n(y - 15))
            colour = "#ffffff"
        else:
            shape = format_html(
                '<rect x="{}" y="{}" width="64" height="30" rx="15" fill="#ffffff" '
                'stroke="#14213d" stroke-width="2"/>', _n(x - 32), _n(y - 15))
            colour = "#14213d"
        parts.append(format_html(
            '<g><title>{} {}</title>{}<text x="{}" y="{}" text-anchor="middle" '
            'font-size="12" font-weight="600" fill="{}">{}</text></g>',
            d["label"], d["title"], shape, _n(x), _n(y + 4), colour, d["label"]))
    body = format_html_join("", "{}", ((p,) for p in parts))
    return format_html(
        '<svg class="linkgraph" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {} {}" '
        'width="{}" height="{}" role="img" aria-labelledby="graph-title">'
        '<title id="graph-title">NVLink and PCIe links of {}</title>{}</svg>',
        size, size, size, size, host.name, body)


@login_required
def host_topology(request, name):
    host = get_host(name)
    return render(request, "topology/host.html", {
        "section": "topology",
        "host": host,
        "matrix": matrix(host),
        "svg": link_graph_svg(host),
        "legend": [(value, label, "NV" if value == "NV" else value) for value, label in
                   LinkKind.choices],
        "nvlink_pairs": sum(1 for link in host.links.all() if link_class(link.kind) == "NV"),
    })


@login_required
def cluster_topology(request):
    by_model = defaultdict(list)
    for row in host_rows(Host.objects.all()):
        key = ", ".join(row["models"]) or "no GPUs"
        row["colour"] = HOST_STATE_COLOURS.get(row["host"].state, "grey")
        by_model[key].append(row)
    groups = sorted(by_model.items())
    return render(request, "topology/cluster.html", {"section": "topology", "groups": groups})
