"""What an agent may send, checked before anything is applied (4xx, never a 500).

- ``check_heartbeat_time``: a heartbeat is refused when its ``sent_at`` is
  older than ``COUPLER_HEARTBEAT_MAX_AGE_S`` or ahead of the console's clock by
  more than ``COUPLER_CLOCK_SKEW_S``, and when it is not newer than the last
  one accepted from that host (a replay).
- the shape of every part of a heartbeat is its declared type
  (``hostagent.protocol.Heartbeat``), checked by decoding it.
- ``latency_endpoint_allowed``: an echo responder's address must be an IP
  literal inside the cluster's declared networks (``COUPLER_AGENT_NETWORKS``):
  every agent dials it, so a host must not point them at a cloud metadata
  service or anything outside the cluster.
"""

from __future__ import annotations

import ipaddress
import math
import time

from django.conf import settings
from django.core.cache import cache

from hostagent.protocol import SpecError

DEFAULT_AGENT_NETWORKS = "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,127.0.0.0/8,fc00::/7,::1/128"


def check_heartbeat_time(host_id: int, sent_at: object, *, now: float | None = None) -> None:
    now = time.time() if now is None else now
    if isinstance(sent_at, bool) or not isinstance(sent_at, int | float) \
            or not math.isfinite(sent_at):
        raise SpecError(f"sent_at: expected a Unix time, got {sent_at!r}")
    max_age = float(getattr(settings, "COUPLER_HEARTBEAT_MAX_AGE_S", 120))
    skew = float(getattr(settings, "COUPLER_CLOCK_SKEW_S", 30))
    if sent_at < now - max_age:
        raise SpecError(f"sent_at: the heartbeat is {now - sent_at:.0f} s old "
                        f"(at most {max_age:.0f} s is accepted)")
    if sent_at > now + skew:
        raise SpecError(f"sent_at: the heartbeat is {sent_at - now:.0f} s in the future "
                        f"(clock skew of at most {skew:.0f} s is accepted)")
    key = f"coupler:heartbeat-sent-at:{host_id}"
    last = cache.get(key)
    if last is not None and sent_at <= float(last):
        raise SpecError(f"sent_at: not newer than the last heartbeat accepted ({last}): "
                        "a replay")
    cache.set(key, sent_at, timeout=int(max_age + skew) + 60)


def agent_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    text = getattr(settings, "COUPLER_AGENT_NETWORKS", DEFAULT_AGENT_NETWORKS)
    return [ipaddress.ip_network(n.strip(), strict=False) for n in text.split(",") if n.strip()]


def latency_endpoint_allowed(endpoint: str) -> bool:
    """``ip:port`` (``[v6]:port``) with the IP inside the declared networks."""
    host = endpoint.rpartition(":")[0].strip("[]")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False  # a name: it could resolve anywhere
    if address.is_link_local or address.is_multicast or address.is_unspecified:
        return False
    return any(address in network for network in agent_networks())
