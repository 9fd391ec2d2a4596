"""End to end in headless Chromium: a tenant submits a job, watches it run and
cancels it; an admin edits a quota, cordons a host and opens an incident."""

import re

import pytest
from playwright.sync_api import expect

from console.core.choices import HostState, JobState
from console.core.models import Event, Host, Job, Quota

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def tenant_with_quota(tenant_a, cluster):
    from console.core.actions.tenants import do_set_quota

    do_set_quota(tenant_a, resource="gpus", guaranteed=4, limit=8)
    return tenant_a


def test_a_tenant_submits_watches_and_cancels_a_job(page, live_server, sign_in, member_a,
                                                    tenant_with_quota):
    sign_in(page, "alice")
    page.get_by_role("link", name="Jobs", exact=True).click()
    page.get_by_role("link", name="Submit a job").click()
    page.get_by_label("Name").fill("e2e-train")
    page.get_by_label("GPUs per host").fill("6")
    page.get_by_label("GPU model").select_option("A100-SXM4-40GB")
    # htmx preview: 6 GPUs borrow above a guarantee of 4.
    expect(page.locator("#quota-preview")).to_contain_text("Borrows")
    page.get_by_label("GPUs per host").fill("2")
    expect(page.locator("#quota-preview")).to_contain_text("Within guarantee")
    page.get_by_role("button", name="Submit job").click()

    expect(page.locator("#job-state")).to_have_attribute("data-state", "running",
                                                         timeout=15_000)
    job = Job.objects.get(name="e2e-train")
    assert job.state == JobState.RUNNING
    expect(page.locator("#job-live")).to_contain_text("dgx-")  # placement shown

    page.get_by_role("link", name="Cancel job…").click()
    page.get_by_role("button", name="Yes, cancel the job").click()
    expect(page.locator("#job-state")).to_have_attribute(
        "data-state", re.compile("cancelled|teardown"), timeout=15_000)
    expect(page.locator("#job-state")).to_have_attribute("data-state", "cancelled",
                                                         timeout=15_000)
    job.refresh_from_db()
    assert job.state == JobState.CANCELLED


def test_an_admin_edits_a_quota_cordons_a_host_and_drills_into_an_incident(
    page, live_server, sign_in, admin_user, tenant_with_quota, incident_e2e
):
    sign_in(page, "root")
    page.get_by_role("link", name="Tenants & quotas").click()
    page.get_by_role("link", name="Edit quotas").click()
    limit = page.get_by_label("Limit (row 1)")
    limit.fill("12")
    limit.dispatch_event("change")
    expect(page.locator("#whatif")).to_contain_text("No queued or running jobs")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".messages")).to_contain_text("saved")
    assert Quota.objects.get(tenant=tenant_with_quota, resource="gpus").limit == 12

    page.get_by_role("link", name="Hosts", exact=True).click()
    page.get_by_role("link", name="dgx-2").click()
    page.get_by_role("link", name="Cordon…").click()
    page.get_by_label("Reason").fill("PSU swap")
    page.get_by_role("button", name="Cordon dgx-2").click()
    expect(page.locator(".messages")).to_contain_text("recorded in the audit log")
    assert Host.objects.get(name="dgx-2").state == HostState.CORDONED
    assert Event.objects.filter(host__name="dgx-2", kind="cordon", reason="PSU swap").exists()

    page.get_by_role("link", name="Faults").click()
    page.get_by_role("link", name=incident_e2e.title).click()
    for heading in ("1. Host", "2. GPU", "3. Raw kernel lines", "4. What Xid 79 means",
                    "5. Recommended action", "6. Affected jobs and tenants"):
        expect(page.get_by_role("heading", name=heading)).to_be_visible()
    expect(page.locator("pre").first).to_contain_text("fallen off the bus")


@pytest.fixture
def incident_e2e(cluster, tenant_a):
    from console.core.choices import FaultKind
    from console.core.models import Gpu, Incident

    host = Host.objects.get(name="dgx-1")
    gpu = Gpu.objects.get(host=host, index=3)
    inc = Incident.objects.create(
        host=host, gpu=gpu, title="Xid 79 on dgx-1 GPU3", xid=79, fault=FaultKind.HARDWARE,
        raw_lines="kernel: NVRM: Xid (PCI:0000:4e:00): 79, GPU has fallen off the bus.",
        recommended_action="Drain the host and reseat the GPU.",
    )
    inc.tenants.add(tenant_a)
    return inc
