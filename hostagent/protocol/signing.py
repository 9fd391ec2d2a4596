"""Signed broker messages: who sent a command or an answer, to whom, and when.

Every host agent reaches the broker, so a message's queue says nothing about
its sender. Each console → agent command and agent → console answer travels
as an *envelope*::

    {"v": 1, "from": "console" | "host:<name>", "to": "host:<name>" | "console",
     "task": "hostagent.provision", "iat": <unix time>, "exp": <unix time>,
     "nonce": "<32 hex>", "body": "<canonical JSON of the task's arguments>",
     "sig": "<HMAC-SHA256 hex>"}

signed with the *host's* message key, which only the console and that host
know. A command for host X is signed with X's key: no other host can make one
X accepts. An answer from X is signed with X's key and names X as its sender:
no host can answer for another, and the console takes the sender from the
verified envelope, never from the body. ``from``/``to`` are signed too, so a
command cannot be reflected back as an answer. ``exp`` bounds a message's
life; a ``nonce`` seen before within that life is a replay.

The key of a host is derived from its agent token (issued once by the console
at registration, ``do_issue_agent_token``, and stored by the console only as
its SHA-256): ``HMAC-SHA256(sha256(token), "coupler broker message key v1")``.
Issuing a new token rotates the key; the agent's config holds the token.

Pure Python (hmac, hashlib, json): the console and the agent import it, and it
never imports Django.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

VERSION = 1
CONSOLE = "console"
KEY_LABEL = b"coupler broker message key v1"
DEFAULT_TTL_S = 600.0
# An envelope's iat may run ahead of the verifier's clock by this much.
CLOCK_SKEW_S = 30.0
HEADER_FIELDS = ("v", "from", "to", "task", "iat", "exp", "nonce")


class Refused(Exception):
    """An envelope that must have no effect; the text says why (for the log)."""


def host_principal(name: str) -> str:
    return f"host:{name}"


def message_key(agent_token_sha256_hex: str) -> bytes:
    """The host's message key from the SHA-256 (hex) of its agent token."""
    return hmac.new(bytes.fromhex(agent_token_sha256_hex), KEY_LABEL, hashlib.sha256).digest()


def key_from_token(token: str) -> bytes:
    return message_key(hashlib.sha256(token.encode()).hexdigest())


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _mac(key: bytes, envelope: Mapping[str, Any]) -> str:
    signed = canonical_json({**{k: envelope[k] for k in HEADER_FIELDS},
                             "body": envelope["body"]})
    return hmac.new(key, signed.encode(), hashlib.sha256).hexdigest()


def seal(body: Mapping[str, Any], *, sender: str, recipient: str, task: str, key: bytes,
         ttl_s: float = DEFAULT_TTL_S, now: float | None = None) -> dict[str, Any]:
    """The signed envelope carrying ``body`` (a JSON-able mapping)."""
    issued = time.time() if now is None else now
    envelope: dict[str, Any] = {
        "v": VERSION, "from": sender, "to": recipient, "task": task,
        "iat": round(issued, 3), "exp": round(issued + ttl_s, 3),
        "nonce": secrets.token_hex(16), "body": canonical_json(dict(body)),
    }
    envelope["sig"] = _mac(key, envelope)
    return envelope


class ReplayGuard:
    """Nonces seen and still within their life, in this process.

    The console uses a shared store instead (``console.core.wire``) because its
    workers are several processes; an agent is one process per host.
    """

    def __init__(self) -> None:
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def first_time(self, nonce: str, exp: float, now: float) -> bool:
        with self._lock:
            if len(self._seen) > 1024:
                self._seen = {n: e for n, e in self._seen.items() if e > now}
            if nonce in self._seen:
                return False
            self._seen[nonce] = exp
            return True


@dataclass(frozen=True)
class Opened:
    sender: str
    body: dict[str, Any]
    nonce: str
    exp: float


def open_envelope(envelope: object, *, recipient: str, task: str,
                  key_for: Callable[[str], bytes | None],
                  first_time: Callable[[str, float, float], bool],
                  expected_sender: str | None = None,
                  now: float | None = None) -> Opened:
    """Verify ``envelope`` for ``recipient`` and ``task``; returns its sender and body.

    ``key_for(sender)`` returns the key the sender's messages are signed with
    (for a command to a host: that host's key, whatever the ``from``); None
    when the sender is unknown. ``first_time(nonce, exp, now)`` records the
    nonce and says whether it was new. Raises ``Refused`` naming the reason.
    """
    now = time.time() if now is None else now
    if not isinstance(envelope, Mapping):
        raise Refused("not a signed envelope (unsigned message)")
    missing = [k for k in (*HEADER_FIELDS, "body", "sig") if k not in envelope]
    if missing:
        raise Refused(f"envelope lacks {missing}")
    if envelope["v"] != VERSION:
        raise Refused(f"envelope version {envelope['v']!r} is not {VERSION}")
    sender = envelope["from"]
    if not isinstance(sender, str) or not isinstance(envelope["body"], str):
        raise Refused("envelope sender or body is not a string")
    if expected_sender is not None and sender != expected_sender:
        raise Refused(f"sent by {sender!r}, only {expected_sender!r} may send this")
    key = key_for(sender)
    if key is None:
        raise Refused(f"no key for sender {sender!r} (unknown host or no agent token)")
    sig = envelope["sig"]
    if not isinstance(sig, str) or not hmac.compare_digest(sig, _mac(key, envelope)):
        raise Refused(f"bad signature for sender {sender!r}")
    # Signed fields only from here on.
    if envelope["to"] != recipient:
        raise Refused(f"addressed to {envelope['to']!r}, not {recipient!r}")
    if envelope["task"] != task:
        raise Refused(f"signed for task {envelope['task']!r}, delivered as {task!r}")
    iat, exp = envelope["iat"], envelope["exp"]
    if not isinstance(iat, int | float) or not isinstance(exp, int | float):
        raise Refused("envelope times are not numbers")
    if iat > now + CLOCK_SKEW_S:
        raise Refused(f"issued {iat - now:.0f} s in the future")
    if exp < now:
        raise Refused(f"expired {now - exp:.0f} s ago")
    nonce = envelope["nonce"]
    if not isinstance(nonce, str) or not first_time(nonce, float(exp), now):
        raise Refused(f"replay of message {nonce!r}")
    try:
        body = json.loads(envelope["body"])
    except ValueError as exc:
        raise Refused(f"body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise Refused("body is not an object")
    return Opened(sender=sender, body=body, nonce=nonce, exp=float(exp))
