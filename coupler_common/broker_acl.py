"""Per-host broker users: what a host agent may touch in Redis, and its password.

Defence in depth under the signed messages (``hostagent/protocol/signing.py``): a
compromised host must not even read other hosts' commands or the answers of
others. kombu's Redis transport keeps

- a queue as a list named after it (``host.gpu-01``), plus one list per
  priority step (``host.gpu-01`` + ``\\x06\\x16`` + step);
- an exchange's bindings in the set ``_kombu.binding.<exchange>`` (and
  ``_kombu.binding_permanent.<exchange>``); Celery names a queue's exchange
  after the queue;
- messages delivered but not yet acknowledged in ``unacked`` (hash),
  ``unacked_index`` (sorted set) and ``unacked_mutex``: shared by every
  consumer unless a transport sets its own names, so an agent with a broker
  user of its own keeps them under its user name (``transport_options``);
- fanout exchanges (Celery's remote control, events) as pub/sub channels.

A host's user may read and write its own queue, bindings and unacked keys,
only *write* (LPUSH) the answer queue ``workflow`` and only *read* that
queue's binding table (to route the answer), and nothing else: no other
key, no pub/sub channel. The console's user has everything.

The password is derived from the host's agent token the way the message key
is (the console keeps only the token's SHA-256), with another label, so the
console can set it and the agent can compute it without a second secret.
Pure functions: the console's ``manage.py broker_acl`` and the agent use them.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlsplit

ANSWER_QUEUE = "workflow"
PRIORITY_SEP = "\x06\x16"  # kombu.transport.redis.Channel.sep
PASSWORD_LABEL = b"coupler broker password v1"
USER_PREFIX = "host-"
# What kombu's consumer and producer send, and nothing that reaches other keys
# without naming them (no KEYS, SCAN, FLUSHDB, CONFIG, PUBLISH, SUBSCRIBE).
COMMANDS = ("+@connection", "-@dangerous", "+brpop", "+rpop", "+lpush", "+llen", "+sadd", "+srem",
            "+smembers", "+exists", "+del", "+pexpire", "+zadd", "+zrem", "+zrange", "+zrangebyscore",
            "+hset", "+hget", "+hdel", "+set", "+get", "+eval", "+evalsha", "+script|load",
            "+multi", "+exec", "+discard")


def broker_password_from_hash(token_sha256: str) -> str:
    return hmac.new(bytes.fromhex(token_sha256), PASSWORD_LABEL, hashlib.sha256).hexdigest()


def broker_password(token: str) -> str:
    """The agent's side: its broker password from its agent token."""
    return broker_password_from_hash(hashlib.sha256(token.encode()).hexdigest())


def user_name(host: str, prefix: str = USER_PREFIX) -> str:
    return f"{prefix}{host}"


def unacked_keys(user: str) -> dict[str, str]:
    """kombu transport options that give a consumer its own unacked bookkeeping."""
    return {"unacked_key": f"unacked.{user}", "unacked_index_key": f"unacked_index.{user}",
            "unacked_mutex_key": f"unacked_mutex.{user}"}


def transport_options(broker_url: str) -> dict[str, str]:
    """Extra transport options for an agent connecting as a per-host user."""
    parts = urlsplit(broker_url)
    if parts.scheme.startswith("redis") and parts.username:
        return unacked_keys(parts.username)
    return {}


def _glob(text: str) -> str:
    """A literal for an ACL key pattern (glob): escape its special characters."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def redis_acl_rules(host: str, password_sha256: str, *, prefix: str = USER_PREFIX) -> list[str]:
    """``ACL SETUSER <user> <rules…>`` for one host: ``password_sha256`` is the
    SHA-256 of the broker password (Redis keeps only that)."""
    user = user_name(host, prefix)
    own = f"host.{host}"
    rw = [own, f"_kombu.binding.{own}", f"_kombu.binding_permanent.{own}",
          *unacked_keys(user).values()]
    return ["reset", "on", f"#{password_sha256}", "resetchannels", "-@all", *COMMANDS,
            *(f"~{_glob(key)}" for key in rw), f"~{_glob(own + PRIORITY_SEP)}?",
            f"%W~{_glob(ANSWER_QUEUE)}", f"%W~{_glob(ANSWER_QUEUE + PRIORITY_SEP)}?",
            f"%R~{_glob('_kombu.binding.' + ANSWER_QUEUE)}"]


def rabbitmq_permissions(host: str) -> tuple[str, str, str]:
    """(configure, write, read) regexes for ``rabbitmqctl set_permissions``."""
    own = "host\\." + "".join("\\" + c if not c.isalnum() and c not in "-_" else c
                              for c in host)
    return (f"^{own}$", f"^({own}|{ANSWER_QUEUE})$", f"^{own}$")
