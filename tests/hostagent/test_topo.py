from pathlib import Path

import pytest

from hostagent.topo import TopoParseError, parse_cpulist, parse_topo

FIXTURES = Path(__file__).parents[1] / "fixtures" / "hostagent" / "topo"
CAPTURES = sorted(FIXTURES.glob("*.txt"))


def read(name: str) -> str:
    return (FIXTURES / name).read_text()


def test_every_capture_parses_with_one_link_per_pair():
    assert len(CAPTURES) >= 4
    for path in CAPTURES:
        inv = parse_topo(path.read_text())
        devices = len(inv.gpus) + len(inv.nics)
        assert len(inv.links) == devices * (devices - 1) // 2, path.name
        pairs = {frozenset((lk.a, lk.b)) for lk in inv.links}
        assert len(pairs) == len(inv.links)


def test_dgx_a100_reads_nvlinks_numa_nodes_and_nic_legend():
    inv = parse_topo(read("dgx_a100_8x_a100_sxm4_40g.txt"))
    assert [g.numa_node for g in inv.gpus] == [3, 3, 1, 1, 7, 7, 5, 5]
    assert inv.gpus[0].cpu_affinity == (*range(48, 64), *range(176, 192))
    assert [n.name for n in inv.nics] == [f"mlx5_{i}" for i in range(10)]
    assert inv.nics[3].label == "NIC3"
    assert inv.nics[3].numa_node is None
    nv = inv.link("GPU0", "GPU7")
    assert nv is not None and nv.kind == "NV12" and nv.nvlinks == 12
    pxb = inv.link("mlx5_1", "GPU0")
    assert pxb is not None and pxb.kind == "PXB" and pxb.nvlinks == 0
    assert inv.link("mlx5_8", "mlx5_9").kind == "PIX"  # type: ignore[union-attr]


def test_h100_keeps_empty_cpu_affinity_empty_and_reads_gpu_numa_id_column():
    inv = parse_topo(read("hgx_h100_8x_sxm5_princeton_pli.txt"))
    assert [g.cpu_affinity for g in inv.gpus[:4]] == [()] * 4
    assert [g.cpu_affinity for g in inv.gpus[4:]] == [(1,)] * 4
    assert [g.numa_node for g in inv.gpus] == [0] * 4 + [1] * 4
    assert inv.link("GPU3", "mlx5_2").kind == "PIX"  # type: ignore[union-attr]
    assert inv.link("GPU0", "GPU1").nvlinks == 18  # type: ignore[union-attr]


def test_space_separated_rtx6000_capture_parses_like_tabs():
    text = read("pcie_4x_rtx6000ada_asus_esc8000a_e12.txt")
    assert "\t" not in text
    inv = parse_topo(text)
    assert [g.numa_node for g in inv.gpus] == [0, 0, 1, 1]
    assert inv.gpus[2].cpu_affinity == tuple(range(32, 64))
    assert [n.name for n in inv.nics] == ["mlx5_0", "mlx5_1", "mlx5_2", "mlx5_3"]
    assert inv.link("GPU0", "GPU1").kind == "NODE"  # type: ignore[union-attr]
    assert inv.link("mlx5_2", "mlx5_3").kind == "PIX"  # type: ignore[union-attr]


def test_consumer_capture_without_nics():
    inv = parse_topo(read("consumer_2x_rtx5090_phb.txt"))
    assert inv.nics == ()
    assert inv.to_json()["links"] == [{"a": "GPU0", "b": "GPU1", "kind": "PHB", "nvlinks": 0}]
    assert inv.gpus[1].cpu_affinity == tuple(range(64))


def test_to_json_schema():
    doc = parse_topo(read("dgx_a100_8x_a100_sxm4_40g.txt")).to_json()
    assert set(doc) == {"gpus", "nics", "links"}
    assert set(doc["gpus"][0]) == {"index", "numa_node", "cpu_affinity"}
    assert doc["nics"][0]["name"] == "mlx5_0"
    assert set(doc["links"][0]) == {"a", "b", "kind", "nvlinks"}


def test_tabs_converted_to_spaces_give_the_same_inventory():
    text = read("dgx_a100_8x_a100_sxm4_40g.txt")
    assert parse_topo(text.expandtabs(8)) == parse_topo(text)
    h100 = read("hgx_h100_8x_sxm5_princeton_pli.txt")
    assert parse_topo(h100.expandtabs(8)) == parse_topo(h100)


def test_loosely_spaced_paste_still_parses():
    text = (
        "      GPU0  GPU1  CPU Affinity  NUMA Affinity\n"
        "GPU0  X  NV4  0-7  0\n"
        "GPU1  NV4  X  8-15  1\n"
    )
    inv = parse_topo(text)
    assert inv.gpus[1].cpu_affinity == tuple(range(8, 16))
    assert inv.gpus[1].numa_node == 1
    assert inv.links[0].nvlinks == 4


def test_numa_node_beyond_seven_and_na():
    text = (
        "\tGPU0\tGPU1\tCPU Affinity\tNUMA Affinity\tGPU NUMA ID\n"
        "GPU0\t X \tSYS\t128-143\t8\t\tN/A\n"
        "GPU1\tSYS\t X \tN/A\tN/A\t\tN/A\n"
    )
    inv = parse_topo(text)
    assert inv.gpus[0].numa_node == 8
    assert inv.gpus[0].cpu_affinity == tuple(range(128, 144))
    assert inv.gpus[1].numa_node is None
    assert inv.gpus[1].cpu_affinity == ()


def test_missing_nic_legend_names_nics_by_label():
    text = read("dgx_a100_8x_a100_sxm4_40g.txt").split("NIC Legend:")[0]
    inv = parse_topo(text)
    assert [n.name for n in inv.nics][:2] == ["NIC0", "NIC1"]
    assert inv.link("GPU0", "NIC0").kind == "PXB"  # type: ignore[union-attr]


def test_old_driver_with_hca_names_as_columns():
    text = (
        "\tGPU0\tGPU1\tmlx5_0\tCPU Affinity\n"
        "GPU0\t X \tNV1\tPHB\t0-11\n"
        "GPU1\tNV1\t X \tPHB\t0-11\n"
        "mlx5_0\tPHB\tPHB\t X \t\n"
    )
    inv = parse_topo(text)
    assert inv.nics[0].name == "mlx5_0" and inv.nics[0].label == "NIC0"
    assert inv.gpus[0].numa_node is None


@pytest.mark.parametrize(
    "text",
    [
        "",
        "hello world\n",
        "# only a comment\n",
        "\tGPU0\tGPU1\nGPU0\t X \tNV4\n",  # GPU1 row missing
        "\tGPU0\tGPU1\nGPU0\t X \tWAT?\nGPU1\tNV4\t X \n",
        "\tGPU0\tGPU1\tCPU Affinity\nGPU0\t X \tSYS\tzero\nGPU1\tSYS\t X \t0\n",
        "\tGPU0\tGPU1\nGPU0\t X \nGPU1\tSYS\t X \n",  # short row
        "\tGPU0\tGPU1\nGPU0\tSYS\tSYS\nGPU1\tSYS\t X \n",  # no diagonal
    ],
)
def test_garbage_raises_topo_parse_error(text):
    with pytest.raises(TopoParseError):
        parse_topo(text)


def test_cpulist():
    assert parse_cpulist("0-2,7") == (0, 1, 2, 7)
    assert parse_cpulist("N/A") == ()
    with pytest.raises(TopoParseError):
        parse_cpulist("3-1")


def _single_spaced_header(text: str) -> str:
    """The capture with its header cells separated by single spaces (as some
    terminals and chat pastes leave it); the rows keep their spacing."""
    lines = text.splitlines()
    at = next(i for i, ln in enumerate(lines) if "GPU0" in ln.split() and not ln.startswith("#"))
    lines[at] = "        " + " ".join(lines[at].split())
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.stem)
def test_a_single_space_separated_header_reads_like_the_original(path):
    original = parse_topo(path.read_text())
    assert parse_topo(_single_spaced_header(path.read_text())) == original


def test_single_spaced_hca_header_keeps_both_nics_numa_and_affinity():
    """The reported misread: `mlx5_1 CPU Affinity NUMA Affinity` gave one NIC."""
    text = (
        "        GPU0 GPU1 mlx5_0 mlx5_1 CPU Affinity NUMA Affinity\n"
        "GPU0     X      NV4     PXB     SYS     0-15    0\n"
        "GPU1    NV4      X      SYS     PXB     16-31   1\n"
        "mlx5_0  PXB     SYS      X      SYS\n"
        "mlx5_1  SYS     PXB     SYS      X\n"
    )
    inv = parse_topo(text)
    assert [n.name for n in inv.nics] == ["mlx5_0", "mlx5_1"]
    assert [g.numa_node for g in inv.gpus] == [0, 1]
    assert inv.gpus[1].cpu_affinity == tuple(range(16, 32))


@pytest.mark.parametrize("header", [
    "        GPU0 GPU1 CPU Affinity NUMA Affinity GPU NUMA ID",
    "\tGPU0\tGPU1\tCPU Affinity\tNUMA Affinity\t\tGPU NUMA ID",
    "  GPU0   GPU1   CPU Affinity   NUMA Affinity   GPU NUMA ID",
])
def test_header_variants_all_read_the_same(header):
    sep = "\t" if "\t" in header else "    "
    rows = [sep.join(["GPU0", " X ", "NV18", "0-7", "0", "N/A"]),
            sep.join(["GPU1", "NV18", " X ", "8-15", "1", "N/A"])]
    inv = parse_topo(header + "\n" + "\n".join(rows) + "\n")
    assert [g.numa_node for g in inv.gpus] == [0, 1]
    assert inv.gpus[1].cpu_affinity == tuple(range(8, 16))


@pytest.mark.parametrize("text", [
    "        GPU0 GPU1 CPU Affinity Bogus Column\nGPU0 X SYS 0\nGPU1 SYS X 0\n",
    "        GPU0 GPU1 CPU Affinity GPU2\nGPU0 X SYS 0\nGPU1 SYS X 0\n",
    "\tGPU0\tGPU1\tCPU Affinity\nGPU0\t X \tSYS\t0-3\t0\t7\nGPU1\tSYS\t X \t0-3\n",
])
def test_a_header_or_row_it_cannot_read_is_a_clear_error(text):
    with pytest.raises(TopoParseError, match=r"header cell|cells after the matrix"):
        parse_topo(text)
