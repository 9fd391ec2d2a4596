# Host-agent endpoints (register, heartbeat), authenticated by per-host token.
urlpatterns: list = []
