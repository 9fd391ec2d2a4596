# Celery autodiscovery imports console.core.tasks; pull in every task module.
from console.core.tasks import hosts, reconcile, scheduling, workflow  # noqa: F401
from console.core.tasks.beat import register_periodic_tasks  # noqa: F401
