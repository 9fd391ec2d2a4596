"""Periodic tasks for celery beat, registered on the console's app.

(Kept here rather than in settings.CELERY_BEAT_SCHEDULE so the intervals come
from the existing COUPLER_*_INTERVAL_S settings without another setting.)
"""

from celery.signals import beat_init
from django.conf import settings

from console.celery import app

PERIODIC = {
    "scheduling-cycle": ("console.core.tasks.scheduling.run_scheduling_cycle",
                         "COUPLER_SCHEDULE_INTERVAL_S", "scheduler"),
    "reconcile": ("console.core.tasks.reconcile.reconcile_cluster",
                  "COUPLER_RECONCILE_INTERVAL_S", "workflow"),
    "heartbeat-watchdog": ("console.core.tasks.hosts.check_heartbeats",
                           "COUPLER_RECONCILE_INTERVAL_S", "workflow"),
}


def beat_schedule() -> dict:
    return {
        name: {"task": task, "schedule": float(getattr(settings, interval)),
               "options": {"queue": queue, "expires": float(getattr(settings, interval))}}
        for name, (task, interval, queue) in PERIODIC.items()
    }


def register_periodic_tasks(**_kwargs) -> None:
    for name, entry in beat_schedule().items():
        app.conf.beat_schedule.setdefault(name, entry)


beat_init.connect(register_periodic_tasks, weak=False)
app.conf.beat_schedule = {**beat_schedule(), **(app.conf.beat_schedule or {})}
