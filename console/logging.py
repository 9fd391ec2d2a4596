"""Request and job ids on every log line.

``RequestIdMiddleware`` takes the proxy's ``X-Request-ID`` when it is a sane
token (else draws one), echoes it in the response and keeps it in a context
variable for the request; Celery's ``task_prerun`` (``console/celery.py``)
does the same with a task's ``job_id``. ``ContextFilter`` copies both onto
each log record, so the JSON formatter (settings.LOGGING) writes them as
fields: ``{"time": ..., "level": ..., "logger": ..., "message": ...,
"request_id": ..., "job_id": ...}``.
"""

from __future__ import annotations

import logging
import re
import uuid
from contextvars import ContextVar

request_id_var: ContextVar[str] = ContextVar("request_id", default="")
job_id_var: ContextVar[str] = ContextVar("job_id", default="")

REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = request_id_var.get() or "-"
        if not getattr(record, "job_id", None):
            record.job_id = job_id_var.get() or "-"
        return True


class RequestIdMiddleware:
    header = "HTTP_X_REQUEST_ID"

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        given = request.META.get(self.header, "")
        request_id = given if REQUEST_ID_RE.match(given) else uuid.uuid4().hex
        request.request_id = request_id
        token = request_id_var.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response["X-Request-ID"] = request_id
        return response
