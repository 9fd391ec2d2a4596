"""The host page shows members the hardware facts only: no other tenant's domains."""

from console.core.models import Host


def _report(job):
    host = Host.objects.get(name="dgx-1")
    host.facts = {**host.facts, "driver_version": "535.104.05",
                  "reported_domains": {"at": "2024-01-01T00:00:00+00:00",
                                       "running": [job.domain_name], "stopped": []}}
    host.latency_endpoint = "10.9.8.7:7471"
    host.checks_override_reason = f"override for {job.domain_name}"
    host.save()


def test_a_member_of_another_tenant_sees_no_domain_names(login, member_b, member_a, quotas_a,
                                                         submit, place):
    job = place(submit(quotas_a, member_a, name="secret-run"), "dgx-1", [0])
    _report(job)
    html = login(member_b).get("/hosts/dgx-1/").content.decode()
    assert job.domain_name not in html
    assert "reported_domains" not in html and "10.9.8.7" not in html
    assert "535.104.05" in html  # hardware facts stay


def test_staff_see_the_reported_domains(login, admin_user, member_a, quotas_a, submit, place):
    job = place(submit(quotas_a, member_a, name="secret-run"), "dgx-1", [0])
    _report(job)
    html = login(admin_user).get("/hosts/dgx-1/").content.decode()
    assert job.domain_name in html and "10.9.8.7" in html
