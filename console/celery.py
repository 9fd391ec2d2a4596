import os

from celery import Celery

from hostagent import transport

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")

app = Celery("coupler")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


if str(app.conf.broker_url).startswith(transport.ALIAS):
    # The filesystem transport needs its folders before the first publish.
    transport.ensure_folders(app.conf.broker_transport_options or {})
