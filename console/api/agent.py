"""Host-agent endpoints: register and heartbeat, authenticated by the host's own token.

``Authorization: Bearer <token>``; the token is checked against the host named
in the URL, so a token issued to one host is refused for any other (403).
Agents never reach the database: this is their only way in.

Bodies are ``hostagent.protocol`` messages (``Registration``, ``Heartbeat``),
decoded and validated from the raw body before anything is applied; a malformed
one is refused (400, the reason logged) and changes nothing. The answer
(``ConsoleAnswer``) is written in the agent's protocol version.
"""

import json
import logging

from django.shortcuts import get_object_or_404
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from console.core.actions.agent_checks import check_inputs_for_agent
from console.core.actions.agents import do_agent_heartbeat, do_agent_register
from console.core.agent_input import check_heartbeat_time
from console.core.models import Host
from hostagent.protocol import ConsoleAnswer, Heartbeat, Registration, SpecError, decode, encode

log = logging.getLogger("coupler.security")


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


def _refused(exc: Exception, what: str) -> Response:
    log.warning("refused an agent's %s: %s", what, exc)
    return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)


class RegisterView(AgentView):
    def post(self, request, name: str):
        host = self.host_or_403(request, name)
        if host is None:
            return self.forbidden()
        try:
            # Decoded straight from the body (no DRF parsing): one typed, validated read.
            data = json.loads(request.body)
            registration = decode(Registration, data)
        except (ValueError, RecursionError) as exc:  # SpecError is a ValueError
            return _refused(exc, "registration")
        # The inventory as sent (validated above): its digest says whether it changed.
        inventory = data.get("inventory") or {}
        try:
            host = do_agent_register(host, inventory=inventory,
                                     libvirt_uri=registration.libvirt_uri,
                                     agent_version=registration.agent_version,
                                     latency_endpoint=registration.latency_endpoint,
                                     protocol_version=registration.version,
                                     hypervisor=registration.hypervisor)
        except (SpecError, ValueError, TypeError, AttributeError, KeyError) as exc:
            # An inventory of the wrong shape: the registration's transaction rolled back.
            return Response({"inventory": [f"Malformed inventory: {exc}"]}, status=400)
        answer = ConsoleAnswer(host=host.name, state=host.state, queue=host.queue,
                               **check_inputs_for_agent(host, fresh=True))
        return Response(encode(answer, registration.version))


class HeartbeatView(AgentView):
    def post(self, request, name: str):
        host = self.host_or_403(request, name)
        if host is None:
            return self.forbidden()
        try:
            beat = decode(Heartbeat, request.body)
        except (SpecError, RecursionError) as exc:
            return _refused(exc, "heartbeat")
        if beat.host not in ("", host.name):
            return self.forbidden()
        try:
            check_heartbeat_time(host.pk, beat.sent_at.timestamp())
            summary = do_agent_heartbeat(host, beat)
        except SpecError as exc:
            return _refused(exc, "heartbeat")
        return Response(encode(ConsoleAnswer(host=host.name, **summary), beat.version))
