"""Faults: the drill-down from incident to host, GPU, kernel lines, meaning,
action and affected jobs; the runbook; resolve and return to service."""

from django.utils import timezone

from console.core.actions.faults import IncidentActionError, do_resolve_incident
from console.core.choices import HostState, IncidentState
from console.core.models import CheckResult, Event, Gpu, Host


def test_the_drill_down_shows_every_step(login, member_a, incident, submit, quotas_a):
    job = submit(quotas_a, member_a, name="victim")
    incident.jobs.add(job)
    html = login(member_a).get(f"/faults/{incident.pk}/").content.decode()
    for text in ("1. Host", "dgx-1", "2. GPU", "GPU3", "0000:4e:00.0",
                 "3. Raw kernel lines", "GPU has fallen off the bus", "4. What Xid 79 means",
                 "can no longer reach the GPU over PCIe", "5. Recommended action",
                 "Check system event logs", "6. Affected jobs and tenants", f"victim #{job.pk}",
                 "Tenant A"):
        assert text in html, text
    assert "Resolve and return to service" not in html  # members read, admins act


def test_the_runbook_shows_each_steps_evidence(login, admin_user, incident):
    CheckResult.objects.create(host=incident.host, check_id="memory.thp_madvise", status="fail",
                               risk="medium", evidence={"enabled": "[always] madvise never"},
                               remediation="echo madvise > .../enabled",
                               measured_at=timezone.now())
    html = login(admin_user).get(f"/faults/{incident.pk}/").content.decode()
    assert "CUDA_ERROR_LAUNCH_FAILED" in html
    assert "GPU3 is in the inventory with all 17 links recorded." in html
    assert "AER: Uncorrected (Fatal)" in html
    assert "Xid 79 at 12:00:01" in html
    assert "[always] madvise never" in html and "echo madvise" in html


def test_resolve_needs_confirmation_and_a_resolution(login, admin_user, incident):
    client = login(admin_user)
    assert "Resolve incident" in client.get(f"/faults/{incident.pk}/resolve/").content.decode()
    response = client.post(f"/faults/{incident.pk}/resolve/", {"resolution": ""})
    assert "This field is required." in response.content.decode()
    incident.refresh_from_db()
    assert incident.state == IncidentState.OPEN


def test_resolve_returns_gpu_and_host_to_service(login, admin_user, incident):
    Host.objects.filter(pk=incident.host_id).update(state=HostState.CORDONED)
    client = login(admin_user)
    response = client.post(f"/faults/{incident.pk}/resolve/", {
        "resolution": "GPU reseated, diagnostics clean", "release_gpu": "on",
        "uncordon_host": "on"})
    assert response.status_code == 302
    incident.refresh_from_db()
    assert incident.state == IncidentState.RESOLVED and incident.resolved_by == admin_user
    assert not Gpu.objects.get(pk=incident.gpu_id).cordoned
    assert Host.objects.get(pk=incident.host_id).state == HostState.READY
    kinds = set(Event.objects.filter(host=incident.host).values_list("kind", flat=True))
    assert {"incident_resolved", "gpu_uncordon", "uncordon"} <= kinds


def test_resolve_can_keep_the_gpu_out(login, admin_user, incident):
    login(admin_user).post(f"/faults/{incident.pk}/resolve/",
                           {"resolution": "GPU to be replaced under RMA"})
    assert Gpu.objects.get(pk=incident.gpu_id).cordoned


def test_members_cannot_resolve(login, member_a, incident):
    assert login(member_a).post(f"/faults/{incident.pk}/resolve/",
                                {"resolution": "x"}).status_code == 403


def test_resolving_twice_is_refused(admin_user, incident):
    do_resolve_incident(incident, admin_user, "done")
    try:
        do_resolve_incident(incident, admin_user, "again")
    except IncidentActionError as error:
        assert "already resolved" in str(error)
    else:
        raise AssertionError("resolved twice")


def test_the_list_filters_by_state(login, admin_user, incident):
    client = login(admin_user)
    assert incident.heading() in client.get("/faults/?state=open").content.decode()
    assert incident.heading() not in client.get("/faults/?state=resolved").content.decode()


def test_a_reported_xid_line_drills_down_to_its_gpu(login, admin_user, cluster):
    """A real kernel line names the GPU without its PCI function; the incident
    still finds GPU0 of dgx-1 (0000:07:00.0)."""
    from console.core.actions.xid_events import do_handle_xid
    from hostagent.protocol import XidEvent

    host = Host.objects.get(name="dgx-1")
    line = "kernel: NVRM: Xid (PCI:0000:07:00): 79, pid=4242, GPU has fallen off the bus."
    incident = do_handle_xid(host, XidEvent(kind="xid", line=line, xid=79, pci="0000:07:00",
                                            fault="hardware"))
    assert incident.gpu.index == 0
    html = login(admin_user).get(f"/faults/{incident.pk}/").content.decode()
    assert "0000:07:00.0" in html and "GPU0 is in the inventory" in html
    assert "fallen off the bus" in html


def test_a_gpu_with_another_open_incident_stays_out_of_service(admin_user, incident):
    from console.core.models import Incident

    second = Incident.objects.create(host=incident.host, gpu=incident.gpu, title="Xid 48 too",
                                     xid=48, fault="hardware")
    do_resolve_incident(incident, admin_user, "first one understood", release_gpu=True)
    assert Gpu.objects.get(pk=incident.gpu_id).cordoned
    do_resolve_incident(second, admin_user, "GPU replaced", release_gpu=True)
    assert not Gpu.objects.get(pk=incident.gpu_id).cordoned
