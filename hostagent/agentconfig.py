"""The agent's configuration: one JSON document (``COUPLER_AGENT_CONFIG`` names it).

::

    {"console_url": "http://127.0.0.1:8000",
     "heartbeat_interval_s": 5,
     "latency_listen": "0.0.0.0:7471", "latency_advertise": "10.1.2.3:7471",
     "hosts": [{"name": "dgx-a100-01", "token": "…",
                "libvirt_uri": "test:///…/node_dgx_a100.xml",
                "cgroup_root": "", "checks_root": "…/sim/roots/good",
                "kernel_log": "", "inventory": {…}}]}

A real host (``libvirt_uri`` ``qemu:///system``) also takes ``hypervisor``
(``kvm``/``qemu``; default: probed), ``cpu_mode``, ``cpu_model``, ``network``
(``user``, ``network:NAME``, ``bridge:NAME``), ``partition`` (default
``/coupler``), ``images_dir``, ``state_dir`` and ``boot_timeout_s``.

``latency_listen`` is where the agent's echo responder (``network.hop_latency``:
peers measure to it) listens, default ``0.0.0.0:7471``; "" or ``off`` runs none.
``latency_advertise`` is the ``host:port`` peers reach it at, reported to the
console at registration and in every heartbeat; default: the listen address (a
wildcard host becomes this machine's FQDN; port 0 or no port: the bound port).
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hostagent import hypervisor

__all__ = ["DEFAULT_LATENCY_LISTEN", "AgentConfig", "HostConfig"]


@functools.cache
def _detected_hypervisor(libvirt_uri: str) -> str:
    return hypervisor.choose(libvirt_uri).domain_type


DEFAULT_LATENCY_LISTEN = "0.0.0.0:7471"  # every address: peers on other hosts connect


@dataclass
class HostConfig:
    name: str
    libvirt_uri: str = "test:///default"
    token: str = ""
    cgroup_root: str = ""
    checks_root: str = ""
    kernel_log: str = ""
    # Where the GPUs' sysfs lives for mediated devices (GPU shares): "/" on a
    # KVM host; empty on the test driver, whose simulated hypervisor has no mdev
    # bus (then the share is only a hostdev in the domain's definition).
    mdev_root: str = ""
    inventory: dict[str, Any] = field(default_factory=dict)
    # Real hosts (qemu:///system). Operator overrides: "" = detected (hostagent.hypervisor).
    hypervisor: str = ""  # kvm | qemu
    cpu_mode: str = ""  # host-passthrough | host-model | maximum
    cpu_model: str = ""  # a named model (e.g. "Skylake-Server"): mode custom
    network: str = "user"  # user | network:NAME | bridge:NAME | "" (no NIC)
    # libvirt <resource><partition>: QEMU's cgroup under Coupler's, not /machine.
    partition: str = "/coupler"
    images_dir: str = "/var/lib/coupler/images"
    state_dir: str = "/var/lib/coupler"  # jobs/<domain>/: disk overlay, console, channel
    boot_timeout_s: float = 180.0  # the guest must report "up" within this
    kernel_loader: str = ""  # firmware for direct kernel boot (e.g. /usr/share/qemu/qboot.rom)

    @property
    def is_test_driver(self) -> bool:
        return self.libvirt_uri.startswith("test:")

    @property
    def domain_type(self) -> str:
        """The hypervisor domains are defined with: ``test`` on the test driver, the
        operator's override, else what the host's KVM probe allows."""
        if self.is_test_driver:
            return "test"
        return self.hypervisor or _detected_hypervisor(self.libvirt_uri)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HostConfig:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


@dataclass
class AgentConfig:
    console_url: str = "http://127.0.0.1:8000"
    heartbeat_interval_s: float = 5.0
    hosts: list[HostConfig] = field(default_factory=list)
    latency_listen: str = DEFAULT_LATENCY_LISTEN
    latency_advertise: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AgentConfig:
        return cls(
            console_url=str(data.get("console_url", cls.console_url)).rstrip("/"),
            heartbeat_interval_s=float(data.get("heartbeat_interval_s", 5.0)),
            hosts=[HostConfig.from_dict(h) for h in data.get("hosts", [])],
            latency_listen=str(data.get("latency_listen", DEFAULT_LATENCY_LISTEN) or ""),
            latency_advertise=str(data.get("latency_advertise") or ""),
        )

    @classmethod
    def load(cls, path: str | os.PathLike | None = None) -> AgentConfig:
        path = path or os.environ.get("COUPLER_AGENT_CONFIG")
        if not path:
            return cls()
        return cls.from_dict(json.loads(Path(path).read_text()))
