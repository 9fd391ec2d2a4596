# Host-agent endpoints (register, heartbeat), authenticated by per-host token.
from django.urls import path

from console.api.agent import HeartbeatView, RegisterView

app_name = "agent"
urlpatterns = [
    path("hosts/<str:name>/register/", RegisterView.as_view(), name="register"),
    path("hosts/<str:name>/heartbeat/", HeartbeatView.as_view(), name="heartbeat"),
]
