# Host-agent endpoints (register, heartbeat), authenticated by per-host token.
from django.urls import include, path, re_path

from console.api.agent import heartbeat, register
from console.api.exceptions import api_not_found

app_name = "agent"
urlpatterns = [
    path("hosts/<str:name>/register/", register, name="register"),
    path("hosts/<str:name>/heartbeat/", heartbeat, name="heartbeat"),
]

PREFIX = "/api/v1/agent/"


class AgentRoot:
    """The URLconf of console.wsgi's bare agent route: these URLs only, at ``PREFIX``
    (console.urls includes them at the same place)."""

    urlpatterns = [
        path(PREFIX.lstrip("/"), include((urlpatterns, app_name))),
        re_path(r"^api/v1/(?P<path>.*)$", api_not_found),  # as console.urls answers
    ]
