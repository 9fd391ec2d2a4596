"""What an agent may send, checked before anything is applied (4xx, never a 500).

- ``check_heartbeat_time``: a heartbeat is refused when its ``sent_at`` is
  older than ``COUPLER_HEARTBEAT_MAX_AGE_S`` or ahead of the console's clock by
  more than ``COUPLER_CLOCK_SKEW_S``, and when it is not newer than the last
  one accepted from that host (a replay).
- ``check_heartbeat_body``: the optional parts (domains, states, checks, Xid
  events, latency endpoint) have the shapes the actions expect.
- ``latency_endpoint_allowed``: an echo responder's address must be an IP
  literal inside the cluster's declared networks (``COUPLER_AGENT_NETWORKS``):
  every agent dials it, so a host must not point them at a cloud metadata
  service or anything outside the cluster.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Mapping

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


def _strings(value: object, what: str) -> None:
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        raise SpecError(f"{what}: expected a list of strings")


def check_heartbeat_body(body: Mapping) -> None:
    if "stopped_domains" in body and body["stopped_domains"] is not None:
        _strings(body["stopped_domains"], "stopped_domains")
    states = body.get("domain_states")
    if states is not None and not (isinstance(states, dict) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in states.items())):
        raise SpecError("domain_states: expected an object of domain name to state")
    for key in ("checks", "xid_events"):
        value = body.get(key)
        if value is not None and not (isinstance(value, list)
                                      and all(isinstance(x, dict) for x in value)):
            raise SpecError(f"{key}: expected a list of objects")
    endpoint = body.get("latency_endpoint")
    if endpoint is not None and not isinstance(endpoint, str):
        raise SpecError("latency_endpoint: expected a string")
    load = body.get("load")
    if load is not None and not isinstance(load, dict):
        raise SpecError("load: expected an object")


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
