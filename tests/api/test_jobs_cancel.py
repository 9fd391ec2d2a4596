"""POST /api/v1/jobs/{id}/cancel/."""

from console.core.models import Job


def cancel(client, job, **body):
    return client.post(f"/api/v1/jobs/{job.pk}/cancel/", body, format="json")


def test_member_of_a_cancels_a_queued_job(job_a, member_a, client_for):
    response = cancel(client_for(member_a), job_a, reason="no longer needed")
    assert response.status_code == 200, response.content
    assert response.json()["state"] == "cancelled"
    assert response.json()["finished_at"]
    job_a.refresh_from_db()
    assert job_a.state == "cancelled"
    assert job_a.events.last().reason == "no longer needed"
    assert job_a.events.last().actor == "alice"


def test_cancelling_a_running_job_tears_it_down_first(tenant_a, member_a, make_job, client_for):
    job = make_job(tenant_a, state="running")
    response = cancel(client_for(member_a), job)
    assert response.status_code == 200
    assert response.json()["state"] == "teardown"
    assert response.json()["teardown_outcome"] == "cancelled"


def test_cancelling_a_finished_job_is_409_with_a_message(tenant_a, member_a, make_job,
                                                         client_for):
    job = make_job(tenant_a, state="succeeded")
    response = cancel(client_for(member_a), job)
    assert response.status_code == 409
    assert "finished" in response.json()["detail"]
    job.refresh_from_db()
    assert job.state == "succeeded"


def test_member_of_b_gets_404_cancelling_tenant_a_job(job_a, member_b, client_for):
    assert cancel(client_for(member_b), job_a).status_code == 404
    assert Job.objects.get(pk=job_a.pk).state == "queued"


def test_user_without_membership_gets_404_cancelling(job_a, outsider, client_for):
    assert cancel(client_for(outsider), job_a).status_code == 404
    assert Job.objects.get(pk=job_a.pk).state == "queued"


def test_admin_cancels_any_job(job_b, admin_user, client_for):
    assert cancel(client_for(admin_user), job_b).status_code == 200
    assert Job.objects.get(pk=job_b.pk).state == "cancelled"


def test_anonymous_gets_401_cancelling(job_a, client_for):
    assert cancel(client_for(None), job_a).status_code == 401
    assert Job.objects.get(pk=job_a.pk).state == "queued"


def test_a_too_long_reason_is_400(job_a, member_a, client_for):
    response = cancel(client_for(member_a), job_a, reason="x" * 501)
    assert response.status_code == 400
    assert "reason" in response.json()
    assert Job.objects.get(pk=job_a.pk).state == "queued"


def test_jobs_cannot_be_edited_or_deleted(job_a, admin_user, client_for):
    client = client_for(admin_user)
    assert client.patch(f"/api/v1/jobs/{job_a.pk}/", {"priority": 5}).status_code == 405
    assert client.delete(f"/api/v1/jobs/{job_a.pk}/").status_code == 405
