"""Every console page fits its viewport — 1,366 px and 375 px, English and
简体中文 — with the longest real values the demo produces (a 2-host gang's
pinned cores, a long pending reason, a host checklist's evidence, an
incident's kernel lines); the menu collapses on a phone; list features work
in a real browser."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from console.core.choices import JobState
from console.core.models import CheckResult, Host, Job

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTHS = (1366, 375)
LANGUAGES = ("en", "zh-hans")
LONG_REASON = ("No room for the job on any host: it asks for 8 GPUs A100-SXM4-40GB per host on "
               "2 hosts; dgx-1 has 4 free (GPU0,GPU1,GPU2,GPU3 held by train-llm-70b-pretrain-"
               "stage2-long-run-with-a-very-long-name), dgx-2 is cordoned (PSU swap), "
               "hgx-1 has no A100-SXM4-40GB; borrowed capacity held by another tenant within its "
               "own guarantee on H100-SXM5-80GB is not reclaimed for a tenant above its guarantee.")


@pytest.fixture
def busy_cluster(tenant_with_quota, member_a, cluster, place, submit, incident_e2e):
    # A 2-host gang pinned to two whole NUMA nodes per host (the uncompressed
    # list is 64 numbers per host).
    cores = [*range(0, 32), *range(128, 160)]
    gang = submit(tenant_with_quota, member_a, name="gang-" + "x" * 50, gpus_per_host=4,
                  host_count=2)
    place(gang, "dgx-1", [2, 3, 0, 1], cores=cores, numa=(0, 1, 3))
    place(gang, "dgx-2", [2, 3, 0, 1], cores=cores, numa=(0, 1, 3))
    pending = submit(tenant_with_quota, member_a, name="waiting-for-room")
    Job.objects.filter(pk=pending.pk).update(pending_reason=LONG_REASON,
                                             pending_code="no_room",
                                             pending_data={"needs": list(range(0, 64))})
    CheckResult.objects.create(
        host=Host.objects.get(name="dgx-1"), check_id="cpu.isolation", status="fail",
        risk="high", title="Isolated cores",
        evidence={"isolcpus": ",".join(str(c) for c in range(2, 128)),
                  "cmdline": "BOOT_IMAGE=/vmlinuz-6.1.0-18-amd64 root=UUID=" + "f" * 64
                             + " ro quiet intel_iommu=on iommu=pt hugepagesz=1G hugepages=480",
                  "cores": list(range(0, 256))},
        remediation="Add isolcpus=" + ",".join(str(c) for c in range(16, 128)) + " to GRUB.",
        measured_at=timezone.now() - timedelta(minutes=3))
    return {"gang": gang, "pending": pending, "incident": incident_e2e}


@pytest.fixture
def tenant_with_quota(tenant_a, cluster):
    from console.core.actions.tenants import do_set_quota

    do_set_quota(tenant_a, resource="gpus", guaranteed=4, limit=16)
    return tenant_a


@pytest.fixture
def place():
    from console.core.models import Allocation, CoreClaim, Gpu

    def make(job, host_name, gpu_indices, cores, numa):
        host = Host.objects.get(name=host_name)
        cpu = Allocation.objects.create(job=job, host=host, gpu=None, milli=1000,
                                        cpus=list(cores), numa_nodes=list(numa), memory_gib=256)
        CoreClaim.objects.bulk_create(CoreClaim(allocation=cpu, host=host, core=c) for c in cores)
        for index in gpu_indices:
            gpu = Gpu.objects.get(host=host, index=index)
            Allocation.objects.create(job=job, host=host, gpu=gpu, milli=1000)
            Gpu.objects.filter(pk=gpu.pk).update(allocated_milli=1000)
        now = timezone.now()
        Job.objects.filter(pk=job.pk).update(state=JobState.RUNNING, scheduled_at=now,
                                              provisioning_at=now, running_at=now,
                                              pending_reason="", pending_code="")

    return make


@pytest.fixture
def submit():
    from console.core.actions.jobs import do_submit_job

    def make(tenant, user, **overrides):
        spec = {"name": "train", "gpus_per_host": 2, "host_count": 1, "vcpus_per_host": 8,
                "memory_gib_per_host": 64}
        spec.update(overrides)
        # The scheduling cycle must not move our hand-placed jobs: no enqueue.
        from unittest import mock

        with mock.patch("console.core.enqueue.request_scheduling_cycle"):
            return do_submit_job(tenant=tenant, submitter=user, **spec)

    return make


@pytest.fixture
def incident_e2e(cluster, tenant_a):
    from console.core.choices import FaultKind
    from console.core.models import Gpu, Incident

    host = Host.objects.get(name="dgx-1")
    gpu = Gpu.objects.get(host=host, index=5)
    inc = Incident.objects.create(
        host=host, gpu=gpu, title="Xid 79 on dgx-1 GPU5 (0000:b7:00.0)", xid=79,
        fault=FaultKind.HARDWARE, runbook="cuda_launch_failed",
        raw_lines="May 18 19:02:39 dgx-1 kernel: NVRM: Xid (PCI:0000:b7:00): 79, GPU has fallen "
                  "off the bus.\nMay 18 19:02:39 dgx-1 kernel: pcieport 0000:b0:01.1: AER: "
                  "Uncorrected (Fatal) error received: 0000:b7:00.0" + " padding" * 40,
        recommended_action="Drain the host and reseat the GPU.",
        runbook_evidence={"kernel_log": ["Xid 79 at 12:00:01 " + "z" * 200],
                          "topology": {"GPU5": ["NV12"] * 12}},
    )
    inc.tenants.add(tenant_a)
    return inc


def _pages(data, staff: bool) -> list[str]:
    gang, pending, inc = data["gang"].pk, data["pending"].pk, data["incident"].pk
    pages = ["/", "/jobs/", "/jobs/new/", f"/jobs/{gang}/", f"/jobs/{pending}/",
             f"/jobs/{pending}/cancel/", "/tenants/", "/tenants/tenant-a/", "/hosts/",
             "/hosts/dgx-1/", "/hosts/dgx-1/topology/", "/topology/", "/faults/",
             f"/faults/{inc}/", "/preferences/", "/tokens/", "/no/such/page/"]
    if staff:
        pages += ["/tenants/tenant-a/edit/", "/hosts/dgx-1/checks/", "/checks/",
                  "/hosts/dgx-1/drain/", f"/faults/{inc}/resolve/"]
    return pages


def _sign_in(page, base, username):
    page.goto(f"{base}/login/")
    page.locator("#id_username").fill(username)
    page.locator("#id_password").fill("correct horse battery staple")
    page.locator("form button[type=submit]").last.click()
    page.wait_for_url(f"{base}/")


def _culprit(page) -> str:
    """The element reaching furthest right outside any scrolling box."""
    return page.evaluate("""() => { const w = window.innerWidth; let worst = null;
                      const clipped = (el) => { for (let p = el.parentElement; p; p = p.parentElement) {
                          if (['auto', 'scroll', 'hidden'].includes(getComputedStyle(p).overflowX)) return true; }
                        return false; };
                      for (const el of document.querySelectorAll('body *')) {
                        if (clipped(el)) continue;
                        const r = el.getBoundingClientRect();
                        if (r.right > w + 1 && (!worst || r.right > worst.r)) {
                          worst = {r: r.right, d: el.tagName + '.' + el.className + ' ' + (el.textContent || '').slice(0, 40)}; } }
                      return worst && worst.d; }""")


def _overflowing(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


def test_no_page_is_wider_than_the_viewport(chromium, live_server, admin_user, busy_cluster):
    """As an admin (who sees every page a member sees, and the admin pages),
    each page in each language, measured at both widths."""
    too_wide = []
    for language in LANGUAGES:
        context = chromium.new_context(viewport={"width": WIDTHS[0], "height": 800},
                                       locale="zh-CN" if language == "zh-hans" else "en-US")
        context.set_default_timeout(10_000)
        page = context.new_page()
        _sign_in(page, live_server.url, "root")
        for path in _pages(busy_cluster, staff=True):
            page.set_viewport_size({"width": WIDTHS[0], "height": 800})
            page.goto(f"{live_server.url}{path}")
            expect(page.locator("html")).to_have_attribute("lang", language)
            for width in WIDTHS:
                page.set_viewport_size({"width": width, "height": 800})
                extra = _overflowing(page)
                if extra > 0:
                    too_wide.append(f"{language} {width}px {path}: +{extra}px ({_culprit(page)})")
        context.close()
    assert not too_wide, "\n".join(too_wide)


def test_the_gang_page_draws_its_placement_compressed(page, live_server, sign_in, admin_user,
                                                      busy_cluster):
    sign_in(page, "alice")
    page.goto(f"{live_server.url}/jobs/{busy_cluster['gang'].pk}/")
    node = page.locator('.placement-host').first.locator('[data-numa="0"]')
    expect(node).to_contain_text("0-15,128-143")
    expect(page.locator(".placement-host")).to_have_count(2)
    expect(page.get_by_text("GPU0 ↔ GPU1").first).to_be_visible()


def test_the_menu_collapses_on_a_phone(chromium, live_server, sign_in, member_a,
                                       tenant_with_quota):
    context = chromium.new_context(viewport={"width": 375, "height": 800})
    page = context.new_page()
    sign_in(page, "alice")
    jobs_link = page.get_by_role("link", name="Jobs", exact=True)
    expect(jobs_link).to_be_hidden()
    header = page.locator("header.topbar").bounding_box()
    assert header["height"] < 60  # one row, not four
    page.get_by_text("Menu").click()
    expect(jobs_link).to_be_visible()
    jobs_link.click()
    expect(page.get_by_role("heading", name="Jobs")).to_be_visible()
    context.close()


def test_language_switch_sort_and_bulk_cancel_in_the_browser(page, live_server, sign_in,
                                                            member_a, tenant_with_quota, submit):
    for name in ("bravo", "alpha"):
        submit(tenant_with_quota, member_a, name=name)
    sign_in(page, "alice")
    page.get_by_role("button", name="简体中文").click()
    expect(page.locator("html")).to_have_attribute("lang", "zh-hans")
    page.get_by_role("link", name="作业", exact=True).click()
    page.get_by_role("link", name="名称").click()
    expect(page).to_have_url(re.compile(r"ordering=name"))
    names = page.locator("#job-table tbody td:nth-child(3)").all_inner_texts()
    assert names == ["alpha", "bravo"]
    page.get_by_label("选择 alpha").check()
    page.get_by_label("选择 bravo").check()
    page.get_by_role("button", name="取消所选…").click()
    expect(page.locator("#bulk-consequences")).to_contain_text("离开队列。")
    page.get_by_role("button", name="是的，取消 2 个作业").click()
    expect(page.locator(".messages")).to_contain_text("已请求取消 2 个作业")
    assert set(Job.objects.values_list("state", flat=True)) == {JobState.CANCELLED}
    page.get_by_role("button", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")


def test_save_apply_and_delete_a_filter_in_the_browser(page, live_server, sign_in, member_a,
                                                      tenant_with_quota, submit):
    from console.core.models import SavedFilter

    submit(tenant_with_quota, member_a, name="queued-one")
    sign_in(page, "alice")
    page.get_by_role("button", name="简体中文").click()
    page.goto(f"{live_server.url}/jobs/?state=queued&ordering=name")
    page.get_by_label("将此筛选保存为").fill("排队的")
    page.get_by_role("button", name="保存", exact=True).click()
    # htmx swaps the panel in place: the new filter is a link, the page did not reload.
    link = page.locator("#saved-filters").get_by_role("link", name="排队的")
    expect(link).to_be_visible()
    assert SavedFilter.objects.get(user=member_a).query == "ordering=name&state=queued"
    page.goto(f"{live_server.url}/jobs/")
    page.locator("#saved-filters").get_by_role("link", name="排队的").click()
    expect(page).to_have_url(re.compile(r"/jobs/\?ordering=name&state=queued$"))
    expect(page.locator("#id_state")).to_have_value("queued")
    page.get_by_role("button", name="删除已保存的筛选 排队的").click()
    expect(page.locator("#saved-filters")).to_contain_text("还没有已保存的筛选。")
    assert not SavedFilter.objects.exists()
