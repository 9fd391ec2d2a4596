"""The WSGI application: the console, and a bare route for the host agents.

Requests under ``/api/v1/agent/`` (register, heartbeat: every host every few
seconds) are served by a handler with only the middleware those endpoints need
(``console.api.agent.AGENT_MIDDLEWARE``) and a URLconf of just them; everything else
goes through the console's full stack (sessions, CSRF, auth, locale, messages, CSP,
axes, …). Both handlers are Django's own, so request signals (database connections),
allowed hosts, body size limits and error handling are the same.
"""

import os

from django.core.handlers.wsgi import WSGIHandler
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
console_application = get_wsgi_application()


class AgentHandler(WSGIHandler):
    """Django's handler with the agent API's middleware and URLconf only."""

    def load_middleware(self, is_async=False):
        from django.conf import settings

        from console.api.agent import AGENT_MIDDLEWARE

        full = settings.MIDDLEWARE
        try:
            # Kept in the full stack's order; one the settings leave out stays out.
            self.middleware = [m for m in full if m in AGENT_MIDDLEWARE]
            settings.MIDDLEWARE = self.middleware
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = full

    def resolve_request(self, request):
        from console.api.agent_urls import AgentRoot

        request.urlconf = AgentRoot
        return super().resolve_request(request)


agent_application = AgentHandler()


def application(environ, start_response):
    from console.api.agent_urls import PREFIX

    if environ.get("PATH_INFO", "").startswith(PREFIX):
        return agent_application(environ, start_response)
    return console_application(environ, start_response)
