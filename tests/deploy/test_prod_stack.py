"""The production stack command (``deploy/run-local.sh``, ``make prod``) serves
the console through gunicorn with DEBUG off, and a smoke test passes: sign in,
submit, RUNNING, a backup of the live database restored into a fresh one, the
control plane restarted on it while the hosts' agent runs on, the reconciler
finding nothing lost, cancel (issue 13, part 6; docs/deploy.md).

It runs the real processes (gunicorn, Celery orchestrator and beat, the
simulated agent) against this machine's PostgreSQL and Redis, in a database of
its own (``<DATABASE_URL's name>_prod_smoke``, created and dropped here) and a
Redis database of its own (``COUPLER_SMOKE_REDIS_DB``, 14 unless told, flushed).
Skipped without ``DATABASE_URL``/``REDIS_URL`` (the fast SQLite run).
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smoke_env(tmp_path):
    database_url, redis_url = os.environ.get("DATABASE_URL", ""), os.environ.get("REDIS_URL", "")
    if not database_url.startswith("postgres") or not redis_url.startswith("redis"):
        pytest.skip("the production stack needs DATABASE_URL (PostgreSQL) and REDIS_URL")
    import psycopg
    import redis

    parts = urlsplit(database_url)
    name = parts.path.lstrip("/") + "_prod_smoke"
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    redis_db = os.environ.get("COUPLER_SMOKE_REDIS_DB", "14")
    r_parts = urlsplit(redis_url)
    smoke_redis = urlunsplit(r_parts._replace(path=f"/{redis_db}"))
    redis.Redis.from_url(smoke_redis).flushdb()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTEST", "COUPLER_", "CELERY_", "DJANGO_", "DEBUG"))}
    env.update(DATABASE_URL=urlunsplit(parts._replace(path=f"/{name}")), REDIS_URL=smoke_redis,
               COUPLER_VAR_DIR=str(tmp_path / "var"), PYTHON=str(ROOT / ".venv/bin/python"),
               COUPLER_SCHEDULE_INTERVAL_S="2", COUPLER_RECONCILE_INTERVAL_S="2",
               COUPLER_REPORT_GRACE_S="3")
    yield env
    redis.Redis.from_url(smoke_redis).flushdb()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _wait(what, check, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _ready(url):
    try:
        return requests.get(f"{url}/readyz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _row_counts(url):
    import psycopg

    with psycopg.connect(url) as conn:
        tables = [t for (t,) in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")]
        counts = {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}
        jobs = conn.execute("SELECT id, state, generation FROM core_job ORDER BY id").fetchall()
    return counts, jobs


def _restore_copy(live_url, tmp_path):
    """docs/deploy.md's backup and restore, on the live database with a job RUNNING:
    pg_dump (online) and pg_restore into an empty database; returns its URL."""
    import psycopg

    if not (shutil.which("pg_dump") and shutil.which("pg_restore")):
        pytest.skip("pg_dump/pg_restore are not installed (apt-get install postgresql-client)")
    dump = tmp_path / "coupler.dump"
    subprocess.run(["pg_dump", "--format=custom", f"--file={dump}", live_url], check=True,
                   timeout=120)
    parts = urlsplit(live_url)
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    restored_url = urlunsplit(parts._replace(path=parts.path + "_restored"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{parts.path.lstrip("/")}_restored" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{parts.path.lstrip("/")}_restored"')
    subprocess.run(["pg_restore", "--no-owner", f"--dbname={restored_url}", str(dump)],
                   check=True, timeout=120)
    return restored_url


def _drop(url):
    import psycopg

    parts = urlsplit(url)
    with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{parts.path.lstrip("/")}" WITH (FORCE)')


def _the_restore_lost_no_row(live_url, restored_url):
    """The stack is busy meanwhile (heartbeats), so the counts are compared on tables
    the workflow does not touch between the two reads, and the jobs exactly."""
    restored_counts, restored_jobs = _row_counts(restored_url)
    live_counts, live_jobs = _row_counts(live_url)
    assert restored_jobs == live_jobs and any(s == "running" for _, s, _ in restored_jobs)
    for table in ("core_job", "core_allocation", "core_host", "core_gpu", "core_tenant",
                  "core_quota", "auth_user", "core_apitoken", "django_migrations"):
        assert restored_counts[table] == live_counts[table] > 0, table


def _placement(url):
    import psycopg

    with psycopg.connect(url) as conn:
        return {
            "jobs": conn.execute("SELECT id, state, generation FROM core_job ORDER BY id")
                        .fetchall(),
            "allocations": conn.execute(
                "SELECT job_id, host_id, gpu_id, milli, cpus, memory_gib FROM core_allocation "
                "ORDER BY id").fetchall(),
            "repairs": conn.execute("SELECT count(*) FROM core_event WHERE kind = 'reconcile'")
                           .fetchone()[0],
            "incidents": conn.execute("SELECT count(*) FROM core_incident").fetchone()[0],
            "offline": conn.execute("SELECT count(*) FROM core_host WHERE state = 'offline'")
                           .fetchone()[0],
        }


def _start(args, env, log_path, port):
    log = open(log_path, "ab")
    process = subprocess.Popen([str(ROOT / "deploy/run-local.sh"), "--port", str(port),
                                *args], cwd=ROOT, env=env, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    process.log = log
    return process


def _stop(process):
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    process.log.close()


def _heartbeats_since(url, moment):
    import psycopg

    with psycopg.connect(url) as conn:
        return conn.execute("SELECT count(*) FROM core_host WHERE simulated AND "
                            "last_heartbeat > %s", [moment]).fetchone()[0]


def test_the_production_stack_serves_sign_in_submit_running_and_cancel(smoke_env, tmp_path):
    """Control plane and the (simulated) hosts' agent run apart, as in production, so
    the control plane can be restarted on a restored database while the hosts run on."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    stack_log = tmp_path / "stack.log"
    stack = _start(["--no-agents"], smoke_env, stack_log, port)
    agents = restored_stack = None
    restored_url = None
    try:
        try:
            _wait("/readyz", lambda: stack.poll() is None and _ready(url), 240)
        except AssertionError:
            raise AssertionError(stack_log.read_text()[-3000:]) from None
        agents = _start(["--agents-only", "--heartbeat", "1"], smoke_env,
                        tmp_path / "agents.log", port)
        # gunicorn, DEBUG off: a missing page is the plain 404, no debug page.
        assert requests.get(f"{url}/healthz").headers["Server"].startswith("gunicorn")
        missing = requests.get(f"{url}/no-such-page")
        assert missing.status_code == 404
        assert "Traceback" not in missing.text and "DEBUG = True" not in missing.text
        assert "URLconf" not in missing.text
        # Static files from collectstatic, served by WhiteNoise with a hashed name.
        login_page = requests.get(f"{url}/login/")
        css = re.search(r'href="(/static/css/coupler\.[0-9a-f]+\.css)"', login_page.text)
        assert css, login_page.text[:1500]
        assert requests.get(url + css.group(1)).status_code == 200

        creds = json.loads((Path(smoke_env["COUPLER_VAR_DIR"]) / "demo-credentials.json")
                           .read_text())
        tenant = creds["tenants"][0]
        session = requests.Session()
        token = session.get(f"{url}/login/").cookies["csrftoken"]
        signed_in = session.post(f"{url}/login/", allow_redirects=False, data={
            "username": tenant["username"], "password": tenant["password"],
            "csrfmiddlewaretoken": token}, headers={"Referer": f"{url}/login/"})
        assert signed_in.status_code == 302, signed_in.text[:500]
        assert session.get(f"{url}/").status_code == 200

        api = {"Authorization": f"Token {tenant['token']}"}
        submitted = requests.post(f"{url}/api/v1/jobs/", headers=api, json={
            "tenant": tenant["slug"], "name": "smoke", "gpus_per_host": 1,
            "vcpus_per_host": 4, "memory_gib_per_host": 16})
        assert submitted.status_code == 201, submitted.text
        job = f"{url}/api/v1/jobs/{submitted.json()['id']}/"

        def state():
            return requests.get(job, headers=api).json()["state"]

        try:
            _wait("RUNNING", lambda: state() == "running", 90)
        except AssertionError:
            raise AssertionError((tmp_path / "agents.log").read_text()[-3000:]) from None

        # Backup while it runs; restore into a fresh database; the control plane is
        # stopped and started again on the restored database. The agent runs on.
        restored_url = _restore_copy(smoke_env["DATABASE_URL"], tmp_path)
        _the_restore_lost_no_row(smoke_env["DATABASE_URL"], restored_url)
        before = _placement(restored_url)
        _stop(stack)
        restarted_at = datetime.now(UTC)
        restored_stack = _start(["--no-agents", "--no-seed"],
                                {**smoke_env, "DATABASE_URL": restored_url}, stack_log, port)
        _wait("/readyz on the restored database",
              lambda: restored_stack.poll() is None and _ready(url), 240)
        # Every host heartbeats to the restored console (same tokens: the dump holds
        # their hashes), and the reconciler gets a report newer than the job's grace.
        hosts = _heartbeats_since(restored_url, datetime(2000, 1, 1, tzinfo=UTC))
        _wait("heartbeats after the restart", lambda: _heartbeats_since(
            restored_url, restarted_at + timedelta(seconds=4)) >= hosts > 0, 60)
        repairs = subprocess.run(
            [str(ROOT / ".venv/bin/python"), "manage.py", "shell", "-c",
             "import json; from console.core.tasks.reconcile import reconcile; "
             "print(json.dumps(reconcile()))"],
            cwd=ROOT, env={**smoke_env, "DATABASE_URL": restored_url,
                           "DJANGO_SETTINGS_MODULE": "console.settings_dev",
                           "COUPLER_REPORT_GRACE_S": "3"},
            capture_output=True, text=True, timeout=120, check=True)
        assert json.loads(repairs.stdout.strip().splitlines()[-1]) == [], repairs.stdout
        after = _placement(restored_url)
        # Nothing lost: the same jobs RUNNING at the same generation on the same
        # allocations, the hosts' domains adopted (no orphan destroyed, no job
        # requeued, no repair recorded by beat's passes either), no host offline.
        assert after == before, (before, after)
        assert state() == "running"

        assert requests.post(job + "cancel/", headers=api, json={}).status_code == 200
        _wait("CANCELLED", lambda: state() == "cancelled", 90)
    finally:
        for process in (restored_stack, agents, stack):
            if process is not None:
                _stop(process)
        if restored_url:
            _drop(restored_url)
