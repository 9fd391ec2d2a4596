"""Invariants of every plan, on random clusters, tenants, running and queued work."""

from collections import defaultdict

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from scheduler import (
    POLICIES,
    GpuState,
    HostState,
    JobRequest,
    NumaState,
    Quota,
    Snapshot,
    TenantState,
    plan,
    usage_from_running,
)
from scheduler.quotas import job_request, placement_usage
from tests.scheduler.helpers import apply, running_from

KINDS = ["NV12", "NV4", "PIX", "PXB", "PHB", "NODE", "SYS"]
TENANTS = ["a", "b", "c"]


@st.composite
def hosts_st(draw):
    n = draw(st.integers(1, 4))
    hosts = []
    for i in range(n):
        numa_n = draw(st.integers(1, 2))
        g = draw(st.integers(0, 4)) if draw(st.booleans()) else 4
        model = draw(st.sampled_from(["A100", "T4"]))
        gpus = tuple(
            GpuState(k, model, k % numa_n, healthy=draw(st.booleans()) or k > 0) for k in range(g)
        )
        numa = tuple(
            NumaState(m, tuple(range(m * 16, m * 16 + draw(st.integers(2, 16)))),
                      draw(st.integers(8, 96)))
            for m in range(numa_n)
        )
        links = tuple((a, b, draw(st.sampled_from(KINDS))) for a in range(g) for b in range(a + 1, g))
        hosts.append(HostState(f"h{i}", gpus, numa, links, cordoned=draw(st.booleans())
                               and draw(st.booleans()), group=draw(st.sampled_from(["", "r1", "r2"]))))
    return tuple(hosts)


def jobs_st(prefix, max_size):
    return st.lists(
        st.builds(
            JobRequest,
            id=st.just(""),
            tenant=st.sampled_from(TENANTS),
            gpus_per_host=st.sampled_from([0, 1, 1, 1, 2, 2, 3]),
            hosts=st.sampled_from([1, 1, 1, 2]),
            gpu_models=st.sampled_from([(), (), ("A100",), ("T4",)]),
            gpu_milli=st.sampled_from([None, None, 250, 500, 1000]),
            vcpus_per_host=st.integers(0, 3),
            memory_gib_per_host=st.integers(0, 8),
            priority=st.integers(0, 2),
            preemptible=st.booleans(),
            submit_time=st.floats(0, 100),
        ),
        max_size=max_size,
    ).map(lambda js: [j.__class__(**{**{s: getattr(j, s) for s in j.__slots__}, "id": f"{prefix}{i}"})
                      for i, j in enumerate(js)])


quotas_st = st.lists(
    st.tuples(st.sampled_from(["gpus", "gpus:A100", "gpu_milli", "vcpus", "memory_gib"]),
              st.integers(0, 6), st.integers(0, 12)),
    max_size=3,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hosts=hosts_st(), first=jobs_st("r", 14), queued=jobs_st("q", 8),
       quotas=st.fixed_dictionaries({t: quotas_st for t in TENANTS}),
       weights=st.fixed_dictionaries({t: st.sampled_from([0.5, 1.0, 2.0]) for t in TENANTS}),
       policy=st.sampled_from(POLICIES))
def test_no_plan_overcommits_exceeds_limits_splits_gangs_or_preempts_below_guarantee(
    hosts, first, queued, quotas, weights, policy
):
    # running work: whatever a first plan placed
    base = plan(Snapshot(hosts, tuple(TenantState(t) for t in TENANTS), tuple(first)))
    by_id = {j.id: j for j in first}
    running = tuple(
        running_from(p, by_id[p.job_id].tenant, by_id[p.job_id].priority,
                     by_id[p.job_id].preemptible, by_id[p.job_id].submit_time)
        for p in base.placements
    )
    free = apply(hosts, [hp for r in running for hp in r.placement])
    usage = usage_from_running(running, free)
    tenants = tuple(
        TenantState(t, weights[t],
                    tuple(Quota(r, min(g, lim), lim) for r, g, lim in
                          {q[0]: q for q in quotas[t]}.values()),
                    usage.get(t, {}))
        for t in TENANTS
    )
    p = plan(Snapshot(free, tenants, tuple(queued), running=running, policy=policy))
    check_plan(free, tenants, running, queued, p)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hosts=hosts_st(), first=jobs_st("r", 16), queued=jobs_st("q", 6),
       guarantee=st.integers(1, 6), b_guarantee=st.integers(0, 4),
       b_memory=st.sampled_from([0, 10**6]),
       policy=st.sampled_from(POLICIES))
def test_preemption_plans_keep_every_invariant(hosts, first, queued, guarantee, b_guarantee,
                                               b_memory, policy):
    # b and c fill the cluster; a (guaranteed GPUs) then asks for whole GPUs
    first = [JobRequest(**{**{s: getattr(j, s) for s in j.__slots__},
                           "tenant": "b" if i % 3 else "c", "gpu_milli": None}) for i, j in enumerate(first)]
    queued = [JobRequest(**{**{s: getattr(j, s) for s in j.__slots__}, "tenant": "a",
                            "gpu_milli": None, "gpu_models": (), "gpus_per_host": max(1, j.gpus_per_host)})
              for j in queued]
    base = plan(Snapshot(hosts, tuple(TenantState(t) for t in TENANTS), tuple(first)))
    by_id = {j.id: j for j in first}
    running = tuple(
        running_from(p, by_id[p.job_id].tenant, by_id[p.job_id].priority,
                     by_id[p.job_id].preemptible, by_id[p.job_id].submit_time)
        for p in base.placements
    )
    free = apply(hosts, [hp for r in running for hp in r.placement])
    usage = usage_from_running(running, free)
    tenants = (
        TenantState("a", 1.0, (Quota("gpus", guarantee, 8),), usage.get("a", {})),
        # b_memory 10**6: b is always below its memory guarantee, yet its borrowed GPUs
        # stay preemptible for a tenant short of GPUs
        TenantState("b", 1.0, (Quota("gpus", b_guarantee, 16),
                               Quota("memory_gib", b_memory, 10**7)), usage.get("b", {})),
        TenantState("c", 1.0, (), usage.get("c", {})),
    )
    p = plan(Snapshot(free, tenants, tuple(queued), running=running, policy=policy))
    event(f"preemptions: {min(len(p.preemptions), 2)}")
    check_plan(free, tenants, running, queued, p)


def check_plan(free, tenants, running, queued, p):

    event(f"preemptions: {min(len(p.preemptions), 2)}")
    event(f"placements: {min(len(p.placements), 3)}")
    # every queued job is placed, reserved or pending -- exactly one
    placed = [x.job_id for x in p.placements]
    reserved = [x.job_id for x in p.reserved]
    pending = [j for j, _ in p.pending]
    assert sorted(placed + reserved + [j for j in pending if j not in reserved]) == sorted(
        j.id for j in queued)
    assert not set(placed) & set(pending)

    # capacity: new work fits in free capacity plus what preempted work gave back
    preempted = {x.job_id for x in p.preemptions}
    victims = [r for r in running if r.id in preempted]
    after = apply(free, [])
    back_milli: dict = defaultdict(int)
    back_cores: dict = defaultdict(set)
    back_mem: dict = defaultdict(int)
    for r in victims:
        for hp in r.placement:
            for gi in hp.gpu_indices:
                back_milli[(hp.host, gi)] += hp.gpu_milli
            back_cores[hp.host].update(hp.cores)
            for n, gib in hp.memory_by_numa:
                back_mem[(hp.host, n)] += gib
    hosts_by = {h.name: h for h in after}
    new_milli: dict = defaultdict(int)
    whole_on: dict = defaultdict(int)
    users: dict = defaultdict(int)
    cores_taken: dict = defaultdict(list)
    mem_taken: dict = defaultdict(int)
    jobs_by = {j.id: j for j in queued}
    for pl in p.placements + p.reserved:
        j = jobs_by[pl.job_id]
        assert len(pl.hosts) == j.hosts, "gang split"
        assert len({hp.host for hp in pl.hosts}) == j.hosts
        for hp in pl.hosts:
            h = hosts_by[hp.host]
            assert not h.cordoned
            assert len(hp.gpu_indices) == j.gpus_per_host
            assert len(hp.cores) == j.vcpus_per_host and hp.memory_gib == j.memory_gib_per_host
            for gi in hp.gpu_indices:
                g = next(g for g in h.gpus if g.index == gi)
                assert g.healthy
                assert not j.gpu_models or g.model in j.gpu_models
                new_milli[(hp.host, gi)] += hp.gpu_milli
                users[(hp.host, gi)] += 1
                if hp.gpu_milli == 1000:
                    whole_on[(hp.host, gi)] += 1
            cores_taken[hp.host].extend(hp.cores)
            for n, gib in hp.memory_by_numa:
                mem_taken[(hp.host, n)] += gib
    for (hn, gi), milli in new_milli.items():
        g = next(g for g in hosts_by[hn].gpus if g.index == gi)
        assert milli <= g.free_milli + back_milli[(hn, gi)], "GPU over-committed"
        if whole_on[(hn, gi)]:
            assert users[(hn, gi)] == 1 and not g.shared, "GPU passed through while shared"
            assert g.free_milli + back_milli[(hn, gi)] == 1000
    for hn, cores in cores_taken.items():
        assert len(cores) == len(set(cores)), "core given twice"
        free_cores = {c for n in hosts_by[hn].numa for c in n.free_cores} | back_cores[hn]
        assert set(cores) <= free_cores
    for (hn, n), gib in mem_taken.items():
        node = next(x for x in hosts_by[hn].numa if x.node == n)
        assert gib <= node.free_memory_gib + back_mem[(hn, n)]

    # limits: no tenant ends above a limit it was within before
    models = {(h.name, g.index): g.model for h in free for g in h.gpus}
    final = {t.name: dict(t.usage) for t in tenants}
    for pl in p.placements + p.reserved:
        for k, v in placement_usage(pl.hosts, models).items():
            final[jobs_by[pl.job_id].tenant][k] = final[jobs_by[pl.job_id].tenant].get(k, 0) + v
    for r in victims:
        for k, v in placement_usage(r.placement, models).items():
            final[r.tenant][k] -= v
    for t in tenants:
        for q in t.quotas:
            before = t.usage.get(q.resource, 0.0)
            assert final[t.name].get(q.resource, 0.0) <= max(q.limit, before) + 1e-9

    # preemption: only preemptible work of other tenants, never below a guarantee
    for x in p.preemptions:
        r = next(r for r in running if r.id == x.job_id)
        assert r.preemptible
        assert r.tenant != jobs_by[x.for_job].tenant
    lost: dict = defaultdict(lambda: defaultdict(float))
    for r in victims:
        for k, v in placement_usage(r.placement, models).items():
            lost[r.tenant][k] += v
    # never below a guarantee on a contested resource (what the preemptor was short of)
    contested: dict = defaultdict(set)
    for x in p.preemptions:
        assert x.resources, "a preemption names what is contested"
        req = {k for k, v in job_request(jobs_by[x.for_job]).items() if v > 0}
        assert set(x.resources) <= req
        contested[next(r for r in running if r.id == x.job_id).tenant].update(x.resources)
    for t in tenants:
        for q in t.quotas:
            if lost[t.name][q.resource] > 0 and q.guaranteed > 0 and (
                q.resource in contested[t.name]
                or (q.resource.startswith("gpus:") and "gpus" in contested[t.name])
            ):
                assert t.usage.get(q.resource, 0.0) - lost[t.name][q.resource] >= q.guaranteed - 1e-9
    # the first job to preempt: GPUs short at the start of the cycle are contested
    if p.preemptions:
        j = jobs_by[p.preemptions[0].for_job]
        with_gpus = sum(
            1 for h in free if not h.cordoned and sum(
                1 for g in h.gpus if g.healthy and g.free_milli == 1000 and not g.shared
                and (not j.gpu_models or g.model in j.gpu_models)) >= j.gpus_per_host)
        if j.gpus_per_host and not j.is_share and with_gpus < j.hosts:
            assert "gpus" in p.preemptions[0].resources
