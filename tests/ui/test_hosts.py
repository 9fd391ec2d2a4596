"""Hosts: list, detail, and the audited cordon, drain and uncordon."""

from console.core.choices import HostState, JobState
from console.core.models import Event, Host


def test_the_list_shows_state_health_and_gpu_use(login, member_a, cluster):
    Host.objects.filter(name="dgx-2").update(state=HostState.CORDONED)
    html = login(member_a).get("/hosts/").content.decode()
    for name in ("dgx-1", "dgx-2", "hgx-1", "ada-1"):
        assert name in html
    assert "Cordoned" in html and "0 allocated + 8 free = 8 GPUs" in html  # dgx-1
    assert "0 allocated + 0 free + 8 out of service = 8 GPUs" in html  # dgx-2, cordoned


def test_the_list_filters_by_state(login, member_a, cluster):
    Host.objects.filter(name="dgx-2").update(state=HostState.CORDONED)
    html = login(member_a).get("/hosts/?state=cordoned").content.decode()
    assert "dgx-2" in html and "hgx-1" not in html


def test_detail_shows_gpus_numa_and_jobs(login, admin_user, member_a, quotas_a, submit, place):
    job = place(submit(quotas_a, member_a, name="pinned"), "dgx-1", [0, 1])
    html = login(admin_user).get("/hosts/dgx-1/").content.decode()
    assert "A100-SXM4-40GB" in html and "0000:07:00.0" in html
    assert "NUMA nodes" in html and f"pinned #{job.pk}" in html


def test_detail_hides_other_tenants_job_names(login, member_b, member_a, quotas_a, submit,
                                               place):
    place(submit(quotas_a, member_a, name="secret-run"), "dgx-1", [0])
    html = login(member_b).get("/hosts/dgx-1/").content.decode()
    assert "secret-run" not in html
    assert "another tenant&#x27;s job" in html or "another tenant's job" in html
    assert "Cordon…" not in html


def test_cordon_needs_confirmation(login, admin_user, cluster):
    client = login(admin_user)
    response = client.get("/hosts/dgx-1/cordon/")
    assert response.status_code == 200 and "Cordon dgx-1?" in response.content.decode()
    assert Host.objects.get(name="dgx-1").state == HostState.READY


def test_cordon_and_uncordon_are_audited(login, admin_user, cluster):
    client = login(admin_user)
    response = client.post("/hosts/dgx-1/cordon/", {"reason": "fan replacement"})
    assert response.status_code == 302
    host = Host.objects.get(name="dgx-1")
    assert host.state == HostState.CORDONED
    assert Event.objects.filter(host=host, kind="cordon", actor="root",
                                reason="fan replacement").exists()
    client.post("/hosts/dgx-1/uncordon/", {"reason": ""})
    assert Host.objects.get(name="dgx-1").state == HostState.READY
    assert Event.objects.filter(host=host, kind="uncordon").exists()
    assert "fan replacement" in client.get("/hosts/dgx-1/").content.decode()


def test_drain_moves_jobs_off(login, admin_user, member_a, quotas_a, submit, place):
    job = place(submit(quotas_a, member_a), "dgx-1", [0, 1])
    client = login(admin_user)
    assert f"#{job.pk}" in client.get("/hosts/dgx-1/drain/").content.decode()
    client.post("/hosts/dgx-1/drain/", {"reason": "maintenance"})
    assert Host.objects.get(name="dgx-1").state == HostState.DRAINING
    job.refresh_from_db()
    assert job.state != JobState.RUNNING


def test_uncordon_of_an_offline_host_is_refused_with_a_message(login, admin_user, cluster):
    Host.objects.filter(name="dgx-1").update(state=HostState.OFFLINE)
    response = login(admin_user).post("/hosts/dgx-1/uncordon/", {"reason": ""}, follow=True)
    assert "heartbeating" in response.content.decode()
    assert Host.objects.get(name="dgx-1").state == HostState.OFFLINE


def test_an_unknown_action_is_404(login, admin_user, cluster):
    assert login(admin_user).get("/hosts/dgx-1/reboot/").status_code == 404


def test_the_list_and_the_page_show_the_hypervisor_and_why_not_kvm(login, member_a, cluster):
    Host.objects.filter(name="dgx-1").update(
        hypervisor="qemu", facts={"hypervisor": {"hypervisor": "qemu", "hypervisor_warnings": [
            "KVM not usable (no vmx/svm): VMs run under QEMU's TCG emulation"]}})
    Host.objects.filter(name="dgx-2").update(hypervisor="kvm")
    client = login(member_a)
    html = client.get("/hosts/").content.decode()
    assert "QEMU (TCG emulation)" in html and "KVM" in html
    page = client.get("/hosts/dgx-1/").content.decode()
    assert "QEMU (TCG emulation)" in page and "KVM not usable (no vmx/svm)" in page
    assert "not reported yet" in client.get("/hosts/hgx-1/").content.decode()
