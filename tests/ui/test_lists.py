"""Lists people work with: sortable columns, contains-matching filters kept
in the URL, bulk cancel and bulk cordon/drain behind a confirmation that
lists the consequences, and a live job list that keeps the user's view."""

import re

import pytest

from console.core.choices import HostState, JobState
from console.core.models import Event, Host, Job

pytestmark = pytest.mark.django_db


def _names(html: str) -> list[str]:
    return re.findall(r'<td><a href="/jobs/\d+/">([^<]+)</a></td>', html)


def test_columns_sort_both_ways(login, member_a, quotas_a, submit):
    for name in ("bravo", "alpha", "charlie"):
        submit(quotas_a, member_a, name=name)
    client = login(member_a)
    html = client.get("/jobs/?ordering=name").content.decode()
    assert _names(html) == ["alpha", "bravo", "charlie"]
    assert 'aria-sort="ascending"' in html and "?ordering=-name" in html
    assert _names(client.get("/jobs/?ordering=-name").content.decode()) == [
        "charlie", "bravo", "alpha"]


def test_gpu_model_and_host_filters_match_contained_text(login, member_a, quotas_a, submit,
                                                        place):
    submit(quotas_a, member_a, name="on-a100", gpu_model="A100-SXM4-40GB")
    submit(quotas_a, member_a, name="on-h100", gpu_model="H100-SXM5-80GB")
    placed = submit(quotas_a, member_a, name="placed")
    place(placed, "dgx-2", [4])
    client = login(member_a)
    assert _names(client.get("/jobs/?gpu_model=a100").content.decode()) == ["on-a100"]
    html = client.get("/jobs/?host=dgx&ordering=name").content.decode()
    assert _names(html) == ["placed"]
    # The live table re-reads the same address: filters and sort survive a refresh.
    assert 'hx-get="/jobs/?host=dgx&amp;ordering=name"' in html


def test_bulk_cancel_confirms_then_cancels_only_the_users_jobs(login, member_a, member_b,
                                                              quotas_a, tenant_b, submit, place):
    queued = submit(quotas_a, member_a, name="waiting")
    running = place(submit(quotas_a, member_a, name="busy"), "dgx-1", [0])
    foreign = submit(tenant_b, member_b, name="theirs", gpus_per_host=0)
    client = login(member_a)
    ids = [queued.pk, running.pk, foreign.pk]
    page = client.post("/jobs/bulk-cancel/", {"job": ids}).content.decode()
    consequences = page[page.index('id="bulk-consequences"'):]
    assert "waiting" in consequences and "Leaves the queue." in consequences
    assert "busy" in consequences and "VM destroyed, GPUs released" in consequences
    assert "theirs" not in page
    assert Job.objects.get(pk=queued.pk).state == JobState.QUEUED  # nothing done yet

    response = client.post("/jobs/bulk-cancel/", {"job": ids, "confirm": "1", "reason": "oops"})
    assert response.status_code == 302
    assert Job.objects.get(pk=queued.pk).state == JobState.CANCELLED
    assert Job.objects.get(pk=running.pk).state in (JobState.TEARDOWN, JobState.CANCELLED)
    assert Job.objects.get(pk=foreign.pk).state == JobState.QUEUED


def test_bulk_drain_lists_the_jobs_it_moves_and_is_for_admins(login, admin_user, member_a,
                                                            quotas_a, submit, place):
    place(submit(quotas_a, member_a, name="busy"), "dgx-1", [0])
    assert login(member_a).post("/hosts/bulk/", {"host": ["dgx-1"], "action": "drain"}
                                ).status_code == 403
    client = login(admin_user)
    page = client.post("/hosts/bulk/", {"host": ["dgx-1", "dgx-2"], "action": "drain"}
                       ).content.decode()
    assert "1 job will be torn down and requeued." in page and "busy" in page
    assert Host.objects.get(name="dgx-1").state == HostState.READY
    client.post("/hosts/bulk/", {"host": ["dgx-1", "dgx-2"], "action": "cordon",
                                 "confirm": "1", "reason": "rack maintenance"})
    assert set(Host.objects.filter(state=HostState.CORDONED).values_list("name", flat=True)) == {
        "dgx-1", "dgx-2"}
    assert Event.objects.filter(kind="cordon", reason="rack maintenance").count() == 2
