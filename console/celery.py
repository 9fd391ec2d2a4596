import inspect
import os

from celery import Celery, signals

from console.logging import job_id_var
from coupler_common import transport

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")

app = Celery("coupler")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


if str(app.conf.broker_url).startswith(transport.ALIAS):
    # The filesystem transport needs its folders before the first publish.
    transport.ensure_folders(app.conf.broker_transport_options or {})


@signals.task_prerun.connect
def _log_job_id(task=None, args=None, kwargs=None, **_extra):
    """Tasks take ids: a task whose first parameter is ``job_id`` logs it on every line."""
    job_id = (kwargs or {}).get("job_id")
    if job_id is None and args:
        params = list(inspect.signature(task.run).parameters) if task is not None else []
        if params[:1] == ["job_id"]:
            job_id = args[0]
    job_id_var.set("" if job_id is None else str(job_id))
