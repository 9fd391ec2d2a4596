# Celery autodiscovery imports console.core.tasks; pull in every task module.
from console.core.tasks import scheduling, workflow  # noqa: F401
