"""Borrowed work is preempted for a tenant under its guarantee, and only borrowed work."""

from scheduler import Snapshot, plan, usage_from_running
from tests.scheduler.helpers import apply, host, job, running_from, tenant


def _running(hosts, specs):
    """specs: (job id, tenant, gpus, priority, preemptible, submit_time) placed in order."""
    p = plan(Snapshot(tuple(hosts), tuple(tenant(t) for t in {s[1] for s in specs}),
                      tuple(job(s[0], s[1], s[2], submit_time=s[5]) for s in specs),
                      policy="first-fit"))
    assert len(p.placements) == len(specs)
    by_id = {s[0]: s for s in specs}
    return tuple(
        running_from(pl, by_id[pl.job_id][1], by_id[pl.job_id][3], by_id[pl.job_id][4],
                     by_id[pl.job_id][5])
        for pl in p.placements
    )


def _cycle(hosts, running, tenants, queued):
    free = apply(tuple(hosts), [hp for r in running for hp in r.placement])
    usage = usage_from_running(running, free)
    tenants = tuple(
        type(t)(t.name, t.weight, t.quotas, usage.get(t.name, {})) for t in tenants
    )
    return plan(Snapshot(free, tenants, tuple(queued), running=running))


def test_borrowed_work_is_preempted_for_a_tenant_under_its_guarantee():
    hosts = [host("h", gpus=8)]
    running = _running(hosts, [(f"b{i}", "b", 1, 0, True, i) for i in range(8)])
    p = _cycle(hosts, running, [tenant("a", gpus=(4, 8)), tenant("b")], [job("a1", "a", 2)])
    assert sorted(x.job_id for x in p.preemptions) == ["b6", "b7"]  # the newest two
    assert all(x.for_job == "a1" for x in p.preemptions)
    r = p.pending_reason("a1")
    assert r.code == "waiting_for_preemption" and r.data["preempted_jobs"] == 2
    assert [pl.job_id for pl in p.reserved] == ["a1"]
    assert p.placement_of("a1") is None


def test_lowest_priority_goes_first_then_newest():
    hosts = [host("h", gpus=4)]
    running = _running(hosts, [("old-low", "b", 1, 0, True, 0), ("new-high", "b", 1, 5, True, 3),
                               ("mid-low", "b", 1, 0, True, 1), ("x-high", "b", 1, 5, True, 2)])
    p = _cycle(hosts, running, [tenant("a", gpus=(2, 4)), tenant("b")], [job("a1", "a", 2)])
    assert sorted(x.job_id for x in p.preemptions) == ["mid-low", "old-low"]


def test_the_least_that_frees_enough_is_taken():
    hosts = [host("h0", gpus=4), host("h1", gpus=4)]
    # h0: one 4-GPU job; h1: four 1-GPU jobs. a needs 1 GPU: preempt one small job only.
    running = _running(hosts, [("big", "b", 4, 0, True, 0)] +
                       [(f"s{i}", "b", 1, 0, True, 10 + i) for i in range(4)])
    p = _cycle(hosts, running, [tenant("a", gpus=(1, 8)), tenant("b")], [job("a1", "a", 1)])
    assert [x.job_id for x in p.preemptions] == ["s3"]


def test_a_job_that_needs_a_whole_host_preempts_no_more_than_that_host():
    hosts = [host("h0", gpus=4), host("h1", gpus=4)]
    running = _running(hosts, [("big", "b", 4, 0, True, 0)] +
                       [(f"s{i}", "b", 1, 0, True, 10 + i) for i in range(4)])
    p = _cycle(hosts, running, [tenant("a", gpus=(4, 8)), tenant("b")], [job("a1", "a", 4)])
    assert [x.job_id for x in p.preemptions] == ["big"]


def test_no_tenant_is_pushed_below_its_own_guarantee():
    hosts = [host("h", gpus=8)]
    running = _running(hosts, [(f"b{i}", "b", 1, 0, True, i) for i in range(8)])
    tenants = [tenant("a", gpus=(4, 8)), tenant("b", gpus=(6, 8))]
    p = _cycle(hosts, running, tenants, [job("a1", "a", 2)])
    assert [x.job_id for x in p.preemptions] == ["b7", "b6"] or sorted(
        x.job_id for x in p.preemptions) == ["b6", "b7"]
    # three GPUs would take b below its 6 guaranteed: nothing is preempted, a waits
    p = _cycle(hosts, running, tenants, [job("a3", "a", 3)])
    assert p.preemptions == ()
    assert p.pending_reason("a3").code == "no_host_with_free_gpus"


def test_non_preemptible_work_is_never_touched():
    hosts = [host("h", gpus=4)]
    running = _running(hosts, [("keep0", "b", 2, 0, False, 0), ("keep1", "b", 1, 0, False, 1),
                               ("go", "b", 1, 9, True, 2)])
    p = _cycle(hosts, running, [tenant("a", gpus=(2, 4)), tenant("b")], [job("a1", "a", 2)])
    assert p.preemptions == ()
    p = _cycle(hosts, running, [tenant("a", gpus=(2, 4)), tenant("b")], [job("a1", "a", 1)])
    assert [x.job_id for x in p.preemptions] == ["go"]


def test_a_tenant_past_its_guarantee_waits_instead_of_preempting():
    hosts = [host("h", gpus=4)]
    running = _running(hosts, [("a0", "a", 2, 0, True, 0), ("b0", "b", 2, 0, True, 1)])
    p = _cycle(hosts, running, [tenant("a", gpus=(2, 4)), tenant("b")], [job("a1", "a", 1)])
    assert p.preemptions == () and p.placement_of("a1") is None


def test_freed_capacity_is_held_for_the_job_that_asked_for_it():
    hosts = [host("h", gpus=2)]
    running = _running(hosts, [("b0", "b", 1, 0, True, 0), ("b1", "b", 1, 0, True, 1)])
    p = _cycle(hosts, running, [tenant("a", gpus=(1, 2)), tenant("b"), tenant("c")],
               [job("a1", "a", 1), job("c1", "c", 1)])
    assert [x.job_id for x in p.preemptions] == ["b1"]
    assert p.placement_of("c1") is None


def test_own_work_is_never_preempted_for_itself():
    hosts = [host("h", gpus=2)]
    running = _running(hosts, [("a0", "a", 2, 0, True, 0)])
    p = _cycle(hosts, running, [tenant("a", gpus=(4, 4))], [job("a1", "a", 1)])
    assert p.preemptions == ()
