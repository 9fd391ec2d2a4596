"""Host-agent endpoints: register and heartbeat, authenticated by the host's own token.

``Authorization: Bearer <token>``; the token is checked against the host named
in the URL, so a token issued to one host is refused for any other (403).
Agents never reach the database: this is their only way in.
"""

from django.shortcuts import get_object_or_404
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from console.core.actions.agents import (
    check_inputs_for_agent,
    do_agent_heartbeat,
    do_agent_register,
)
from console.core.agent_input import check_heartbeat_body, check_heartbeat_time
from console.core.models import Host
from hostagent.protocol import SpecError


def _token(request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() in ("bearer", "token") else ""


class AgentView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    # Host tokens, not people: the user/anonymous API throttles do not apply.
    throttle_classes: list = []
    # Machine-to-machine endpoints with their own auth: not part of the public API schema.
    schema = None
    # Agents are not browsers: no session, no CSRF; the token is the credential.

    def host_or_403(self, request, name: str):
        host = get_object_or_404(Host, name=name)
        if not host.check_agent_token(_token(request)):
            return None
        return host

    def forbidden(self):
        return Response({"detail": "This token is not valid for this host."},
                        status=status.HTTP_403_FORBIDDEN)


class RegisterView(AgentView):
    def post(self, request, name: str):
        host = self.host_or_403(request, name)
        if host is None:
            return self.forbidden()
        if not isinstance(request.data, dict):
            return Response({"detail": "A registration is a JSON object."}, status=400)
        body = request.data
        inventory = body.get("inventory") or {}
        if not isinstance(inventory, dict):
            return Response({"inventory": ["Expected an object."]}, status=400)
        try:
            host = do_agent_register(host, inventory=inventory,
                                     libvirt_uri=str(body.get("libvirt_uri") or ""),
                                     agent_version=str(body.get("agent_version") or ""),
                                     latency_endpoint=str(body.get("latency_endpoint") or ""),
                                     hypervisor=body.get("hypervisor"))
        except (SpecError, ValueError, TypeError, AttributeError, KeyError) as exc:
            # An inventory of the wrong shape: the registration's transaction rolled back.
            return Response({"inventory": [f"Malformed inventory: {exc}"]}, status=400)
        return Response({"host": host.name, "state": host.state, "queue": host.queue,
                         **check_inputs_for_agent(host)})


class HeartbeatView(AgentView):
    def post(self, request, name: str):
        host = self.host_or_403(request, name)
        if host is None:
            return self.forbidden()
        if not isinstance(request.data, dict):
            return Response({"detail": "A heartbeat is a JSON object."}, status=400)
        body = dict(request.data)
        body.setdefault("host", host.name)
        if body["host"] != host.name:
            return self.forbidden()
        try:
            check_heartbeat_body(body)
            check_heartbeat_time(host.pk, body.get("sent_at"))
            summary = do_agent_heartbeat(host, body)
        except SpecError as exc:
            return Response({"detail": str(exc)}, status=400)
        return Response({"host": host.name, **summary})
