"""The names the console and the agent must spell alike."""

from coupler_common.naming import DOMAIN_PREFIX, domain_name, host_queue, job_id_of_domain


def test_a_jobs_domain_name_reads_back_as_its_id():
    assert domain_name(42) == "coupler-job-42"
    assert job_id_of_domain(domain_name(42)) == 42


def test_other_domains_are_not_ours():
    for name in ("vm-42", "coupler-job-", "coupler-job-4x", f"{DOMAIN_PREFIX}-1", "coupler-job-٤٢"):
        assert job_id_of_domain(name) is None, name


def test_a_hosts_queue():
    assert host_queue("dgx-1") == "host.dgx-1"
