"""The default policy's two changes to FGD: whole GPU sets for multi-GPU tasks, and the
stranding tie-breaks among equal gradients (docs/scheduler.md, "Default host policy")."""

import pytest

from scheduler import Snapshot, plan
from scheduler.cluster import Host
from scheduler.model import WorkloadClass
from scheduler.policies import Fragmentation
from tests.scheduler.helpers import host, job, tenant


def _used(n: int) -> dict[int, int]:
    """free_milli for an 8-GPU host whose first n GPUs are taken whole."""
    return dict.fromkeys(range(n), 0)


def _host_frag(h, workload, whole_sets):
    return Fragmentation(workload, whole_sets=whole_sets).of_host(Host(h, 0))


def test_a_pair_task_cannot_use_the_odd_gpu_of_three_under_whole_sets():
    pairs = (WorkloadClass(gpus=2, weight=1.0),)
    three = host("h", free_milli=_used(5))
    # FGD as published: 3 >= 2 free GPUs, so all three are usable to a 2-GPU task
    assert _host_frag(three, pairs, whole_sets=False) == 0.0
    # whole sets: one pair is usable, the third GPU is a fragment
    assert _host_frag(three, pairs, whole_sets=True) == 1000.0
    four = host("h", free_milli=_used(4))
    assert _host_frag(four, pairs, whole_sets=True) == 0.0


@pytest.mark.parametrize("free", [1, 3, 8])
def test_whole_sets_change_nothing_for_one_gpu_tasks(free):
    ones = (WorkloadClass(gpus=1, weight=0.6), WorkloadClass(gpus=1, gpu_milli=400, weight=0.4))
    h = host("h", free_milli=_used(8 - free))
    assert _host_frag(h, ones, whole_sets=True) == _host_frag(h, ones, whole_sets=False)


def _first_host(hosts, jobs, policy, workload=()):
    p = plan(Snapshot(tuple(hosts), (tenant("t"),), tuple(jobs), policy=policy,
                      workload=tuple(workload)))
    return p.placements[0].hosts[0].host


def test_a_single_gpu_goes_where_it_breaks_no_pair():
    # a: 4 free GPUs (two pairs), b: 3 free (one pair and an odd one). FGD as published
    # sees no difference (ties by host order: a, leaving 3 + 3 = two pairs); the default
    # takes b's odd GPU and keeps three pairs.
    hosts = [host("a", free_milli=_used(4)), host("b", free_milli=_used(5))]
    mix = (WorkloadClass(gpus=2, weight=0.5), WorkloadClass(gpus=1, weight=0.5))
    one = [job("one", gpus=1)]
    assert _first_host(hosts, one, "fgd", mix) == "a"
    assert _first_host(hosts, one, "fgd-strand", mix) == "b"


def test_among_equal_gradients_a_gpu_task_takes_the_host_with_fewest_free_vcpus():
    hosts = [host("roomy", cores_per_numa=64), host("tight", cores_per_numa=32)]
    one = [job("one", gpus=1, vcpus_per_host=4)]
    mix = (WorkloadClass(gpus=1, vcpus=4, weight=1.0),)
    assert _first_host(hosts, one, "fgd", mix) == "roomy"  # as published: host order
    assert _first_host(hosts, one, "fgd-strand", mix) == "tight"


def test_then_the_host_with_least_free_memory():
    hosts = [host("roomy", mem_per_numa=512), host("tight", mem_per_numa=256)]
    one = [job("one", gpus=1, vcpus_per_host=4, memory_gib_per_host=16)]
    mix = (WorkloadClass(gpus=1, vcpus=4, memory_gib=16, weight=1.0),)
    assert _first_host(hosts, one, "fgd", mix) == "roomy"
    assert _first_host(hosts, one, "fgd-strand", mix) == "tight"


def test_the_gradient_still_comes_before_the_cpu_tie_break():
    # a 1-GPU task breaks the only pair of "pairs" (2 free) and one of the two pairs of
    # "four" (4 free, fewest vCPUs), but takes the odd GPU of "odd" (3 free): the
    # gradient picks "odd" although "four" has fewer free vCPUs.
    hosts = [host("pairs", free_milli=_used(6), cores_per_numa=64),
             host("odd", free_milli=_used(5), cores_per_numa=48),
             host("four", free_milli=_used(4), cores_per_numa=32)]
    mix = (WorkloadClass(gpus=2, weight=1.0),)
    assert _first_host(hosts, [job("one", gpus=1)], "fgd-strand", mix) == "odd"
