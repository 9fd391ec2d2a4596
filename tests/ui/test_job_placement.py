"""The job page draws where the job sits: the host's NUMA nodes with the
job's GPUs, the cores pinned per node (compressed), memory, and the links
between the chosen GPUs."""

import re

import pytest

from console.core.choices import JobState
from console.core.models import Allocation, Job

pytestmark = pytest.mark.django_db

CORES = [*range(48, 56), *range(176, 184)]  # DGX A100 node 3: GPU0 and GPU1's node


def test_the_job_page_draws_the_chosen_gpus_nodes_cores_and_links(login, member_a, quotas_a,
                                                                 submit, place):
    job = place(submit(quotas_a, member_a), "dgx-1", [0, 1], cores=CORES, numa=(3,), memory=64)
    html = login(member_a).get(f"/jobs/{job.pk}/").content.decode()
    chosen = re.findall(r'data-numa="(\d+)" data-chosen="1"', html)
    assert chosen == ["3"]
    node3 = html[html.index('data-numa="3"'):html.index('data-numa="4"')]
    assert "48-55,176-183" in node3 and "→ GPU0, GPU1" in node3
    assert "64 GiB" in node3
    assert re.search(r'gpu-chip chosen"[^>]*>GPU0<', node3)
    assert "GPU0 ↔ GPU1" in html and "NV12" in html
    # Another node is drawn, not highlighted, with its own cores.
    node0 = html[html.index('data-numa="0"'):html.index('data-numa="1"')]
    assert "data-chosen" not in node0 and "0-15,128-143" in node0


def test_a_finished_job_says_where_it_ran_not_never_placed(login, member_a, quotas_a, submit):
    from console.core.transitions import transition_job

    job = submit(quotas_a, member_a)
    transition_job(job.pk, JobState.SCHEDULED, from_states=[JobState.QUEUED], reason="placed",
                   actor="scheduler", data={"hosts": ["dgx-2"], "gpus": {"dgx-2": [4, 5]}})
    Job.objects.filter(pk=job.pk).update(state=JobState.SUCCEEDED)
    assert not Allocation.objects.filter(job=job).exists()
    html = login(member_a).get(f"/jobs/{job.pk}/").content.decode()
    assert "Not placed on any host" not in html and "Never placed" not in html
    assert 'href="/hosts/dgx-2/"' in html and "GPU4, GPU5" in html


def test_a_failed_job_links_to_its_incident(login, member_a, quotas_a, submit, incident):
    job = submit(quotas_a, member_a)
    Job.objects.filter(pk=job.pk).update(state=JobState.FAILED, failure_reason="Xid 79")
    incident.jobs.add(job)
    html = login(member_a).get(f"/jobs/{job.pk}/").content.decode()
    assert f'href="/faults/{incident.pk}/"' in html


def test_the_submitted_message_is_cleared_once_the_job_settles(login, member_a, quotas_a,
                                                                submit, place):
    job = place(submit(quotas_a, member_a), "dgx-1", [0], cores=CORES[:4], numa=(3,))
    client = login(member_a)
    polled = client.get(f"/jobs/{job.pk}/live/", HTTP_HX_REQUEST="true").content.decode()
    assert '<ul class="messages" id="messages" hx-swap-oob="true"></ul>' in polled
    assert "hx-swap-oob" not in client.get(f"/jobs/{job.pk}/").content.decode()
