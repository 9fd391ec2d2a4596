"""Scheduling cycle task (queue ``scheduler``)."""

from celery import shared_task

from console.core.planning import run_cycle


@shared_task(name="console.core.tasks.scheduling.run_scheduling_cycle")
def run_scheduling_cycle() -> dict:
    """One cycle as leader (see ``console.core.planning``); beat runs it periodically."""
    report = run_cycle()
    if not report.ran and not run_scheduling_cycle.app.conf.task_always_eager:
        # Another leader holds the lock and may have read the database before the
        # change that asked for this cycle: look again shortly.
        run_scheduling_cycle.apply_async(countdown=1)
    return report.as_dict()
