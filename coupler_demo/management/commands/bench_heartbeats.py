"""Heartbeats at fleet scale: ``manage.py bench_heartbeats``.

Registers ``--hosts`` hosts (the same fleet as ``bench_cycle``), gives each an agent
token, starts the web tier as documented (gunicorn, one sync worker, production
settings) and has every host heartbeat through the REST endpoint its agent uses, with
nothing changed since its last beat (the fleet's steady state), ``--concurrency`` at a
time for ``--seconds``. Prints heartbeats/s, latency, the worker's CPU per heartbeat
(from /proc), the SQL statements one quiet heartbeat costs and the load average.
Issue 15's target is ≤ 2 ms of CPU per heartbeat, so 1,000 hosts beating every 5 s
fit in half a core.

The server gets persistent database connections (``DB_CONN_MAX_AGE``, 60 s unless
set, as deploy/coupler.env.example has them): with a new connection per request the
worker's CPU per heartbeat is mostly connecting to PostgreSQL (``DB_CONN_MAX_AGE=0``
measures that).
"""

import http.client
import itertools
import json
import os
import threading
import time
from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from console.core.history.bench import Server, load, percentile_ms
from console.core.models import Host
from coupler_demo.fleet import FLEET_CLUSTER, register_fleet
from hostagent.protocol import Heartbeat, encode


def _body(host: Host, version: str = "bench") -> bytes:
    beat = Heartbeat(host=host.name, sent_at=datetime.now(UTC), agent_version=version,
                     domains=(), stopped_domains=(), domain_states={}, domain_ends={},
                     console_tail={}, load={"cpu": 0.1})
    return json.dumps(encode(beat)).encode()


class Command(BaseCommand):
    help = "CPU per quiet heartbeat of a fleet against one gunicorn worker."

    def add_arguments(self, parser):
        parser.add_argument("--hosts", type=int, default=1000)
        parser.add_argument("--seconds", type=float, default=10.0)
        parser.add_argument("--concurrency", type=int, default=4)
        parser.add_argument("--port", type=int, default=8710)
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **opts):
        if opts["hosts"] < 1 or opts["seconds"] <= 0 or opts["concurrency"] < 1:
            raise CommandError("--hosts, --seconds and --concurrency must be positive")
        register_fleet(opts["hosts"])
        hosts = list(Host.objects.filter(cluster__slug=FLEET_CLUSTER)
                     .order_by("name")[:opts["hosts"]])
        tokens = {}
        for host in hosts:
            tokens[host.name] = host.set_agent_token()
            host.save(update_fields=["agent_token_hash"])
        queries = self._queries_per_quiet_beat(hosts[0], tokens[hosts[0].name])
        os.environ.setdefault("DB_CONN_MAX_AGE", "60")  # the server's (Server copies os.environ)
        with Server(opts["port"]) as server:
            # The first beat after registration records the (empty) domain report; the
            # second is the first quiet one. The fleet's steady state is every one after.
            for host in hosts * 2:
                status = _post(server.port, host, tokens[host.name])[1]
                if status != 200:
                    raise CommandError(f"heartbeat of {host.name} answered {status}")
            cpu_before = server.worker_cpu_seconds()
            latencies, statuses, wall = load(_beats_in_turn(server.port, hosts, tokens),
                                             concurrency=opts["concurrency"],
                                             seconds=opts["seconds"])
            cpu = server.worker_cpu_seconds() - cpu_before
        count = len(latencies)
        out = {
            "hosts": len(hosts), "heartbeats": count, "per_s": round(count / wall, 1),
            "p50_ms": round(percentile_ms(latencies, 50), 1),
            "p99_ms": round(percentile_ms(latencies, 99), 1),
            "worker_cpu_ms_per_heartbeat": round(1000 * cpu / max(count, 1), 2),
            "sql_per_heartbeat": queries, "statuses": statuses,
            "cores_for_fleet_at_5s": round(len(hosts) / 5 * cpu / max(count, 1), 2),
            "db_conn_max_age": os.environ["DB_CONN_MAX_AGE"],
            "load_average": [round(x, 2) for x in os.getloadavg()],
        }
        if opts["json"]:
            self.stdout.write(json.dumps(out))
            return
        self.stdout.write(
            f"{out['hosts']} hosts, {count} quiet heartbeats in {wall:.1f} s "
            f"({out['per_s']}/s at concurrency {opts['concurrency']}), p50 {out['p50_ms']} ms,"
            f" p99 {out['p99_ms']} ms; worker CPU {out['worker_cpu_ms_per_heartbeat']} ms per"
            f" heartbeat, {queries} SQL statements; the fleet beating every 5 s needs "
            f"{out['cores_for_fleet_at_5s']} cores of web worker; statuses {statuses}; "
            f"DB_CONN_MAX_AGE={out['db_conn_max_age']}, load average {out['load_average']}")

    @staticmethod
    def _queries_per_quiet_beat(host: Host, token: str) -> int:
        client = Client()
        path = f"/api/v1/agent/hosts/{host.name}/heartbeat/"
        headers = {"Authorization": f"Bearer {token}"}
        for _ in range(2):  # the first may record a report; the second reads the host anew
            client.post(path, _body(host), content_type="application/json", headers=headers)
        with CaptureQueriesContext(connection) as captured:
            response = client.post(path, _body(host), content_type="application/json",
                                   headers=headers)
        if response.status_code != 200:
            raise CommandError(f"a quiet heartbeat answered {response.status_code}: "
                               f"{response.content[:200]!r}")
        return len(captured.captured_queries)


def _post(port: int, host: Host, token: str) -> tuple[float, int]:
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("POST", f"/api/v1/agent/hosts/{host.name}/heartbeat/", body=_body(host),
                 headers={"Authorization": f"Bearer {token}",
                          "Content-Type": "application/json"})
    response = conn.getresponse()
    response.read()
    conn.close()
    return time.perf_counter() - started, response.status


def _beats_in_turn(port: int, hosts: list[Host], tokens: dict):
    """A request for ``bench.load``: the hosts beat in turn (each beat newer than its
    host's last)."""
    turn = itertools.cycle(hosts)
    lock = threading.Lock()

    def request() -> tuple[float, int]:
        with lock:
            host = next(turn)
        return _post(port, host, tokens[host.name])
    return request
