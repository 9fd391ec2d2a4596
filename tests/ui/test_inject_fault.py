"""`manage.py inject_fault` makes a fault happen on a simulated host through
the agent's path (a kernel line the agent's scanner reads), and the console
then tells the truth about it: the GPU reads faulted, the resolve form does
not pre-tick returning it to service, and the moved job is not "running" on
the faulty host."""

import re
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from console.core.choices import JobState
from console.core.models import Host, Incident, Job

pytestmark = pytest.mark.django_db


@pytest.fixture
def sim_var(settings, tmp_path, cluster):
    settings.VAR_DIR = tmp_path
    Host.objects.update(simulated=True)
    return tmp_path


def _running_on_gpu0(submit, place, tenant, user):
    job = place(submit(tenant, user), "dgx-1", [0], cores=range(48, 52), numa=(3,))
    Job.objects.filter(pk=job.pk).update(running_at=timezone.now() - timedelta(minutes=5))
    return job


def test_the_line_reaches_the_agents_scanner(sim_var, quotas_a, member_a, submit, place):
    from hostagent.xid import XidScanner

    _running_on_gpu0(submit, place, quotas_a, member_a)
    call_command("inject_fault", "xid79", host="dgx-1")
    events = XidScanner(sim_var / "sim-kernel" / "dgx-1.log", sim_var / "cursor.json").scan()
    assert [(e.xid, e.pci, e.fault) for e in events] == [(79, "0000:07:00", "hardware")]
    assert not Incident.objects.exists()  # the agent's heartbeat, not the command, reports it


def test_xid79_faults_the_gpu_and_moves_the_job(sim_var, quotas_a, member_a, admin_user, login,
                                                submit, place):
    job = _running_on_gpu0(submit, place, quotas_a, member_a)
    call_command("inject_fault", "xid79", host="dgx-1", now=True)
    incident = Incident.objects.get()
    assert incident.xid == 79 and incident.gpu.index == 0 and incident.fault == "hardware"
    job.refresh_from_db()
    assert job.state == JobState.TEARDOWN
    client = login(admin_user)
    affected = client.get(f"/faults/{incident.pk}/").content.decode()
    assert "Being moved off dgx-1" in affected
    # The agent answers that the domain is gone: the job leaves dgx-1.
    from console.core.actions.workflow import do_record_member_down

    do_record_member_down(job.pk, "dgx-1", job.generation)
    job.refresh_from_db()
    assert not job.allocations.filter(host__name="dgx-1").exists()

    html = client.get(f"/faults/{incident.pk}/").content.decode()
    health = re.search(r'<dd id="gpu-health">(.*?)</dd>', html, re.S).group(1)
    assert "Faulted" in health and "Healthy" not in health
    affected = html[html.index('id="affected-jobs"'):]
    assert "Moved off dgx-1" in affected
    assert not re.search(r"Running</span>\s*on dgx-1", affected)
    host_html = client.get("/hosts/dgx-1/").content.decode()
    assert f'href="/faults/{incident.pk}/">Faulted' in host_html

    form = client.get(f"/faults/{incident.pk}/resolve/").content.decode()
    release = re.search(r'<input[^>]*name="release_gpu"[^>]*>', form).group(0)
    assert "checked" not in release


def test_xid13_fails_the_job_and_leaves_the_gpu_in_service(sim_var, quotas_a, member_a, login,
                                                           submit, place):
    job = _running_on_gpu0(submit, place, quotas_a, member_a)
    call_command("inject_fault", "xid13", host="dgx-1", now=True)
    incident = Incident.objects.get()
    assert incident.xid == 13 and incident.fault == "application"
    job.refresh_from_db()
    assert job.state in (JobState.TEARDOWN, JobState.FAILED)
    assert not incident.gpu.cordoned
    html = login(member_a).get(f"/jobs/{job.pk}/").content.decode()
    assert f'href="/faults/{incident.pk}/"' in html


def test_aer_opens_a_hardware_incident(sim_var, quotas_a, member_a, submit, place):
    _running_on_gpu0(submit, place, quotas_a, member_a)
    call_command("inject_fault", "aer", host="dgx-1", now=True)
    incident = Incident.objects.get()
    assert incident.fault == "hardware" and "AER" in incident.raw_lines


def test_a_real_host_is_refused(settings, tmp_path, cluster):
    from django.core.management.base import CommandError

    settings.VAR_DIR = tmp_path
    with pytest.raises(CommandError, match="real host"):
        call_command("inject_fault", "xid79", host="dgx-1")
