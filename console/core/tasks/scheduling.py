"""Scheduling cycle task (queue ``scheduler``). Filled in by the workflow engine."""

from celery import shared_task


@shared_task(name="console.core.tasks.scheduling.run_scheduling_cycle")
def run_scheduling_cycle() -> None:
    return None
