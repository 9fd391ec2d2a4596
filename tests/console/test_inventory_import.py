"""The import command registers hosts from every real capture we ship."""

import pytest
from django.core.management import CommandError, call_command

from console.core.models import Gpu, GpuLink, Host, Nic, NumaNode
from coupler_demo.profiles import CAPTURES, PROFILES


@pytest.mark.django_db
@pytest.mark.parametrize("kind", sorted(PROFILES))
def test_every_profile_registers_its_real_machine(kind):
    call_command("import_topo", "--profile", kind, "--host", f"h-{kind[:10]}", "--cluster", "c")
    host = Host.objects.get(name=f"h-{kind[:10]}")
    gpus = list(host.gpus.all())
    assert gpus, kind
    # PCI addresses are unique on the host and every GPU sits on a known NUMA node
    # whose cores include the GPU's affinity.
    assert len({g.pci_address for g in gpus}) == len(gpus)
    nodes = {n.node_id: set(n.cpus) for n in host.numa_nodes.all()}
    for gpu in gpus:
        assert gpu.numa_node in nodes
        assert set(gpu.cpu_affinity) <= nodes[gpu.numa_node]


@pytest.mark.django_db
def test_dgx_a100_import_keeps_nvlinks_nics_and_numa_ids():
    call_command("import_topo", "--profile", "dgx_a100", "--host", "dgx", "--cluster", "c")
    host = Host.objects.get(name="dgx")
    link = GpuLink.objects.get(host=host, a_gpu=0, b_gpu=1)
    assert (link.kind, link.nvlinks) == ("NV12", 12)
    assert Nic.objects.filter(host=host).count() == 10
    assert Nic.objects.get(host=host, name="mlx5_0").numa_node == 3
    assert Gpu.objects.get(host=host, index=4).numa_node == 7
    assert NumaNode.objects.filter(host=host).count() == 8


@pytest.mark.django_db
def test_raw_capture_import_with_tabs_spaces_and_empty_affinity(tmp_path):
    for capture in sorted(CAPTURES.glob("*.txt")):
        name = capture.stem.replace("_", "-")[:40]
        call_command("import_topo", str(capture), "--host", name, "--cluster", "c",
                     "--gpu-model", "X")
        assert Host.objects.get(name=name).gpus.count() in (2, 4, 8)


@pytest.mark.django_db
def test_reimport_is_idempotent_and_keeps_gpu_rows():
    call_command("import_topo", "--profile", "pcie_rtx6000ada", "--host", "ada", "--cluster", "c")
    before = sorted(Gpu.objects.filter(host__name="ada").values_list("pk", flat=True))
    call_command("import_topo", "--profile", "pcie_rtx6000ada", "--host", "ada", "--cluster", "c")
    after = sorted(Gpu.objects.filter(host__name="ada").values_list("pk", flat=True))
    assert before == after
    assert GpuLink.objects.filter(host__name="ada", a_gpu=0, b_gpu=1).count() == 1


@pytest.mark.django_db
def test_unreadable_or_garbage_captures_are_clear_errors(tmp_path):
    with pytest.raises(CommandError, match="cannot read"):
        call_command("import_topo", str(tmp_path / "missing.txt"), "--host", "x",
                     "--cluster", "c", "--gpu-model", "X")
    garbage = tmp_path / "garbage.txt"
    garbage.write_text("this is not a topology matrix\n")
    with pytest.raises(CommandError):
        call_command("import_topo", str(garbage), "--host", "x", "--cluster", "c",
                     "--gpu-model", "X")
    assert not Host.objects.filter(name="x").exists()
