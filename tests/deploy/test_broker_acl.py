"""Per-host broker users (issue 13, part 1, defence in depth): ``manage.py
broker_acl --redis --apply`` gives each host a Redis user that consumes its own
queue and publishes answers, and gets NOPERM on any other host's queue, on the
answers of others, on the shared unacked keys and on pub/sub.

Against the real Redis of ``REDIS_URL`` (database ``COUPLER_TEST_REDIS_DB``, 4
unless told); skipped without it. The ACL users get unique names and are
deleted afterwards; the ``default`` user is never touched.
"""

import os
import secrets
import signal
import subprocess
import sys
import time
from io import StringIO
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.core.management import call_command
from kombu import Connection, Exchange, Queue

from console.core.actions.agents import do_issue_agent_token
from console.core.models import Host
from coupler_common import broker_acl

A, B = "dgx-1", "dgx-2"
ROOT = Path(__file__).resolve().parents[2]


def _queue(name):
    return Queue(name, Exchange(name, type="direct"), routing_key=name)


@pytest.fixture
def redis_url():
    url = os.environ.get("REDIS_URL", "")
    if not url.startswith("redis"):
        pytest.skip("REDIS_URL is not set: the broker ACL test needs Redis 6+")
    import redis

    parts = urlsplit(url)
    url = urlunsplit(parts._replace(path=f"/{os.environ.get('COUPLER_TEST_REDIS_DB', '4')}"))
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).execute_command("ACL", "WHOAMI")
    except redis.RedisError as exc:
        pytest.skip(f"Redis at {url} is unreachable or has no ACLs: {exc}")
    return url


@pytest.fixture
def host_users(cluster, redis_url):
    """ACL users for hosts A and B (unique names), removed afterwards."""
    import redis

    prefix = f"coupler-test-{secrets.token_hex(4)}-"
    tokens = {name: do_issue_agent_token(Host.objects.get(name=name), actor="test")
              for name in (A, B)}
    out = StringIO()
    console = redis.Redis.from_url(redis_url)
    try:
        call_command("broker_acl", "--redis", "--apply", "--redis-url", redis_url,
                     "--user-prefix", prefix, "--console-user", "", "--host", A, "--host", B,
                     stdout=out)
        assert out.getvalue().count("applied:") == 2
        parts = urlsplit(redis_url)
        urls = {name: urlunsplit(parts._replace(netloc=(
            f"{prefix}{name}:{broker_acl.broker_password(token)}@{parts.hostname}:"
            f"{parts.port or 6379}"))) for name, token in tokens.items()}
        yield urls
    finally:
        console.execute_command("ACL", "DELUSER", f"{prefix}{A}", f"{prefix}{B}")
        console.delete(*[f"host.{n}" for n in (A, B, A + "0")], "workflow",
                       *[f"_kombu.binding.{q}" for q in (f"host.{A}", f"host.{B}", "workflow")],
                       *[f"_kombu.binding_permanent.{q}"
                         for q in (f"host.{A}", f"host.{B}", "workflow")],
                       *broker_acl.unacked_keys(f"{prefix}{A}").values())


def test_a_host_consumes_its_queue_and_answers_but_cannot_touch_another_hosts(
        host_users, redis_url):
    import redis

    # The console (here Redis's default user: full access) sends one command to each host.
    with Connection(redis_url) as console:
        for name in (A, B):
            console.SimpleQueue(_queue(f"host.{name}")).put({"command": f"for {name}"})
        answers = console.SimpleQueue(_queue("workflow"))

        url_a = host_users[A]
        with Connection(url_a, transport_options=broker_acl.transport_options(url_a)) as conn:
            own = conn.SimpleQueue(_queue(f"host.{A}"))
            message = own.get(timeout=5)
            assert message.payload == {"command": f"for {A}"}
            message.ack()
            conn.Producer().publish({"answer": f"from {A}"}, exchange="workflow",
                                    routing_key="workflow", declare=[], retry=False)
            with pytest.raises(redis.exceptions.NoPermissionError):
                conn.SimpleQueue(_queue(f"host.{B}")).get(timeout=2)

        assert answers.get(timeout=5).payload == {"answer": f"from {A}"}

    as_a = redis.Redis.from_url(url_a)
    refused = {
        "read B's queue": lambda: as_a.rpop(f"host.{B}"),
        "write B's queue": lambda: as_a.lpush(f"host.{B}", "forged"),
        "count B's queue": lambda: as_a.llen(f"host.{B}"),
        "a queue whose name starts like A's": lambda: as_a.lpush(f"host.{A}0", "x"),
        "read the answers": lambda: as_a.rpop("workflow"),
        "peek at the answers": lambda: as_a.lrange("workflow", 0, -1),
        "rebind the answer exchange": lambda: as_a.sadd("_kombu.binding.workflow", "x"),
        "read B's bindings": lambda: as_a.smembers(f"_kombu.binding.host.{B}"),
        "the shared unacked messages": lambda: as_a.hgetall("unacked"),
        "list every key": lambda: as_a.keys("*"),
        "broadcast to every worker": lambda: as_a.publish("/4.celery.pidbox", "x"),
        "see other connections": lambda: as_a.client_list(),
    }
    for what, attempt in refused.items():
        with pytest.raises(redis.exceptions.NoPermissionError):
            attempt()
            pytest.fail(f"host {A} could {what}")
    # Host B's command is still there, unread.
    assert redis.Redis.from_url(redis_url).llen(f"host.{B}") == 1


def test_the_printed_rules_name_every_host_and_the_console(cluster):
    for host in Host.objects.all():
        do_issue_agent_token(host, actor="test")
    out = StringIO()
    call_command("broker_acl", "--redis", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("ACL SETUSER coupler-console reset on >CONSOLE-PASSWORD ~* &* +@all")
    assert len(lines) == 1 + Host.objects.count()
    line_a = next(line for line in lines if line.startswith(f"ACL SETUSER host-{A} "))
    assert f"~host.{A} " in line_a and f'"~host.{A}\\x06\\x16?"' in line_a
    assert "%W~workflow " in line_a and "%R~_kombu.binding.workflow" in line_a
    assert "-@all" in line_a and "resetchannels" in line_a
    rabbit = StringIO()
    call_command("broker_acl", "--rabbitmq", "--host", A, stdout=rabbit)
    assert f"set_permissions -p coupler host-{A} '^host\\.{A}$' '^(host\\.{A}|workflow)$'" \
        in rabbit.getvalue()


def test_a_real_agent_worker_runs_with_its_restricted_user(host_users, redis_url, tmp_path):
    """The agent's Celery worker (hostagent.agent_tasks, the options `python -m
    hostagent run` passes) starts, consumes its queue and acknowledges as host A's
    user: an unsigned command is received and refused, with no NOPERM anywhere."""
    import redis
    from celery import Celery

    log_path = tmp_path / "agent-worker.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO", "PYTEST"))}
    env.update(COUPLER_BROKER_URL=host_users[A], PYTHONUNBUFFERED="1")
    with open(log_path, "wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "hostagent.agent_tasks", "worker",
             "--pool=solo", f"--queues=host.{A}", f"--hostname=agent-{A}@test",
             "--loglevel=INFO", "--without-gossip", "--without-mingle", "--without-heartbeat"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            _wait_for(lambda: "ready" in log_path.read_text(), 60, log_path)
            # Not the current app: shared tasks sent later in this process (the broker
            # tests that follow) must still go through the console's own app.
            console = Celery(broker=redis_url, set_as_current=False)
            try:
                console.send_task("hostagent.list_domains", args=[{"to": f"host:{A}"}],
                                  queue=f"host.{A}")
            finally:
                console.close()
            _wait_for(lambda: "refused hostagent.list_domains" in log_path.read_text(), 30,
                      log_path)
        finally:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(timeout=30)
    text = log_path.read_text()
    assert "NOPERM" not in text and "NoPermission" not in text, text[-3000:]
    assert redis.Redis.from_url(redis_url).llen(f"host.{A}") == 0


def _wait_for(check, timeout, log_path):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    raise AssertionError(log_path.read_text()[-3000:])
