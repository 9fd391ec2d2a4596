"""The echo responder peers measure hop latency to (``network.hop_latency``)."""

from __future__ import annotations

import logging
import socket
import threading

from hostagent.agentconfig import DEFAULT_LATENCY_LISTEN, AgentConfig

__all__ = ["LatencyResponder", "split_endpoint", "start_latency_responder"]

log = logging.getLogger("hostagent")

_WILDCARDS = ("", "0.0.0.0", "::", "*")  # noqa: S104 - compared, not bound


def split_endpoint(text: str, default_port: int = 0) -> tuple[str, int]:
    """``host:port`` (``[v6]:port``, or a bare host) → (host, port)."""
    text = text.strip()
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or (host.count(":") and not host.startswith("[")):
        host, port = text, ""
    return host.strip("[]"), int(port) if port else default_port


class LatencyResponder:
    """``hostagent.checks.echo_responder`` in a daemon thread of the agent process."""

    def __init__(self, listen: str = DEFAULT_LATENCY_LISTEN, advertise: str = "") -> None:
        self.listen = listen
        self.advertise = advertise
        self.stop = threading.Event()
        self.port = 0
        self.endpoint = ""  # what peers connect to, once started

    def start(self, timeout: float = 5.0) -> str:
        """Bind and serve; returns the advertised ``host:port``. Raises OSError when the
        address cannot be bound."""
        from hostagent.checks import echo_responder

        host, port = split_endpoint(self.listen, 7471)
        ready, bound, errors = threading.Event(), [], []

        def serve() -> None:
            try:
                echo_responder(host or "0.0.0.0", port, stop=self.stop, ready=ready,  # noqa: S104
                               bound=bound)
            except OSError as exc:
                errors.append(exc)
                ready.set()

        threading.Thread(target=serve, name="latency-responder", daemon=True).start()
        if not ready.wait(timeout):
            raise OSError(f"echo responder on {self.listen} did not start")
        if errors:
            raise errors[0]
        self.port = bound[0]
        a_host, a_port = split_endpoint(self.advertise or self.listen, 0)
        if a_host in _WILDCARDS:
            a_host = socket.getfqdn()
        a_host = f"[{a_host}]" if ":" in a_host else a_host
        self.endpoint = f"{a_host}:{a_port or self.port}"
        return self.endpoint


def start_latency_responder(config: AgentConfig) -> LatencyResponder | None:
    """The agent's responder per its configuration, or None (disabled, or the address
    is taken: the agent runs on and advertises nothing, so peers skip it)."""
    if config.latency_listen.strip().lower() in ("", "off", "none"):
        return None
    responder = LatencyResponder(config.latency_listen, config.latency_advertise)
    try:
        endpoint = responder.start()
    except (OSError, ValueError) as exc:
        log.warning("no latency echo responder on %s: %s", config.latency_listen, exc)
        return None
    log.info("latency echo responder on %s, advertised as %s", config.latency_listen, endpoint)
    return responder
