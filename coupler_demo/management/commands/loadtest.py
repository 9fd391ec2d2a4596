"""``manage.py loadtest``: jobs/s through the whole workflow, and submit→running
p50/p99, on the demo's simulated hosts. Two modes:

``--inline`` (the default): the workflow runs in THIS process (eager Celery:
scheduling cycle, provisioning on libvirt's test driver through the agent's
own task code, teardown), straight against the database. It measures the
control plane's own cost, without broker, agent process or HTTP. Jobs belong
to a ``loadtest`` tenant without quotas.

``--live [URL]``: drives a RUNNING console (``make demo``; the URL defaults to
the one in ``var/demo-credentials.json``) purely through the REST API, with
the demo tenants' tokens from that file: N jobs submitted (``--concurrency``
at a time), spread over the tenants with sizes that fit what their quotas
leave (whole GPUs, GPU shares, then CPU-only), watched until RUNNING (or
``--timeout``: any job that never got there is reported with its state and
``pending_reason``), then all cancelled and watched until CANCELLED. The
figures come from each job's own timestamps (``submitted_at``, ``running_at``,
``teardown_at``, ``finished_at`` of the job list, 500 a page), so polling
does not blur them: submit→running p50/p99/mean, cancel→cancelled p50/p99,
and jobs/s = jobs that reached RUNNING / (first submit → last RUNNING).
While waiting, the command polls the list endpoint (one request per tenant a
round, filtered by this run's job-name tag) rather than every job's detail,
so that watching does not load the 2-core demo machine; each job's detail is
read once at the end.
"""

from __future__ import annotations

import http.client
import json
import math
import os
import random
import secrets
import statistics
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor, wait
from datetime import datetime
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

FINISHED = {"succeeded", "failed", "cancelled"}
BEFORE_RUNNING = ["queued", "scheduled", "provisioning", "preempted"]
UNFINISHED = [*BEFORE_RUNNING, "running", "teardown"]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def summarize(values: list[float]) -> dict:
    """Seconds → {count, p50_s, p99_s, mean_s, max_s} (rounded to the ms)."""
    return {
        "count": len(values),
        "p50_s": round(percentile(values, 0.5), 3),
        "p99_s": round(percentile(values, 0.99), 3),
        "mean_s": round(statistics.mean(values), 3) if values else 0.0,
        "max_s": round(max(values), 3) if values else 0.0,
    }


def _ts(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def poisson_arrivals(rate: float, duration: float, rng: random.Random) -> list[float]:
    """Arrival times (s from the start) of a Poisson process of ``rate`` per second."""
    times, t = [], 0.0
    while True:
        t += rng.expovariate(rate)
        if t >= duration:
            return times
        times.append(t)


def _proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) of one process, 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _proc_children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    return children


def process_cpu(pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds per role: the process and all its descendants (gunicorn workers)."""
    children = _proc_children()
    out = {}
    for name, pid in pids.items():
        total, todo = 0.0, [pid]
        while todo:
            current = todo.pop()
            total += _proc_cpu(current)
            todo.extend(children.get(current, []))
        out[name] = total
    return out


def postgres_backend_cpu(dbname: str) -> float:
    """CPU seconds of the PostgreSQL backends serving ``dbname`` right now (their
    process title names the database). Persistent connections keep them alive
    across a run; a backend that ends in between is not counted."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if title.startswith("postgres: ") and f" {dbname} " in title:
            total += _proc_cpu(int(entry.name))
    return total


class Api:
    """A tiny JSON client (urllib: nothing to install, safe across threads)."""

    def __init__(self, base_url: str, timeout: float = 30.0):
        if not base_url.startswith(("http://", "https://")):
            raise CommandError(f"not an http(s) URL: {base_url}")
        self.base = base_url.rstrip("/")
        self.timeout = timeout

    def call(self, method: str, path: str, token: str, body: dict | None = None):
        url = path if path.startswith("http") else f"{self.base}{path}"
        data = json.dumps(body).encode() if body is not None else None
        # Only http(s): the base URL is checked in __init__, "next" links come from it.
        headers = {"Authorization": f"Token {token}", "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            try:
                payload = json.loads(exc.read() or b"null")
            except ValueError:
                payload = None
            return exc.code, payload
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            raise CommandError(f"{method} {url}: the console does not answer ({exc!r}); "
                               "is the demo still running? See var/logs/.") from exc

    def all_pages(self, path: str, token: str) -> list[dict]:
        out: list[dict] = []
        url: str | None = path
        while url:
            status, page = self.call("GET", url, token)
            if status == 401:
                raise CommandError(f"GET {url}: the API refused the credentials file's token "
                                   f"({page}); `make demo` (seed_demo) issues new ones")
            if status != 200:
                raise CommandError(f"GET {url}: HTTP {status}: {page}")
            if isinstance(page, list):
                return out + page
            out.extend(page.get("results", []))
            url = page.get("next")
        return out


# What one job of each kind asks for (per host, one host).
KINDS = {
    "gpu": {"gpus_per_host": 1, "vcpus_per_host": 2, "memory_gib_per_host": 8},
    "share": {"gpus_per_host": 1, "gpu_milli": 100, "vcpus_per_host": 2,
              "memory_gib_per_host": 8},
    "cpu": {"gpus_per_host": 0, "vcpus_per_host": 2, "memory_gib_per_host": 8},
}
USES = {"gpu": {"gpus": 1}, "share": {"gpu_milli": 100}, "cpu": {}}


def plan_jobs(n: int, budgets: dict[str, dict[str, float]], cluster_gpus: int,
              tag: str) -> list[dict]:
    """N submit bodies, round-robin over the tenants; each job takes, in turn,
    the kinds gpu → share → cpu, skipping a kind its tenant's quota (limit −
    in use, for gpus, gpu_milli, vcpus, memory_gib) has no room for. Whole GPUs
    are also kept to 60 % of the cluster's GPUs (the rest for the shares, and
    for hosts a failing check keeps out). Unlimited resources: no quota row."""
    tenants = sorted(budgets)
    left = {slug: dict(budget) for slug, budget in budgets.items()}
    whole_left = int(cluster_gpus * 0.6)
    bodies = []
    order = ["gpu", "share", "cpu"]
    for i in range(n):
        slug = tenants[i % len(tenants)]
        room = left[slug]
        start = (i // len(tenants)) % len(order)
        chosen = "cpu"
        for kind in order[start:] + order[:start]:
            need = {"vcpus": 2, "memory_gib": 8, **USES[kind]}
            if kind == "gpu" and whole_left < 1:
                continue
            if all(room.get(res, math.inf) >= amount for res, amount in need.items()):
                chosen = kind
                break
        for res, amount in {"vcpus": 2, "memory_gib": 8, **USES[chosen]}.items():
            if res in room:
                room[res] -= amount
        if chosen == "gpu":
            whole_left -= 1
        bodies.append({"tenant": slug, "name": f"{tag}-{i:04d}", "kind": chosen,
                       **KINDS[chosen]})
    return bodies


FLUSH_WAIT_S = 0.6  # perfstats writes every 0.5 s


def read_counters() -> dict:
    """Everything the run's cost is measured from, now: CPU per demo process (from
    ``var/run/pids.json``, written by rundemo), the per-process query and message
    counters (``console.core.perfstats``), PostgreSQL's commit and row counters."""
    from django.conf import settings
    from django.db import connection

    from console.core import perfstats

    out: dict = {"cpu": {}, "stats": {}, "pg": None}
    pids_path = settings.VAR_DIR / "run" / "pids.json"
    try:
        pids = {k: int(v) for k, v in json.loads(pids_path.read_text()).items()}
    except (OSError, ValueError):
        pids = {}
    out["cpu"] = process_cpu(pids)
    out["cpu"]["loadtest"] = time.process_time()
    folder = os.environ.get(perfstats.ENV) or str(settings.VAR_DIR / "perf")
    out["stats"] = perfstats.read_all(Path(folder))
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT xact_commit, tup_returned FROM pg_stat_database "
                           "WHERE datname = current_database()")
            commits, rows = cursor.fetchone()
            cursor.execute("SELECT pg_stat_clear_snapshot()")
        out["pg"] = {"commits": commits, "rows": rows,
                     "backend_cpu": postgres_backend_cpu(connection.settings_dict["NAME"])}
    return out


def work_per_job(before: dict, after: dict, jobs: int) -> dict:
    if not jobs:
        return {}
    cpu = {name: max(0.0, after["cpu"].get(name, 0.0) - before["cpu"].get(name, 0.0)) / jobs
           for name in after["cpu"]}
    totals = {"queries": 0, "published": 0, "received": 0, "agent_answers": 0}
    for key, stat in after["stats"].items():
        old = before["stats"].get(key, {})
        for field in totals:
            totals[field] += stat.get(field, 0) - old.get(field, 0)
    result: dict = {
        "cpu_s_per_job": {k: round(v, 5) for k, v in sorted(cpu.items())},
        "cpu_s_per_job_total": round(sum(v for k, v in cpu.items() if k != "loadtest"), 5),
    }
    if after["stats"]:
        result.update(
            queries_per_job=round(totals["queries"] / jobs, 2),
            published_per_job=round(totals["published"] / jobs, 2),
            received_per_job=round(totals["received"] / jobs, 2),
            # Every message once: those console processes sent + the agents' answers.
            messages_per_job=round((totals["published"] + totals["agent_answers"]) / jobs, 2),
        )
    if before.get("pg") and after.get("pg"):
        result["postgres"] = {
            "commits_per_job": round((after["pg"]["commits"] - before["pg"]["commits"]) / jobs, 1),
            "rows_returned_per_job": round((after["pg"]["rows"] - before["pg"]["rows"]) / jobs),
            "backend_cpu_s_per_job": round(
                max(0.0, after["pg"]["backend_cpu"] - before["pg"]["backend_cpu"]) / jobs, 5),
        }
    return result


class Command(BaseCommand):
    help = (
        "Measure jobs/s and submit→running latency through the whole workflow. "
        "Default (--inline): in this process, eager Celery, straight on the database "
        "(the control plane's own cost). --live [URL]: against the RUNNING demo "
        "(make demo) through the REST API with the tenants' tokens from "
        "var/demo-credentials.json (broker, worker, agent process, HTTP included)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--jobs", type=int, default=100)
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument("--inline", action="store_true",
                          help="(default) run the workflow in this process, eager Celery")
        mode.add_argument("--live", nargs="?", const="", default=None, metavar="URL",
                          help="drive the running demo through its REST API (URL: default "
                               "the 'url' of var/demo-credentials.json)")
        parser.add_argument("--json", action="store_true", help="print the figures as JSON")
        inline = parser.add_argument_group("--inline only")
        inline.add_argument("--gpus", type=int, default=1, help="GPUs per job")
        inline.add_argument("--batch", type=int, default=20,
                            help="jobs submitted before cancelling them")
        live = parser.add_argument_group("--live only")
        live.add_argument("--credentials", type=Path, default=None,
                          help="demo credentials file (default var/demo-credentials.json)")
        live.add_argument("--concurrency", type=int, default=4,
                          help="submit/cancel requests in flight at once")
        live.add_argument("--timeout", type=float, default=180.0,
                          help="seconds to wait for RUNNING, then again for CANCELLED")
        live.add_argument("--poll", type=float, default=0.2, help="seconds between polls")
        live.add_argument("--rate", type=float, default=0.0,
                          help="open loop: offer jobs as Poisson arrivals at this many per "
                               "second (instead of --jobs at --concurrency)")
        live.add_argument("--duration", type=float, default=10.0,
                          help="with --rate: seconds of arrivals")
        live.add_argument("--seed", type=int, default=None,
                          help="with --rate: random seed of the arrival times")

    def handle(self, *args, **options):
        if options["jobs"] < 1:
            raise CommandError("--jobs must be at least 1")
        if options["live"] is not None:
            result = self.live(options)
        else:
            result = self.inline(options)
        text = result.pop("summary_text")
        self.stdout.write(json.dumps(result, indent=1) if options["json"] else text)

    # ---- inline (eager) -------------------------------------------------------

    def inline(self, options) -> dict:
        from console.celery import app
        from console.core.actions.jobs import do_cancel_job, do_submit_job
        from console.core.choices import JobState
        from console.core.models import Job, Tenant
        from coupler_demo.simhosts import install_in_process_agent

        app.conf.task_always_eager = True
        install_in_process_agent()
        tenant, _ = Tenant.objects.get_or_create(slug="loadtest", defaults={"name": "Load test"})
        latencies: list[float] = []
        done = 0
        started = time.perf_counter()
        while done < options["jobs"]:
            batch = []
            for _ in range(min(options["batch"], options["jobs"] - done)):
                job = do_submit_job(tenant=tenant, actor="loadtest", name="load",
                                    gpus_per_host=options["gpus"], vcpus_per_host=4,
                                    memory_gib_per_host=16)
                batch.append(job.pk)
            for job in Job.objects.filter(pk__in=batch):
                if job.state == JobState.RUNNING:
                    latencies.append((job.running_at - job.submitted_at).total_seconds())
                do_cancel_job(job, actor="loadtest")
            done += len(batch)
        elapsed = time.perf_counter() - started
        left = Job.objects.filter(tenant=tenant).exclude(
            state__in=[JobState.CANCELLED, JobState.FAILED, JobState.SUCCEEDED]).count()
        stats = summarize(latencies)
        text = (
            f"{done} jobs in {elapsed:.2f} s: {done / elapsed:.1f} jobs/s "
            f"(submit → RUNNING → cancel → CANCELLED); {len(latencies)} reached RUNNING; "
            f"submit→running p50 {1000 * stats['p50_s']:.1f} ms, "
            f"p99 {1000 * stats['p99_s']:.1f} ms, mean {1000 * stats['mean_s']:.1f} ms; "
            f"{left} not finished"
        )
        return {"mode": "inline", "jobs": done, "elapsed_s": round(elapsed, 3),
                "jobs_per_s": round(done / elapsed, 2), "reached_running": len(latencies),
                "submit_to_running": stats, "not_finished": left, "summary_text": text}

    # ---- live (REST API against the running demo) -----------------------------

    def live(self, options) -> dict:
        from coupler_demo.seed import credentials_path

        path = options["credentials"] or credentials_path()
        try:
            creds = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise CommandError(f"cannot read the demo credentials {path}: {exc} "
                               "(run `make demo` first)") from exc
        url = options["live"] or creds.get("url") or "http://127.0.0.1:8000/"
        api = Api(url)
        tokens = {t["slug"]: t["token"] for t in creds.get("tenants", [])}
        if not tokens:
            raise CommandError(f"no tenants in {path}")
        n, timeout, poll = options["jobs"], options["timeout"], options["poll"]
        pool = ThreadPoolExecutor(max_workers=max(1, options["concurrency"]))

        # What each tenant may still take, and the cluster's GPUs.
        budgets: dict[str, dict[str, float]] = {}
        for slug, token in tokens.items():
            room: dict[str, float] = {}
            for quota in api.all_pages("/api/v1/quotas/?page_size=500", token):
                if quota["tenant"] == slug and not quota.get("gpu_model"):
                    room[quota["resource"]] = quota["limit"] - (quota.get("in_use") or 0)
            budgets[slug] = room
        any_token = next(iter(tokens.values()))
        cluster_gpus = sum(c.get("gpu_count") or 0
                           for c in api.all_pages("/api/v1/clusters/", any_token))
        tag = f"lt{secrets.token_hex(3)}"
        arrivals: list[float] = []
        if options["rate"] > 0:
            arrivals = poisson_arrivals(options["rate"], options["duration"],
                                        random.Random(options["seed"]))
            n = len(arrivals)
            # Open loop: enough threads that a slow answer never delays the next arrival.
            pool.shutdown()
            pool = ThreadPoolExecutor(max_workers=max(options["concurrency"], 32))
        bodies = plan_jobs(n, budgets, cluster_gpus, tag)

        def submit(body):
            spec = {k: v for k, v in body.items() if k != "kind"}
            try:
                status, job = api.call("POST", "/api/v1/jobs/", tokens[body["tenant"]], spec)
            except CommandError as exc:  # one submit that got no answer is one refusal
                return body, None, str(exc)
            if status != 201:
                return body, None, f"HTTP {status}: {job}"
            return body, job["id"], None

        counters_before = read_counters()
        t0 = time.monotonic()
        submitted: dict[int, dict] = {}
        refused = []
        if arrivals:
            futures = []
            for at, body in zip(arrivals, bodies, strict=True):
                delay = t0 + at - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                futures.append(pool.submit(submit, body))
            wait(futures)
            answers = [f.result() for f in futures]
        else:
            answers = list(pool.map(submit, bodies))
        for body, job_id, error in answers:
            if job_id is None:
                refused.append({"name": body["name"], "tenant": body["tenant"], "error": error})
            else:
                submitted[job_id] = body
        submit_wall = time.monotonic() - t0

        def states() -> dict[int, dict]:
            seen: dict[int, dict] = {}
            for slug, token in tokens.items():
                query = urllib.parse.urlencode({"tenant": slug, "name": tag, "page_size": 500})
                for job in api.all_pages(f"/api/v1/jobs/?{query}", token):
                    if job["id"] in submitted:
                        seen[job["id"]] = job
            return seen

        def still_waiting(states_left: list[str]) -> int | None:
            """How many of this run's jobs are in ``states_left``: one small request per
            tenant (``page_size=1``, the page's ``count``); None if the API gives none."""
            total = 0
            for slug, token in tokens.items():
                query = urllib.parse.urlencode(
                    [("tenant", slug), ("name", tag), ("page_size", 1)]
                    + [("state", state) for state in states_left])
                status, page = api.call("GET", f"/api/v1/jobs/?{query}", token)
                if status != 200 or not isinstance(page, dict) or "count" not in page:
                    return None
                total += int(page["count"])
            return total

        def wait_for(done, states_left: list[str]) -> tuple[dict[int, dict], float]:
            started = time.monotonic()
            while True:
                left = still_waiting(states_left)
                if left is None:  # no counts: list every job
                    seen = states()
                    if all(done(seen.get(job_id)) for job_id in submitted):
                        return seen, time.monotonic() - started
                elif left == 0:
                    return {}, time.monotonic() - started
                if time.monotonic() - started > timeout:
                    return {}, time.monotonic() - started
                time.sleep(poll)

        def reached_running(job):
            return job is not None and (job["running_at"] is not None or job["state"] in FINISHED)

        _seen, run_wait = wait_for(reached_running, BEFORE_RUNNING)

        def detail(job_id):
            status, job = api.call("GET", f"/api/v1/jobs/{job_id}/",
                                   tokens[submitted[job_id]["tenant"]])
            return job if status == 200 else {"id": job_id, "state": f"HTTP {status}"}

        # Each job's timestamps, read from list pages (500 a request) rather than one
        # detail request per job, so that measuring adds little to what is measured;
        # a job missing from the pages is read by itself.
        at_running = states()
        at_running.update({job["id"]: job for job in pool.map(
            detail, [j for j in submitted if j not in at_running])})
        to_running: list[float] = []
        never = []
        for job_id, job in at_running.items():
            if job.get("running_at"):
                to_running.append(
                    (_ts(job["running_at"]) - _ts(job["submitted_at"])).total_seconds())
            else:
                never.append({"id": job_id, "name": job.get("name"), "tenant": job.get("tenant"),
                              "kind": submitted[job_id]["kind"], "state": job.get("state"),
                              "pending_code": job.get("pending_code"),
                              "pending_reason": job.get("pending_reason")})
        ran = [j for j in at_running.values() if j.get("running_at")]
        # Where the time goes: submit→SCHEDULED (waiting for a cycle), SCHEDULED→
        # PROVISIONING (provision task picked up), PROVISIONING→RUNNING (agent + answer).
        phases = {}
        for name, start, end in (("submit_to_scheduled", "submitted_at", "scheduled_at"),
                                 ("scheduled_to_provisioning", "scheduled_at", "provisioning_at"),
                                 ("provisioning_to_running", "provisioning_at", "running_at")):
            phases[name] = summarize([(_ts(j[end]) - _ts(j[start])).total_seconds()
                                      for j in ran if j.get(start) and j.get(end)])
        span = 0.0
        if ran:
            first_submit = min(_ts(j["submitted_at"]) for j in at_running.values())
            last_running = max(_ts(j["running_at"]) for j in ran)
            span = (last_running - first_submit).total_seconds()

        # Cancel them all (running or still waiting) and watch them end.
        def cancel(job_id):
            status, _job = api.call("POST", f"/api/v1/jobs/{job_id}/cancel/",
                                   tokens[submitted[job_id]["tenant"]],
                                   {"reason": "loadtest"})
            return job_id, status

        t1 = time.monotonic()
        cancel_errors = {job_id: status for job_id, status in pool.map(cancel, list(submitted))
                         if status not in (200, 409)}
        cancel_wall = time.monotonic() - t1
        _seen, cancel_wait = wait_for(lambda job: job is not None and job["state"] in FINISHED,
                                      UNFINISHED)
        final = states()
        final.update({job["id"]: job for job in pool.map(
            detail, [j for j in submitted if j not in final])})
        pool.shutdown()
        time.sleep(2 * FLUSH_WAIT_S)  # the processes' counters reach their files
        work = work_per_job(counters_before, read_counters(), len(submitted))
        to_cancelled: list[float] = []
        not_cancelled = []
        for job_id, job in final.items():
            if job.get("state") == "cancelled" and job.get("teardown_at") and job.get(
                    "finished_at"):
                to_cancelled.append(
                    (_ts(job["finished_at"]) - _ts(job["teardown_at"])).total_seconds())
            elif job.get("state") != "cancelled":
                not_cancelled.append({"id": job_id, "name": job.get("name"),
                                      "state": job.get("state"),
                                      "failure_reason": job.get("failure_reason")})

        kinds: dict[str, int] = {}
        for body in submitted.values():
            kinds[body["kind"]] = kinds.get(body["kind"], 0) + 1
        per_tenant: dict[str, int] = {}
        for body in submitted.values():
            per_tenant[body["tenant"]] = per_tenant.get(body["tenant"], 0) + 1
        running_stats = summarize(to_running)
        cancel_stats = summarize(to_cancelled)
        jobs_per_s = round(len(ran) / span, 2) if span > 0 else 0.0
        result = {
            "mode": "live",
            "url": api.base,
            "tag": tag,
            "jobs": n,
            "submitted": len(submitted),
            "refused": refused,
            "concurrency": options["concurrency"],
            "kinds": kinds,
            "tenants": per_tenant,
            "reached_running": len(ran),
            "never_running": never,
            "first_submit_to_last_running_s": round(span, 3),
            "jobs_per_s": jobs_per_s,
            "submit_to_running": running_stats,
            "phases": phases,
            "cancelled": sum(1 for j in final.values() if j.get("state") == "cancelled"),
            "cancel_to_cancelled": cancel_stats,
            "not_cancelled": not_cancelled,
            "cancel_errors": cancel_errors,
            "rate_offered": options["rate"] or None,
            "duration_s": options["duration"] if arrivals else None,
            "work": work,
            "wall_s": {"submit": round(submit_wall, 3), "wait_running": round(run_wait, 3),
                       "cancel": round(cancel_wall, 3), "wait_cancelled": round(cancel_wait, 3)},
        }
        lines = [
            f"live: {len(submitted)}/{n} jobs submitted to {api.base} "
            f"({', '.join(f'{k} {v}' for k, v in sorted(per_tenant.items()))}; "
            f"{', '.join(f'{k} {v}' for k, v in sorted(kinds.items()))}; "
            f"concurrency {options['concurrency']}) in {submit_wall:.2f} s",
            f"  {len(ran)} reached RUNNING: {jobs_per_s} jobs/s "
            f"(first submit → last RUNNING {span:.2f} s)",
            f"  submit→running p50 {running_stats['p50_s']:.3f} s, "
            f"p99 {running_stats['p99_s']:.3f} s, mean {running_stats['mean_s']:.3f} s, "
            f"max {running_stats['max_s']:.3f} s",
            "  phases p50/p99: " + ", ".join(
                f"{name.replace('_to_', '→')} {st['p50_s']:.3f}/{st['p99_s']:.3f} s"
                for name, st in phases.items()),
            f"  {result['cancelled']} CANCELLED; cancel→cancelled p50 "
            f"{cancel_stats['p50_s']:.3f} s, p99 {cancel_stats['p99_s']:.3f} s "
            f"(of {cancel_stats['count']} torn down)",
        ]
        if work.get("cpu_s_per_job"):
            lines.append("  CPU per job: " + ", ".join(
                f"{name} {1000 * v:.1f} ms" for name, v in work["cpu_s_per_job"].items())
                + f"; total {1000 * work['cpu_s_per_job_total']:.1f} ms")
        if work.get("queries_per_job") is not None:
            lines.append(f"  per job: {work['queries_per_job']:.1f} SQL statements, "
                         f"{work['messages_per_job']:.2f} Celery messages "
                         f"({work['published_per_job']:.2f} sent by console processes, "
                         f"{work['received_per_job']:.2f} tasks run by the orchestrator)")
        if work.get("postgres"):
            pg = work["postgres"]
            lines.append(f"  PostgreSQL per job: {pg['commits_per_job']:.1f} commits, "
                         f"{pg['rows_returned_per_job']:.0f} rows returned, "
                         f"backends {1000 * pg['backend_cpu_s_per_job']:.1f} ms CPU")
        for job in never:
            lines.append(f"  never RUNNING: #{job['id']} {job['name']} ({job['tenant']}, "
                         f"{job['kind']}) {job['state']}: "
                         f"{job['pending_code'] or ''} {job['pending_reason'] or ''}".rstrip())
        for job in not_cancelled:
            lines.append(f"  not cancelled: #{job['id']} {job['name']} {job['state']} "
                         f"{job['failure_reason'] or ''}".rstrip())
        for item in refused:
            lines.append(f"  refused: {item['name']} ({item['tenant']}): {item['error']}")
        result["summary_text"] = "\n".join(lines)
        return result
