"""Simulated hosts: their agents' configuration, and the in-process agent.

A simulated host is a ``Host`` row seeded from ``hostagent.sim`` (its ``facts``
name the ``kind`` of machine, its ``sim_index`` and its misconfiguration
``sim_root``). What its agent is configured with is computed here, once, for
both ways the demo runs agents:

- ``write_agent_config``: the JSON file ``python -m hostagent run`` reads
  (``manage.py rundemo`` / ``runprod``: agents in their own process, over the
  broker);
- ``install_in_process_agent``: eager mode (logic tests, screenshots, the load
  test's in-process mode). The console sends every command through the same
  boundary as over the broker (``console.core.hostcalls``: the command encoded
  as its protocol type, the answer decoded as its type) to the agent's own
  command handlers (``hostagent.agent_tasks.run_inline``) in this process. A
  simulated host the agent has not been configured with gets the check root of
  its kind here, as its own agent would (nothing else changes: its libvirt
  connection is the runtime's default).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from django.conf import settings

from console.core import hostcalls
from console.core.actions.agents import do_issue_agent_token
from console.core.models import Host
from coupler_demo.profiles import inventory_for
from hostagent import agent_tasks, runtime, sim
from hostagent.sim import roots as sim_roots


def sim_checks_root(facts: dict[str, Any], *, simulated: bool = True) -> str | None:
    """The check tree of a simulated host: its kind's board, BIOS, driver and VBIOS
    with its misconfiguration ``facts["sim_root"]``, built under
    ``var/sim-roots/<kind>/<variant>`` (a host of no known kind: the shipped tree of
    that variant); None for a host that is not simulated."""
    if not (simulated or facts.get("sim_root")):
        return None
    variant = facts.get("sim_root") or "good"
    if facts.get("kind") in sim.KINDS:
        return str(sim_roots.kind_root(settings.VAR_DIR / "sim-roots", facts["kind"], variant))
    return str(sim.root_path(variant))


def sim_kernel_log(host_name: str) -> Path:
    """Where ``manage.py inject_fault`` writes kernel lines for the host's agent to scan."""
    return settings.VAR_DIR / "sim-kernel" / f"{host_name}.log"


def agent_host_config(host: Host) -> dict | None:
    """One simulated host's entry in the agent configuration, from the same facts
    the console seeded it with (``hostagent.sim`` via ``inventory_for``): a fresh
    agent token, its node file, its check root and its inventory."""
    facts = host.facts or {}
    kind = facts.get("kind", "")
    if kind not in sim.KINDS:
        return None
    index = int(facts.get("sim_index") or 0)
    kernel_log = sim_kernel_log(host.name)
    kernel_log.parent.mkdir(parents=True, exist_ok=True)
    kernel_log.touch()
    return {
        "name": host.name,
        "token": do_issue_agent_token(host, actor="rundemo"),
        "libvirt_uri": f"test://{sim.node_file_for(kind)}",
        "checks_root": facts.get("checks_root") or sim_checks_root(facts),
        "kernel_log": str(kernel_log),
        "inventory": inventory_for(kind, host.name, group=host.group, index=index),
    }


def write_agent_config(console_url: str, heartbeat_s: float) -> Path:
    hosts = [entry for host in Host.objects.filter(simulated=True).order_by("name")
             if (entry := agent_host_config(host)) is not None]
    path = settings.VAR_DIR / "agent-config.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"console_url": console_url, "heartbeat_interval_s": heartbeat_s,
                                # One responder for all the simulated hosts, on loopback.
                                "latency_listen": "127.0.0.1:0", "hosts": hosts}, indent=1))
    path.chmod(0o600)
    return path


def _configure_simulated(host_name: str) -> None:
    """Give a simulated host whose agent configuration names no check root the one of
    its kind, as ``agent_host_config`` does for an agent in its own process."""
    config = runtime.host_config(host_name)
    if config.checks_root:
        return
    row = Host.objects.filter(name=host_name).values_list("facts", "simulated").first()
    root = sim_checks_root(row[0] or {}, simulated=row[1]) if row else None
    if root:
        runtime.configure_host(replace(config, checks_root=root))


def deliver(task_name: str, command: dict[str, Any]) -> dict[str, Any]:
    """The in-process agent: one command (wire form) in, its answer (wire form) out."""
    if task_name == "hostagent.run_checks" and not command.get("root"):
        _configure_simulated(str(command.get("host") or ""))
    return agent_tasks.run_inline(task_name, command)


def install_in_process_agent() -> None:
    hostcalls.install_local_agent(deliver)
