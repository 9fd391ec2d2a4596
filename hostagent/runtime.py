"""The host agent process: ``python -m hostagent run``.

The agent never touches the console's database: it receives fully specified
commands on its queue(s) ``host.<name>`` (``hostagent.agent_tasks``) and talks
to the console's REST API with its per-host token (register, heartbeat).

Split by concern: ``agentconfig`` (the JSON configuration), ``connections``
(per-host libvirt connection, reopened after a libvirtd restart, and lock),
``actions`` (provision, teardown, list, checks), ``heartbeat`` (registration
and the heartbeat thread), ``latency`` (the echo responder).  This module
starts them and re-exports their public names.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from coupler_common.naming import host_queue
from hostagent import cgroups
from hostagent import libvirt_driver as lv
from hostagent.actions import (
    DOMAIN_PREFIX,
    domain_xml,
    hypervisor_facts,
    list_domains,
    provision,
    run_checks,
    scan_kernel_log,
    teardown,
)
from hostagent.agentconfig import DEFAULT_LATENCY_LISTEN, AgentConfig, HostConfig
from hostagent.connections import (
    blank_node_uri,
    configure,
    configure_host,
    connection,
    default_libvirt_uri,
    drop_connection,
    host_config,
    inject_failure,
    reset,
    with_connection,
)
from hostagent.heartbeat import (
    AGENT_VERSION,
    ConsoleError,
    HeartbeatLoop,
    heartbeat_body,
    post_json,
)
from hostagent.latency import LatencyResponder, split_endpoint, start_latency_responder

__all__ = [
    "AGENT_VERSION", "DEFAULT_LATENCY_LISTEN", "DOMAIN_PREFIX", "AgentConfig", "ConsoleError",
    "HeartbeatLoop", "HostConfig", "LatencyResponder", "blank_node_uri", "configure", "configure_host",
    "connection", "default_libvirt_uri", "domain_xml", "drop_connection", "heartbeat_body",
    "host_config", "hypervisor_facts", "inject_failure", "list_domains", "main", "post_json",
    "prepare_host", "provision", "reset", "run_checks", "scan_kernel_log",
    "split_endpoint", "start_latency_responder", "teardown", "with_connection",
]

log = logging.getLogger("hostagent")


def prepare_host(host: HostConfig) -> dict[str, Any]:
    """At agent start, not inside the first job: open the libvirt connection and probe
    the hypervisor (node info, KVM or TCG), enable the cgroup controllers of a
    configured cgroup root (refusing one that is not cgroupfs). Logs and returns
    what it found; a failure is logged, and the heartbeat reports it."""
    found: dict[str, Any] = {}
    try:
        found["node"] = with_connection(host.name, lv.node_info)
    except Exception as exc:  # reported by the heartbeat; the agent still starts
        log.error("libvirt at %s for %s: %s", host.libvirt_uri, host.name, exc)
        found["libvirt_error"] = str(exc)
    found.update(hypervisor_facts(host.name))
    for warning in found.get("hypervisor_warnings") or []:
        log.warning("%s: %s", host.name, warning)
    if host.partition and not host.is_test_driver:
        try:
            found["partition"] = [str(p) for p in cgroups.ensure_partition(host.partition)]
        except (cgroups.CgroupError, OSError) as exc:
            log.error("cgroup partition of %s: %s", host.name, exc)
            found["cgroup_error"] = str(exc)
    if host.cgroup_root:
        try:
            cgroups.check_cgroupfs(host.cgroup_root)
            found["cgroup_controllers"] = cgroups.enable_controllers(
                host.cgroup_root, required=cgroups.CONTROLLERS)
        except cgroups.CgroupError as exc:
            log.error("cgroup root of %s: %s", host.name, exc)
            found["cgroup_error"] = str(exc)
    log.info("host %s: %s", host.name, {k: v for k, v in found.items() if k != "kvm_probe"})
    return found


def main(args: Any = None, app: Any = None) -> int:
    """``python -m hostagent run``: heartbeats in a thread, the Celery worker in front.

    The worker consumes ``host.<name>`` for every configured host with a thread
    pool (``COUPLER_AGENT_THREADS``, default one per host up to 8; 1: the solo
    pool), so each host's libvirt connection lives in this one process.
    """
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"))
    config = AgentConfig.load(getattr(args, "config", None))
    if not config.hosts:
        log.error("no hosts configured: set COUPLER_AGENT_CONFIG to the agent's JSON config")
        return 2
    configure(config)
    for host in config.hosts:
        prepare_host(host)
    responder = start_latency_responder(config)
    loop = HeartbeatLoop(config, latency_endpoint=responder.endpoint if responder else "")
    loop.start()
    if app is None:  # the Celery app that consumes the hosts' queues (cli passes it)
        raise ValueError("runtime.main needs the agent's Celery app")

    queues = ",".join(host_queue(h.name) for h in config.hosts)
    # Hosts do not wait for each other: a thread per host (up to 8; every action
    # on one host holds that host's lock, so one host's commands stay in order).
    threads = int(os.environ.get("COUPLER_AGENT_THREADS") or min(len(config.hosts), 8))
    pool = ["--pool=solo", "--concurrency=1"] if threads <= 1 else [
        "--pool=threads", f"--concurrency={threads}"]
    argv = ["worker", *pool, f"--queues={queues}",
            f"--hostname=agent-{config.hosts[0].name}@%h", "--loglevel=INFO",
            # No worker events either: a per-host broker user has no pub/sub (broker_acl.py).
            "--without-gossip", "--without-mingle", "--without-heartbeat"]
    try:
        app.worker_main(argv)
    finally:
        loop.stop.set()
        if responder is not None:
            responder.stop.set()
    return 0
