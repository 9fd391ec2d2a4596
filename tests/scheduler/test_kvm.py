"""A job may require KVM: placement skips hosts whose VMs run under QEMU's TCG
emulation, every member of a gang needs KVM, and a job short only of KVM hosts waits
with its own reason."""

from dataclasses import replace

from scheduler import Snapshot, admissible, plan
from tests.scheduler.helpers import host, job, tenant


def _plan(hosts, *jobs, policy="fgd-strand"):
    return plan(Snapshot(tuple(hosts), (tenant("t"),), tuple(jobs), policy=policy))


def _kvm(h, kvm=True):
    return replace(h, kvm=kvm)


def test_a_kvm_job_skips_tcg_hosts_even_when_they_score_better():
    # tcg-0 is half full (best fit would pick it); only kvm-1 runs KVM.
    tcg = _kvm(host("tcg-0", gpus=2, free_milli={0: 0}), kvm=False)
    kvm = _kvm(host("kvm-1", gpus=2))
    for policy in ("first-fit", "best-fit", "fgd-strand"):
        (p,) = _plan([tcg, kvm], job("k", gpus=1, require_kvm=True), policy=policy).placements
        assert p.hosts[0].host == "kvm-1", policy
        (p,) = _plan([tcg, kvm], job("j", gpus=1), policy=policy).placements
        assert p.hosts[0].host == "tcg-0", policy  # without the requirement, TCG is fine


def test_a_cpu_only_kvm_job_waits_on_tcg_hosts_with_the_kvm_reason():
    hosts = [_kvm(host(f"tcg-{i}", gpus=0), kvm=False) for i in range(2)]
    out = _plan(hosts, job("k", gpus=0, vcpus_per_host=2, memory_gib_per_host=4,
                           require_kvm=True))
    assert out.placements == ()
    reason = out.pending_reason("k")
    assert reason.code == "no_host_with_kvm"
    assert reason.data == {"hosts_needed": 1, "kvm_hosts": 0, "kvm_hosts_that_fit": 0,
                           "hosts_that_fit_without_kvm": 2}
    assert "KVM" in reason.message
    # The same hosts, one now running KVM: it is placed there.
    (p,) = _plan([hosts[0], _kvm(hosts[1])],
                 job("k", gpus=0, vcpus_per_host=2, memory_gib_per_host=4,
                     require_kvm=True)).placements
    assert p.hosts[0].host == "tcg-1"


def test_every_gang_member_needs_kvm():
    hosts = [_kvm(host("kvm-0")), _kvm(host("kvm-1")), _kvm(host("tcg-2"), kvm=False)]
    out = _plan(hosts, job("g", gpus=8, hosts=3, require_kvm=True))
    assert out.placements == ()
    reason = out.pending_reason("g")
    assert reason.code == "no_host_with_kvm"
    assert reason.data["kvm_hosts_that_fit"] == 2 and reason.data["hosts_needed"] == 3
    (p,) = _plan(hosts, job("g", gpus=8, hosts=2, require_kvm=True)).placements
    assert {hp.host for hp in p.hosts} == {"kvm-0", "kvm-1"}


def test_a_kvm_job_short_of_room_everywhere_gets_the_room_reason_not_the_kvm_one():
    # Too big for any host, KVM or not: KVM is not what it waits for.
    hosts = [_kvm(host("kvm-0", gpus=2, free_milli={0: 0, 1: 0})), _kvm(host("tcg-1", gpus=2,
             free_milli={0: 0, 1: 0}), kvm=False)]
    reason = _plan(hosts, job("k", gpus=1, require_kvm=True)).pending_reason("k")
    assert reason.code == "no_host_with_free_gpus"


def test_submit_time_a_kvm_job_on_a_cluster_without_kvm_waits_rather_than_never_runs():
    hosts = [_kvm(host("tcg-0", gpus=0), kvm=False)]
    k = job("k", gpus=0, vcpus_per_host=2, memory_gib_per_host=4, require_kvm=True)
    reason = admissible(k, tenant("t"), hosts)
    assert reason is not None and reason.code == "no_host_with_kvm"
    assert admissible(k, tenant("t"), [_kvm(hosts[0])]) is None
    # Too large for the host whatever its hypervisor: that is the reason given.
    big = replace(k, vcpus_per_host=1000)
    assert admissible(big, tenant("t"), hosts).code == "larger_than_any_host"


def test_hosts_that_differ_only_in_kvm_are_not_one_class():
    # The planner fits one representative per class of identical hosts.
    hosts = [_kvm(host("tcg-0", gpus=1), kvm=False), _kvm(host("kvm-1", gpus=1))]
    (p,) = _plan(hosts, job("k", gpus=1, require_kvm=True)).placements
    assert p.hosts[0].host == "kvm-1"


def test_a_job_naming_an_image_runs_only_where_the_catalogue_holds_it():
    # The image is only in the catalogue of kvm-1's cluster; tcg-0 would score better.
    a = replace(host("a-0", gpus=2, free_milli={0: 0}), images=frozenset({"ubuntu"}))
    b = replace(host("b-1", gpus=2), images=frozenset({"busybox"}))
    (p,) = _plan([a, b], job("i", gpus=1, image="busybox"), policy="best-fit").placements
    assert p.hosts[0].host == "b-1"
    (p,) = _plan([a, b], job("d", gpus=1), policy="best-fit").placements
    assert p.hosts[0].host == "a-0"  # the default image: any host
    full = replace(b, gpus=tuple(replace(g, free_milli=0) for g in b.gpus))
    out = _plan([a, full], job("i", gpus=1, image="busybox"))
    reason = out.pending_reason("i")
    assert reason.code == "no_host_with_image"
    assert reason.data == {"image": "busybox", "hosts_needed": 1, "hosts_with_image": 1,
                           "hosts_with_image_that_fit": 0, "hosts_that_fit_without_image": 1}
    # Submit time: it waits (the image's hosts may free up), it is not "never".
    assert admissible(job("i", gpus=1, image="busybox"), tenant("t"), [a]).code == \
        "no_host_with_image"
