"""Jobs: the submit form and its validation, the live preview, the detail page
with its timeline, placement and pending reason, and cancel."""

import pytest

from console.core.choices import JobState
from console.core.models import Event, Job


def body(**overrides):
    data = {"tenant": "tenant-a", "name": "train-llm", "gpus_per_host": 2, "hosts": 1,
            "gpu_model": "", "vcpus_per_host": 8, "memory_gib_per_host": 64, "priority": 0,
            "preemptible": "on"}
    data.update(overrides)
    return data


def test_it_submits_a_job(login, member_a, quotas_a):
    client = login(member_a)
    response = client.post("/jobs/new/", body())
    job = Job.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/jobs/{job.pk}/"
    assert job.tenant == quotas_a and job.submitter == member_a
    assert job.state == JobState.QUEUED and job.gpus_per_host == 2
    assert Event.objects.filter(job=job, to_state=JobState.QUEUED, actor="alice").exists()


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"name": "has spaces!"}, "name", "Use letters (any script), digits"),
        ({"gpus_per_host": 17}, "gpus_per_host", "less than or equal to 16"),
        ({"gpus_per_host": 12}, "gpus_per_host", "No host has 12 GPUs; the largest has 8."),
        ({"gpu_model": "B200"}, "gpu_model", "Unknown GPU model 'B200'"),
        ({"gpu_milli": 500}, "gpu_milli", "only for jobs of exactly 1 GPU"),
        ({"gpu_milli": 1500, "gpus_per_host": 1}, "gpu_milli", "less than or equal to 999"),
        ({"vcpus_per_host": 0}, "vcpus_per_host", "greater than or equal to 1"),
        ({"vcpus_per_host": 1000}, "vcpus_per_host", "No host has 1000 cores"),
        ({"memory_gib_per_host": ""}, "memory_gib_per_host", "This field is required."),
        ({"hosts": 5, "gpus_per_host": 8}, "hosts", "A gang of 5 hosts"),
        ({"gpus_per_host": 8, "hosts": 2}, "gpus_per_host", "limit is 8: it could never"),
    ],
)
def test_it_shows_field_errors_inline(login, member_a, quotas_a, overrides, field, message):
    client = login(member_a)
    response = client.post("/jobs/new/", body(**overrides))
    assert response.status_code == 200
    assert not Job.objects.exists()
    html = response.content.decode()
    assert f'id="id_{field}_error"' in html, html
    assert message in html.replace("&#x27;", "'")


def test_the_preview_shows_borrowing_against_the_quota(login, member_a, quotas_a):
    client = login(member_a)
    response = client.post("/jobs/new/preview/", body(gpus_per_host=6))
    html = response.content.decode()
    assert response.status_code == 200
    assert "Borrows:" in html
    assert "borrows: preemptible" in html
    assert not Job.objects.exists()


def test_the_preview_shows_why_a_job_would_be_refused(login, member_a, quotas_a):
    client = login(member_a)
    html = client.post("/jobs/new/preview/", body(gpus_per_host=4, hosts=3)).content.decode()
    assert "This job would be refused" in html
    assert "limit is 8" in html


def test_the_preview_is_within_guarantee_for_a_small_job(login, member_a, quotas_a):
    client = login(member_a)
    html = client.post("/jobs/new/preview/", body(gpus_per_host=1)).content.decode()
    assert "Within guarantee" in html


def test_the_submit_form_is_wired_for_htmx(login, member_a, quotas_a):
    html = login(member_a).get("/jobs/new/").content.decode()
    assert 'hx-post="/jobs/new/preview/"' in html
    assert '<label for="id_gpus_per_host">' in html


def test_a_queued_job_says_why_it_is_pending_and_polls(login, member_a, quotas_a, submit):
    job = submit(quotas_a, member_a)
    Job.objects.filter(pk=job.pk).update(
        pending_code="no_capacity",
        pending_reason="No host has 2 free connected A100 GPUs: the best has 1.",
        pending_data={"free_gpus_best_host": 1, "wanted": 2},
    )
    html = login(member_a).get(f"/jobs/{job.pk}/").content.decode()
    assert "Why it is pending" in html
    assert "the best has 1" in html and "free_gpus_best_host" in html
    assert f'hx-get="/jobs/{job.pk}/live/"' in html and 'hx-trigger="every 2s"' in html


def test_a_running_job_shows_its_placement_and_stops_polling(login, member_a, quotas_a, submit,
                                                            place):
    job = place(submit(quotas_a, member_a), "dgx-1", [0, 1], cores=range(48, 56), numa=[3])
    html = login(member_a).get(f"/jobs/{job.pk}/live/").content.decode()
    assert "dgx-1" in html and "GPU0" in html and "GPU1" in html
    assert "48-55" in html
    assert "hx-trigger" not in html
    assert 'data-state="running"' in html


def test_cancel_asks_for_confirmation_first(login, member_a, quotas_a, submit):
    job = submit(quotas_a, member_a)
    client = login(member_a)
    response = client.get(f"/jobs/{job.pk}/cancel/")
    assert response.status_code == 200
    assert "Yes, cancel the job" in response.content.decode()
    job.refresh_from_db()
    assert job.state == JobState.QUEUED


def test_cancel_cancels_a_queued_job(login, member_a, quotas_a, submit):
    job = submit(quotas_a, member_a)
    response = login(member_a).post(f"/jobs/{job.pk}/cancel/", {"reason": "wrong data set"})
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.state == JobState.CANCELLED
    assert Event.objects.filter(job=job, to_state=JobState.CANCELLED,
                                reason="wrong data set").exists()


def test_cancel_tears_down_a_running_job(login, member_a, quotas_a, submit, place):
    job = place(submit(quotas_a, member_a), "dgx-1", [0])
    login(member_a).post(f"/jobs/{job.pk}/cancel/", {"reason": ""})
    job.refresh_from_db()
    assert job.state in (JobState.TEARDOWN, JobState.CANCELLED)


def test_a_finished_job_cannot_be_cancelled_again(login, member_a, quotas_a, submit):
    job = submit(quotas_a, member_a)
    client = login(member_a)
    client.post(f"/jobs/{job.pk}/cancel/")
    response = client.post(f"/jobs/{job.pk}/cancel/", follow=True)
    assert "already finished" in response.content.decode()


def test_the_list_filters_by_state(login, member_a, quotas_a, submit):
    submit(quotas_a, member_a, name="keep")
    gone = submit(quotas_a, member_a, name="gone")
    login(member_a).post(f"/jobs/{gone.pk}/cancel/")
    html = login(member_a).get("/jobs/?state=queued").content.decode()
    assert "keep" in html and ">gone<" not in html


def test_the_job_page_says_whether_the_job_requires_kvm(login, member_a, quotas_a, submit):
    kvm = submit(quotas_a, member_a, name="needs-kvm", require_kvm=True)
    plain = submit(quotas_a, member_a, name="any-hypervisor")
    client = login(member_a)
    assert "requires KVM on every host" in client.get(f"/jobs/{kvm.pk}/").content.decode()
    page = client.get(f"/jobs/{plain.pk}/").content.decode()
    assert "requires KVM on every host" not in page and "KVM or QEMU emulation" in page
    # The submit form offers the box, with the rule's label.
    assert 'name="require_kvm"' in client.get("/jobs/new/").content.decode()
