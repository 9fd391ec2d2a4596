"""NUMA-true placement through the API, as measured on the demo in issue 12: jobs submitted
over REST, placed by the real cycle, provisioned on libvirt's test driver. Each host's
cores and memory sit on exactly its GPUs' NUMA nodes, in proportion to the GPUs on each;
the domain mirrors that as guest NUMA cells with memory strict per cell."""

import xml.etree.ElementTree as ET
from collections import Counter

import pytest

from console.core.models import Allocation, Job, NumaNode
from console.core.snapshot import build_snapshot

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def fleet(db):
    """One DGX A100 and two HGX H100, registered as the demo registers them."""
    from console.core.actions.inventory import do_register_host
    from console.core.models import Cluster
    from coupler_demo.profiles import inventory_for

    cluster = Cluster.objects.create(name="NUMA", slug="numa")
    for name, kind in [("dgx-1", "dgx_a100"), ("hgx-1", "hgx_h100"), ("hgx-2", "hgx_h100")]:
        do_register_host(cluster=cluster, name=name, inventory=inventory_for(kind, name))
    return cluster


def _submit(client, **body):
    spec = {"tenant": "tenant-a", "name": "numa", "hosts": 1, "priority": 0,
            "preemptible": True, **body}
    response = client.post("/api/v1/jobs/", spec, format="json")
    assert response.status_code == 201, response.json()
    return response.json()["id"]


def _assert_numa_true(job_id, client, vcpus, memory):
    from hostagent import runtime

    detail = client.get(f"/api/v1/jobs/{job_id}/").json()
    assert detail["state"] == "running", detail["pending_reason"]
    job = Job.objects.get(pk=job_id)
    for part in detail["placement"]:
        allocs = Allocation.objects.filter(job=job, host__name=part["host"]).select_related("gpu")
        gpu_nodes = Counter(a.gpu.numa_node for a in allocs if a.gpu_id)
        k = sum(gpu_nodes.values())
        node_of = {c: n.node_id for n in NumaNode.objects.filter(host__name=part["host"])
                   for c in n.cpus}
        cores = Counter(node_of[c] for c in part["cpus"])
        want = {n: g * vcpus // k for n, g in gpu_nodes.items()}
        assert dict(cores) == want
        assert part["memory_by_numa"] == {str(n): g * memory // k
                                          for n, g in sorted(gpu_nodes.items())}
        assert sorted(part["numa_nodes"]) == sorted(gpu_nodes)
        # the domain: one guest cell per GPU node, its vCPUs pinned there, memory bound there
        dom = ET.fromstring(runtime.domain_xml(part["host"], job.domain_name))
        pins = {int(p.get("vcpu")): int(p.get("cpuset")) for p in dom.iterfind("cputune/vcpupin")}
        memnodes = {int(m.get("cellid")): int(m.get("nodeset"))
                    for m in dom.iterfind("numatune/memnode")}
        cells = dom.findall("cpu/numa/cell")
        assert len(cells) == len(gpu_nodes)
        for cell in cells:
            host_node = memnodes[int(cell.get("id"))]
            lo, _, hi = cell.get("cpus").partition("-")
            vcpu_ids = range(int(lo), int(hi or lo) + 1)
            assert {node_of[pins[v]] for v in vcpu_ids} == {host_node}
            assert len(vcpu_ids) == want[host_node]
            kib = int(cell.get("memory")) * {"KiB": 1, "MiB": 1024}[cell.get("unit")]
            assert kib == part["memory_by_numa"][str(host_node)] * 1024 * 1024


def test_a100_4_and_8_gpu_jobs_and_an_h100_gang_are_numa_true(fleet, member_a, client_for):
    client = client_for(member_a)
    four = _submit(client, gpus_per_host=4, gpu_model="A100-SXM4-40GB", vcpus_per_host=32,
                   memory_gib_per_host=128)
    _assert_numa_true(four, client, 32, 128)
    client.post(f"/api/v1/jobs/{four}/cancel/")
    eight = _submit(client, gpus_per_host=8, gpu_model="A100-SXM4-40GB", vcpus_per_host=64,
                    memory_gib_per_host=256)
    _assert_numa_true(eight, client, 64, 256)
    gang = _submit(client, gpus_per_host=8, hosts=2, gpu_model="H100-SXM5-80GB",
                   vcpus_per_host=64, memory_gib_per_host=256)
    _assert_numa_true(gang, client, 64, 256)


def test_an_uneven_split_is_stored_and_read_back_exactly(fleet, member_a, client_for):
    client = client_for(member_a)
    # 3 A100s: two on one node, one on another -> 2/3 and 1/3 of cores and memory
    job_id = _submit(client, gpus_per_host=3, gpu_model="A100-SXM4-40GB", vcpus_per_host=12,
                     memory_gib_per_host=30)
    _assert_numa_true(job_id, client, 12, 30)
    base = Allocation.objects.get(job_id=job_id, gpu__isnull=True)
    stored = {node: gib for node, gib in base.memory_by_numa}
    assert sorted(stored.values()) == [10, 20]
    snapshot = build_snapshot()
    (running,) = [r for r in snapshot.running if r.id == str(job_id)]
    assert dict(running.placement[0].memory_by_numa) == stored
    # and the free memory of each node is its hugepages minus exactly that
    dgx = next(h for h in snapshot.hosts if h.name == "dgx-1")
    pages = {n.node_id: n.hugepages_1g for n in NumaNode.objects.filter(host__name="dgx-1")}
    for numa in dgx.numa:
        assert numa.free_memory_gib == pages[numa.node] - stored.get(numa.node, 0)


def test_a_job_no_numa_node_can_hold_next_to_its_gpu_is_refused_at_submit(
    fleet, member_a, client_for
):
    # a DGX A100 node has 32 cores: 40 vCPUs next to one GPU can never be NUMA-true
    response = client_for(member_a).post("/api/v1/jobs/", {
        "tenant": "tenant-a", "name": "wide", "gpus_per_host": 1,
        "gpu_model": "A100-SXM4-40GB", "vcpus_per_host": 40, "memory_gib_per_host": 16,
    }, format="json")
    assert response.status_code == 400, response.json()
    assert "NUMA" in str(response.json())
