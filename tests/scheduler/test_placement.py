"""Gangs, GPU sharing, limits, cordons and the reasons a job stays queued."""

from scheduler import GpuState, HostState, NumaState, Snapshot, admissible, fragmentation_rate, plan
from scheduler.model import WorkloadClass
from tests.scheduler.helpers import apply, host, job, tenant


def _plan(hosts, jobs, tenants=None, policy="fgd"):
    tenants = tenants or (tenant("t"),)
    return plan(Snapshot(tuple(hosts), tuple(tenants), tuple(jobs), policy=policy))


def test_a_gang_lands_on_all_its_hosts_at_once():
    hosts = [host(f"h{i}", gpus=8) for i in range(4)]
    p = _plan(hosts, [job("g", gpus=8, hosts=3)])
    (pl,) = p.placements
    assert len({hp.host for hp in pl.hosts}) == 3
    assert all(len(hp.gpu_indices) == 8 for hp in pl.hosts)


def test_a_gang_that_does_not_fit_whole_takes_nothing():
    hosts = [host("h0", gpus=8), host("h1", gpus=8), host("h2", gpus=4)]
    p = _plan(hosts, [job("g", gpus=8, hosts=3), job("after", gpus=4)])
    assert p.placement_of("g") is None
    assert p.pending_reason("g").code == "no_host_with_free_gpus"
    assert p.pending_reason("g").data["hosts_with_enough_gpus"] == 2
    assert p.placement_of("after") is not None


def test_a_gang_prefers_hosts_of_one_group():
    hosts = [host("a0", group="rack-a"), host("b0", group="rack-b"),
             host("a1", group="rack-a"), host("b1", group="rack-b"), host("b2", group="rack-b")]
    p = _plan(hosts, [job("g", gpus=8, hosts=3)], policy="first-fit")
    assert {hp.host for hp in p.placements[0].hosts} == {"b0", "b1", "b2"}


def test_gpu_shares_pack_onto_one_shared_gpu_under_best_fit():
    p = _plan([host("h", gpus=2)], [job(f"s{i}", gpus=1, gpu_milli=300, submit_time=i)
                                     for i in range(3)], policy="best-fit")
    gpus = {pl.hosts[0].gpu_indices for pl in p.placements}
    assert len(gpus) == 1 and all(pl.hosts[0].gpu_milli == 300 for pl in p.placements)


def test_fgd_puts_a_share_on_the_gpu_whose_use_fragments_least():
    # the mix is 300-milli shares: a third share on GPU0 would leave 100 milli no task of
    # the mix can use, so FGD (as published: GPU choice by the same gradient) takes GPU1
    p = _plan([host("h", gpus=2)], [job(f"s{i}", gpus=1, gpu_milli=300, submit_time=i)
                                     for i in range(3)], policy="fgd")
    gpus = [pl.hosts[0].gpu_indices for pl in sorted(p.placements, key=lambda x: x.job_id)]
    assert gpus[0] == gpus[1] and gpus[2] != gpus[0]


def test_a_shared_gpu_is_never_passed_through():
    h = host("h", gpus=2, free_milli={0: 700})  # GPU0 already shared
    p = _plan([h], [job("whole", gpus=1), job("whole2", gpus=1)])
    placed = [pl for pl in p.placements]
    assert [pl.hosts[0].gpu_indices for pl in placed] == [(1,)]
    assert p.pending_reason("whole2").code == "no_host_with_free_gpus"


def test_a_gpu_in_shared_mode_takes_shares_even_when_idle():
    h = HostState("h", (GpuState(0, "T4", 0, 1000, shared=True),), (NumaState(0, (0, 1), 8),))
    p = _plan([h], [job("whole", gpus=1), job("share", gpus=1, gpu_milli=500)])
    assert p.placement_of("whole") is None and p.placement_of("share") is not None


def test_allowed_models_are_respected():
    hosts = [host("t4", gpus=4, model="T4"), host("a100", gpus=4, model="A100")]
    p = _plan(hosts, [job("j", gpus=2, gpu_models=("A100",))])
    assert p.placements[0].hosts[0].host == "a100"
    p = _plan(hosts, [job("j", gpus=2, gpu_models=("H100",))])
    assert p.pending_reason("j").code == "no_host_with_free_gpus"
    assert "H100" in p.pending_reason("j").message


def test_a_limit_is_never_exceeded_and_the_reason_has_numbers():
    t = tenant("t", usage={"gpus": 6}, gpus=(0, 8))
    p = _plan([host("h")], [job("j", gpus=4)], [t])
    r = p.pending_reason("j")
    assert r.code == "over_limit"
    assert (r.data["resource"], r.data["limit"], r.data["usage"], r.data["over_by"]) == (
        "gpus", 8, 6, 2)
    assert "by 2" in r.message


def test_a_per_model_limit_steers_to_other_models():
    t = tenant("t", usage={"gpus:A100": 2}, gpus__A100=(0, 2))
    hosts = [host("a100", gpus=4, model="A100"), host("t4", gpus=4, model="T4")]
    p = _plan(hosts, [job("j", gpus=1)], [t])
    assert p.placements[0].hosts[0].host == "t4"


def test_cordoned_hosts_take_nothing_and_the_reason_says_so():
    p = _plan([host("h0", cordoned=True), host("h1", gpus=2)], [job("j", gpus=4)])
    r = p.pending_reason("j")
    assert r.code == "hosts_cordoned" and r.data["cordoned_hosts_that_fit"] == 1


def test_cpu_only_jobs_use_cores_and_memory_of_one_numa_node():
    h = host("h", gpus=0, numa_nodes=2, cores_per_numa=8, mem_per_numa=32)
    p = _plan([h], [job("c", gpus=0, vcpus_per_host=6, memory_gib_per_host=20)])
    hp = p.placements[0].hosts[0]
    assert len(hp.numa_nodes) == 1 and len(hp.cores) == 6 and hp.memory_gib == 20


def test_no_room_for_cpu_says_how_much_is_free():
    h = host("h", gpus=8, cores_per_numa=4)
    r = _plan([h], [job("j", gpus=1, vcpus_per_host=8)]).pending_reason("j")
    assert r.code == "no_host_with_free_cpu_memory" and r.data["max_free_vcpus"] == 4


def test_admissible_tells_never_from_not_now():
    t = tenant("t", gpus=(0, 8))
    hosts = [host("h0", gpus=8), host("h1", gpus=8, cordoned=True)]
    assert admissible(job("ok", gpus=8), t, hosts) is None
    assert admissible(job("lim", gpus=8, hosts=2), t, hosts).code == "exceeds_limit"
    assert admissible(job("big", gpus=16), tenant("u"), hosts).code == "larger_than_any_host"
    assert admissible(job("gang", gpus=8, hosts=2), tenant("u"), hosts).code == "hosts_cordoned"


def test_fragmentation_rate_counts_free_gpu_the_mix_cannot_use():
    whole = (WorkloadClass(gpus=1, weight=1.0),)
    full = host("h", gpus=2)
    assert fragmentation_rate([full], whole) == 0.0
    half = apply((full,), [])[0]
    half = HostState(half.name, (GpuState(0, "A100", 0, 500), GpuState(1, "A100", 0, 1000)),
                     half.numa, half.links)
    assert fragmentation_rate([half], whole) == 500 / 1500
    assert fragmentation_rate([half], [job("s", gpus=1, gpu_milli=400)]) == 0.0


def test_a_zero_share_means_a_whole_gpu_not_a_free_ride():
    h = host("h", gpus=2, free_milli={0: 0})  # GPU0 passed through to someone
    p = _plan([h], [job("z", gpus=1, gpu_milli=0), job("z2", gpus=1, gpu_milli=0)])
    assert [pl.hosts[0].gpu_indices for pl in p.placements] == [(1,)]
    assert p.placements[0].hosts[0].gpu_milli == 1000


def test_a_job_of_an_unknown_tenant_is_explained():
    p = _plan([host("h")], [job("j", "ghost", 1)])
    assert p.placements == () and p.pending_reason("j").code == "unknown_tenant"


def test_gang_preemption_frees_whole_hosts_for_a_guaranteed_tenant():
    from scheduler import usage_from_running
    from tests.scheduler.helpers import running_from

    hosts = (host("h0", gpus=4), host("h1", gpus=4))
    first = _plan(hosts, [job(f"b{i}", "b", 2, submit_time=i) for i in range(4)],
                  [tenant("b")], policy="first-fit")
    running = tuple(running_from(pl, "b", 0, True, float(i)) for i, pl in enumerate(first.placements))
    free = apply(hosts, [hp for r in running for hp in r.placement])
    usage = usage_from_running(running, free)
    p = plan(Snapshot(free, (tenant("a", gpus=(8, 8)), tenant("b", usage=usage["b"])),
                      (job("g", "a", 4, hosts=2),), running=running))
    assert sorted(x.job_id for x in p.preemptions) == ["b0", "b1", "b2", "b3"]
    assert len(p.reserved) == 1 and len(p.reserved[0].hosts) == 2
