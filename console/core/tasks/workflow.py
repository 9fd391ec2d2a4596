"""Provisioning and teardown tasks (queue ``workflow``). Filled in by the workflow engine."""

from celery import shared_task


@shared_task(name="console.core.tasks.workflow.teardown_job")
def teardown_job(job_id: int) -> None:
    return None
