"""Host-agent endpoints: register and heartbeat, authenticated by the host's own token.

``Authorization: Bearer <token>``; the token is checked against the host named
in the URL, so a token issued to one host is refused for any other (403).
Agents never reach the database: this is their only way in.

Bodies are ``hostagent.protocol`` messages (``Registration``, ``Heartbeat``),
decoded and validated from the raw body before anything is applied; a malformed
one is refused (400, the reason logged) and changes nothing. The answer
(``ConsoleAnswer``) is written in the agent's protocol version.

Plain Django views, not DRF: the agents are machines with their own credential, so
none of DRF's authentication, throttling, content negotiation or browsable API
applies, and a heartbeat is the console's most frequent request (1,000 hosts every
5 s). ``console.wsgi`` serves these URLs with only the middleware they need
(``AGENT_MIDDLEWARE``); the full stack (tests, ``runserver``) serves them the same.

A quiet heartbeat (nothing changed since the host's last one) is one conditional
UPDATE (``do_agent_quiet_heartbeat``) against what this process last read of the
host (``_seen``): the UPDATE re-checks that row — token hash included — so a stale
or revoked entry only means the full path runs, never a wrong answer.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading

import msgspec
from django.db import DataError, IntegrityError
from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt

from console.core.actions.agent_checks import check_inputs_for_agent
from console.core.actions.agents import (
    do_agent_heartbeat,
    do_agent_quiet_heartbeat,
    do_agent_register,
)
from console.core.agent_input import check_heartbeat_time
from console.core.models import Host
from console.core.models.inventory import hash_agent_token
from hostagent.protocol import ConsoleAnswer, Heartbeat, Registration, SpecError, decode, encode

log = logging.getLogger("coupler.security")

# What the bare agent route (console.wsgi) runs around these views: HTTPS redirect and
# security headers, the allowed-hosts check, the request id of the logs. Not sessions,
# CSRF, users, locale, messages, CSP or axes — an agent has none of them.
AGENT_MIDDLEWARE = (
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "console.logging.RequestIdMiddleware",
)

# Host name -> the Host as this process last read it (after a heartbeat that was
# applied in full). Only a host that presented its valid token gets an entry; the
# quiet UPDATE checks every field used from it, so entries never need expiring.
_seen: dict[str, Host] = {}
_seen_lock = threading.Lock()
SEEN_MAX = 20_000


def _remember(host: Host) -> None:
    with _seen_lock:
        if len(_seen) >= SEEN_MAX:
            _seen.clear()
        _seen[host.name] = host


def _forget(name: str) -> None:
    with _seen_lock:
        _seen.pop(name, None)


def _json(data: object, status: int = 200) -> HttpResponse:
    return HttpResponse(msgspec.json.encode(data), status=status,
                        content_type="application/json")


def _token(request) -> str:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() in ("bearer", "token") else ""


def _not_found() -> HttpResponse:
    return _json({"detail": "Not found."}, status=404)


def _forbidden() -> HttpResponse:
    return _json({"detail": "This token is not valid for this host."}, status=403)


def _not_allowed(request) -> HttpResponse:
    response = _json({"detail": f'Method "{request.method}" not allowed.'}, status=405)
    response["Allow"] = "POST, OPTIONS"
    return response


def _refused(exc: Exception, what: str) -> HttpResponse:
    log.warning("refused an agent's %s: %s", what, exc)
    return _json({"detail": str(exc)}, status=400)


def _host(name: str) -> Host | None:
    if "\x00" in name or len(name) > Host._meta.get_field("name").max_length:
        return None
    return Host.objects.filter(name=name).first()


def _host_or_response(request, name: str) -> Host | HttpResponse:
    """The host named in the URL if the request's token is its own; else the 404/403."""
    host = _host(name)
    if host is None:
        return _not_found()
    if not host.check_agent_token(_token(request)):
        return _forbidden()
    return host


@csrf_exempt
def register(request, name: str) -> HttpResponse:
    if request.method != "POST":
        return _not_allowed(request)
    host = _host_or_response(request, name)
    if isinstance(host, HttpResponse):
        return host
    _forget(host.name)
    try:
        # Decoded straight from the body: one typed, validated read.
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
    except (SpecError, ValueError, TypeError, AttributeError, KeyError,
            DataError, IntegrityError) as exc:
        # An inventory of the wrong shape: the registration's transaction rolled back.
        return _json({"inventory": [f"Malformed inventory: {exc}"]}, status=400)
    answer = ConsoleAnswer(host=host.name, state=host.state, queue=host.queue,
                           **check_inputs_for_agent(host, fresh=True))
    return _json(encode(answer, registration.version))


@csrf_exempt
def heartbeat(request, name: str) -> HttpResponse:
    if request.method != "POST":
        return _not_allowed(request)
    token = _token(request)
    seen = _seen.get(name)
    if seen is not None and not (token and secrets.compare_digest(
            seen.agent_token_hash, hash_agent_token(token))):
        seen = None  # another token (or none): judged on a fresh read below
    host = seen
    if host is None:
        host = _host_or_response(request, name)
        if isinstance(host, HttpResponse):
            return host
    try:
        beat = decode(Heartbeat, request.body)
    except (SpecError, RecursionError) as exc:
        return _refused(exc, "heartbeat")
    if beat.host not in ("", host.name):
        return _forbidden()
    try:
        check_heartbeat_time(host.pk, beat.sent_at.timestamp())
        summary = None
        if seen is not None:
            summary = do_agent_quiet_heartbeat(seen, beat)
            if summary is None:  # something changed, or the row is not what was seen
                _forget(name)
                host = _host(name)
                if host is None:
                    return _not_found()
                if not host.check_agent_token(token):
                    return _forbidden()
        if summary is None:
            summary = do_agent_heartbeat(host, beat)
            if summary.pop("quiet", False):
                _remember(host)
    except SpecError as exc:
        return _refused(exc, "heartbeat")
    return _json(encode(ConsoleAnswer(host=host.name, **summary), beat.version))
