"""Send Celery work after the transaction that made it necessary commits.

Tasks are imported lazily: the actions layer must not import Celery task
modules at import time (they import actions themselves).
"""

from django.db import transaction


def _send(task_path: str, *args) -> None:
    module_name, _, task_name = task_path.rpartition(".")
    module = __import__(module_name, fromlist=[task_name])
    getattr(module, task_name).delay(*args)


def on_commit_send(task_path: str, *args) -> None:
    transaction.on_commit(lambda: _send(task_path, *args))


def request_scheduling_cycle() -> None:
    on_commit_send("console.core.tasks.scheduling.run_scheduling_cycle")


def request_teardown(job_id: int) -> None:
    on_commit_send("console.core.tasks.workflow.teardown_job", job_id)
