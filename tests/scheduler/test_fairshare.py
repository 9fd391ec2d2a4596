"""Weighted Dominant Resource Fairness (Ghodsi et al., NSDI 2011)."""

import json

from scheduler import Snapshot, plan
from scheduler.fairshare import drf_order
from scheduler.simulate import main as simulate_main
from tests.scheduler.helpers import host, job, tenant

# The paper's example: 9 CPUs, 18 GB; A's tasks <1 CPU, 4 GB>, B's <3 CPUs, 1 GB>.
NODES = "sn,cpu_milli,memory_mib,gpu,model\nnode-0,9000,18432,0,\n"


def _pods(tasks_each: int = 6) -> str:
    rows = ["name,cpu_milli,memory_mib,num_gpu,gpu_milli,tenant"]
    for i in range(tasks_each):
        rows.append(f"a-{i},1000,4096,0,0,A")
        rows.append(f"b-{i},3000,1024,0,0,B")
    return "\n".join(rows) + "\n"


def test_the_papers_example_gives_a_three_tasks_and_b_two(tmp_path, capsys):
    (tmp_path / "nodes.csv").write_text(NODES)
    (tmp_path / "pods.csv").write_text(_pods())
    rc = simulate_main(
        ["--nodes", str(tmp_path / "nodes.csv"), "--pods", str(tmp_path / "pods.csv"),
         "--mode", "batch", "--json"]
    )
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["tenants"]["A"]["placed"] == 3
    assert out["tenants"]["B"]["placed"] == 2
    # both end at a dominant share of 2/3 (A: 12/18 GB, B: 6/9 CPUs)
    assert abs(out["tenants"]["A"]["dominant_share"] - 2 / 3) < 1e-6
    assert abs(out["tenants"]["B"]["dominant_share"] - 2 / 3) < 1e-6
    assert out["placed"] == 5 and out["unplaced"] == 7


def test_the_example_holds_whoever_submitted_first(tmp_path, capsys):
    rows = ["name,cpu_milli,memory_mib,num_gpu,gpu_milli,tenant"]
    rows += [f"b-{i},3000,1024,0,0,B" for i in range(6)] + [f"a-{i},1000,4096,0,0,A" for i in range(6)]
    (tmp_path / "nodes.csv").write_text(NODES)
    (tmp_path / "pods.csv").write_text("\n".join(rows) + "\n")
    simulate_main(["--nodes", str(tmp_path / "nodes.csv"), "--pods", str(tmp_path / "pods.csv"),
                   "--json"])
    out = json.loads(capsys.readouterr().out)
    assert (out["tenants"]["A"]["placed"], out["tenants"]["B"]["placed"]) == (3, 2)


def test_progressive_filling_order_matches_the_example():
    tenants = [tenant("A"), tenant("B")]
    jobs = [job(f"a{i}", "A", 0, vcpus_per_host=1, memory_gib_per_host=4) for i in range(5)]
    jobs += [job(f"b{i}", "B", 0, vcpus_per_host=3, memory_gib_per_host=1) for i in range(5)]
    order = drf_order(tenants, jobs, (0.0, 9.0, 18.0))
    assert sorted(order) == ["a0", "a1", "a2", "b0", "b1"]


def test_weighted_drf_gives_a_weight_two_tenant_twice_the_gpus():
    hosts = tuple(host(f"h{i}", gpus=8, cores_per_numa=64) for i in range(3))  # 24 GPUs
    queued = tuple(job(f"a{i}", "a", 1, submit_time=i) for i in range(30)) + tuple(
        job(f"b{i}", "b", 1, submit_time=i) for i in range(30)
    )
    p = plan(Snapshot(hosts, (tenant("a", weight=2.0), tenant("b", weight=1.0)), queued))
    placed = [pl.job_id[0] for pl in p.placements]
    assert placed.count("a") == 16 and placed.count("b") == 8
    shares = dict(p.dominant_shares)
    assert abs(shares["a"] - shares["b"]) < 1e-9  # 16/24/2 == 8/24/1


def test_a_tenant_whose_next_job_cannot_fit_does_not_block_others():
    hosts = (host("h0", gpus=4),)
    queued = (job("big", "a", 8), job("small", "b", 2), job("small2", "b", 2))
    p = plan(Snapshot(hosts, (tenant("a"), tenant("b")), queued))
    assert {pl.job_id for pl in p.placements} == {"small", "small2"}
    reason = p.pending_reason("big")
    assert reason is not None and reason.code == "no_host_with_free_gpus"
    assert reason.data["gpus_per_host"] == 8 and reason.data["max_free_gpus_on_a_host"] == 4


def test_within_a_tenant_priority_then_submit_order():
    hosts = (host("h0", gpus=2),)
    queued = (
        job("old-low", "a", 1, priority=0, submit_time=1),
        job("new-high", "a", 1, priority=5, submit_time=3),
        job("older-low", "a", 1, priority=0, submit_time=0),
    )
    p = plan(Snapshot(hosts, (tenant("a"),), queued))
    assert {pl.job_id for pl in p.placements} == {"new-high", "older-low"}


def test_shares_are_measured_against_what_the_tenant_may_use():
    # a is limited to 4 GPUs: holding 4 of them is a dominant share of 1, so b goes first
    hosts = (host("h0", gpus=8),)
    a = tenant("a", usage={"gpus": 3}, gpus=(0, 4))
    b = tenant("b", usage={"gpus": 3})
    p = plan(Snapshot(hosts, (a, b), (job("a1", "a", 1), job("b1", "b", 1))))
    shares = dict(p.dominant_shares)
    assert shares["a"] == 1.0
    assert abs(shares["b"] - 4000 / 8000) < 1e-9


def test_waiting_for_fair_share_says_so_with_numbers():
    hosts = (host("h0", gpus=2),)
    queued = (job("a1", "a", 1, submit_time=0), job("a2", "a", 1, submit_time=1),
              job("b1", "b", 1, submit_time=2))
    p = plan(Snapshot(hosts, (tenant("a", usage={"gpus": 2}), tenant("b")), queued))
    # b (share 0) gets a GPU first; a's second job finds the cluster full
    assert {pl.job_id for pl in p.placements} == {"b1", "a1"}
    reason = p.pending_reason("a2")
    assert reason.code == "waiting_for_fair_share"
    assert reason.data["dominant_share"] > reason.data["lowest_other_share"]
