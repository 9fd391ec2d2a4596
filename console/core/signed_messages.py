"""The console's end of the signed broker messages (``hostagent.protocol.signing``).

Commands to host X are sealed with X's message key (derived from the stored
SHA-256 of X's agent token); answers are opened with the key of the host the
envelope names as its sender, so the host an answer is applied to is the one
that signed it, never a name in its body. Nonces are remembered in the Django
cache (Redis in production: one store for every worker process) until they
expire; a refused message is logged as a warning with its reason and recorded
nowhere else: it has no effect.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache

from console.core.models import Host
from hostagent.protocol import Message, encode, peer_version, signing

log = logging.getLogger("coupler.security")


def ttl_s() -> float:
    return float(getattr(settings, "COUPLER_MESSAGE_TTL_S", signing.DEFAULT_TTL_S))


def host_key(host_name: str) -> bytes | None:
    return host_key_and_version(host_name)[0]


def host_key_and_version(host_name: str) -> tuple[bytes | None, int]:
    """The host's message key and the protocol version its agent last spoke
    (``Host.facts["protocol_version"]``; 1 before any agent told), in one query."""
    row = (Host.objects.filter(name=host_name)
           .values_list("agent_token_hash", "facts__protocol_version").first())
    digest, version = row or ("", None)
    return (signing.message_key(digest) if digest else None), peer_version(version)


def first_time(nonce: str, exp: float, now: float) -> bool:
    # cache.add is atomic on Redis and memcached: exactly one worker wins a nonce.
    return cache.add(f"coupler:nonce:{nonce}", 1, timeout=max(1, int(exp - now) + 1))


class NoKey(Exception):
    """The host has no agent token yet: nothing can be sent to it."""


def seal_command(host_name: str, task: str, command: Message | dict[str, Any]) -> dict[str, Any]:
    """The signed envelope of ``command``, written in the version the host's agent speaks."""
    key, version = host_key_and_version(host_name)
    if key is None:
        raise NoKey(f"host {host_name!r} has no agent token: issue one before sending commands")
    body = encode(command, version) if isinstance(command, Message) else command
    return signing.seal(body, sender=signing.CONSOLE,
                        recipient=signing.host_principal(host_name), task=task, key=key,
                        ttl_s=ttl_s())


@dataclass(frozen=True)
class Answer:
    host: str  # the verified sender
    payload: dict[str, Any]
    context: dict[str, Any]


def open_answer(envelope: object, task: str) -> Answer | None:
    """The verified answer, or None (logged) when it must have no effect."""

    def key_for(sender: str) -> bytes | None:
        if not sender.startswith("host:"):
            return None
        return host_key(sender.removeprefix("host:"))

    try:
        opened = signing.open_envelope(envelope, recipient=signing.CONSOLE, task=task,
                                       key_for=key_for, first_time=first_time)
        host = opened.sender.removeprefix("host:")
        payload, context = opened.body.get("payload"), opened.body.get("context")
        if not isinstance(payload, dict) or not isinstance(context, dict):
            raise signing.Refused("body lacks its payload or context object")
        claimed = payload.get("host")
        if claimed not in (None, "", host):
            raise signing.Refused(f"signed by {host!r} but speaks for {claimed!r}")
    except signing.Refused as exc:
        sender = envelope.get("from") if isinstance(envelope, dict) else None
        log.warning("refused %s answer (claimed sender %r): %s", task, sender, exc)
        return None
    return Answer(host=host, payload={**payload, "host": host}, context=context)
