"""Who may read the operational endpoints: /metrics and the API docs.

``/metrics`` shows every tenant's name, queue and share, so it is closed by
default: Prometheus sends ``Authorization: Bearer <COUPLER_METRICS_TOKEN>``,
or a staff member is signed in. ``COUPLER_METRICS_PUBLIC=1`` opens it to a
private scrape network, and nothing else does. ``/api/docs/`` and
``/api/schema/`` are for signed-in users, as docs/console.md says.
"""

from __future__ import annotations

import secrets
from functools import wraps

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse


def metrics_allowed(request) -> bool:
    if getattr(settings, "COUPLER_METRICS_PUBLIC", False):
        return True
    token = getattr(settings, "COUPLER_METRICS_TOKEN", "")
    given = request.headers.get("Authorization", "")
    if token and secrets.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return True
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated and user.is_staff)


def metrics_protected(view):
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not metrics_allowed(request):
            response = HttpResponse(
                "/metrics needs its bearer token (COUPLER_METRICS_TOKEN) or a staff sign-in\n",
                status=401, content_type="text/plain")
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
        return view(request, *args, **kwargs)

    return wrapped


def signed_in(view):
    """A class-based view's ``as_view()`` for signed-in users only (others: the login page)."""
    return login_required(view)
