"""The job page's VM panel: the host's hypervisor, the guest's console lines and the
isolation the host read back (verified, or the mismatches)."""

from console.core.models import Event, Host


def _report(job, host_name, evidence, console):
    host = Host.objects.get(name=host_name)
    Event.objects.create(job=job, host=host, kind="member_up", actor=f"agent:{host_name}",
                         data={"generation": job.generation, "evidence": evidence})
    facts = dict(host.facts or {})
    facts["reported_domains"] = {"console": {job.domain_name: console}}
    facts["hypervisor"] = {"hypervisor": "qemu", "hypervisor_warnings": ["KVM not usable"]}
    Host.objects.filter(pk=host.pk).update(facts=facts)


def test_the_job_page_shows_console_lines_and_verified_isolation(login, member_a, quotas_a,
                                                                 submit, place):
    job = place(submit(quotas_a, member_a), "dgx-1", [0, 1], cores=range(48, 50), numa=[3])
    evidence = {"verified": True, "mismatches": [],
                "vcpus": {"0": {"tid": 7, "affinity": [48], "policy": "SCHED_BATCH"}},
                "limits": {"memory.limit_in_bytes": "1610612736"},
                "cgroups": {"cpuset": "/coupler.partition/qemu-1-x/vcpu0"}}
    _report(job, "dgx-1", evidence, ["[ 1.0] Linux version", "COUPLER up"])
    html = login(member_a).get(f"/jobs/{job.pk}/").content.decode()
    assert "Isolation verified" in html and "SCHED_BATCH" in html and "1610612736" in html
    assert "COUPLER up" in html and "KVM not usable" in html and "qemu" in html


def test_the_job_page_shows_an_isolation_mismatch(login, member_a, quotas_a, submit, place):
    job = place(submit(quotas_a, member_a), "dgx-1", [0, 1], cores=range(48, 50), numa=[3])
    _report(job, "dgx-1", {"verified": False, "mismatches": ["vCPU 0 runs on CPUs [0, 1], planned 48"]},
            [])
    html = login(member_a).get(f"/jobs/{job.pk}/").content.decode()
    assert "Isolation mismatch" in html and "planned 48" in html
    assert "Isolation verified" not in html
