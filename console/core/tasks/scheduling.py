"""Scheduling cycle task (queue ``scheduler``).

Requests are coalesced (``console.core.enqueue``): at most one cycle message
waits in the queue. The task clears the "pending" flag first, then waits for the
leader lock (instead of giving up and asking again a second later), so at most
one cycle runs and one waits behind it, and the waiting one reads the database
after the running one has committed.
"""

from celery import shared_task

from console.core import enqueue
from console.core.planning import run_cycle


@shared_task(name="console.core.tasks.scheduling.run_scheduling_cycle")
def run_scheduling_cycle() -> dict:
    """One cycle as leader (see ``console.core.planning``); beat runs it periodically."""
    eager = run_scheduling_cycle.app.conf.task_always_eager
    if not eager:
        enqueue.clear_cycle_pending()
    report = run_cycle(wait=not eager)
    return report.as_dict()
