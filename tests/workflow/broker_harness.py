"""Real processes for the real-broker tests (tests/workflow/test_broker.py).

- the **orchestrator**: ``celery -A console worker -Q scheduler,workflow --pool=solo``;
- the **host agent**: ``python -m hostagent run``, one process serving every test
  host on libvirt's ``test:///`` driver (the node files of hostagent/sim), as the demo
  runs it;

both against Redis db 15 and the PostgreSQL *test* database of this pytest run (the
tests are ``transaction=True``, so their rows are committed and visible to the
children). Each child runs in its own session (``start_new_session``) and is killed
with its whole process group; its output goes to a log file under pytest's tmp dir.

The pytest process talks to the children only through Redis: it publishes what the
console would (API submits, ``reconcile_cluster`` as beat sends it) and asks the
agent for its domains with ``hostagent.list_domains``, whose answer the agent sends to
a reply queue (``report_to``) that this module reads straight from Redis.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from hostagent.protocol import signing

REPO = Path(__file__).resolve().parents[2]
SIM = REPO / "hostagent" / "sim"
# Its own Redis database, flushed by the tests (COUPLER_TEST_REDIS_DB where several
# runs share one Redis server).
REDIS_DB = int(os.environ.get("COUPLER_TEST_REDIS_DB", "15"))


def agent_token(host: str) -> str:
    """The agent token of a test host: in the agent's config and (hashed) in the database
    (test_broker's ``agent_tokens`` fixture), so both ends derive the same message key."""
    return f"broker-test-token-{host}"

REPLY_QUEUE = "coupler-test.replies"
REPLY_TASK = "coupler-test.reply"  # never executed: the test reads the message itself

# name, hardware profile, rack. The `cluster` fixture registers the first four; the
# agent also serves BROKEN_HOST, whose cgroup root cannot be created (a host fault),
# registered only by the test that needs a host failing mid-gang.
HOSTS = [("dgx-1", "dgx_a100", "rack-a"), ("dgx-2", "dgx_a100", "rack-a"),
         ("hgx-1", "hgx_h100", "rack-b"), ("ada-1", "pcie_rtx6000ada", "rack-c"),
         ("dgx-3", "dgx_a100", "rack-a")]
BROKEN_HOST = "dgx-3"


def with_db(url: str, db: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + db, parts.query, parts.fragment))


def wait_for(predicate: Callable[[], object], timeout: float = 30.0, what: str = "condition",
             interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


class Child:
    """One child process in its own process group, logging to a file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path,
                 ready: str) -> None:
        self.name, self.argv, self.env, self.log, self.ready = name, argv, env, log, ready
        self.proc: subprocess.Popen | None = None
        self.paused = False

    def start(self, timeout: float = 60.0) -> None:
        offset = self.log.stat().st_size if self.log.exists() else 0
        with open(self.log, "ab") as out:
            out.write(f"\n=== start {self.name} at {time.strftime('%X')} ===\n".encode())
            out.flush()
            self.proc = subprocess.Popen(self.argv, cwd=REPO, env=self.env, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        self.paused = False

        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n"
                                   f"{self.tail()}")
            with open(self.log, "rb") as fh:
                fh.seek(offset)
                return self.ready.encode() in fh.read()

        try:
            wait_for(ready, timeout, f"{self.name} to be ready (log {self.log})", 0.05)
        except AssertionError:
            self.kill()
            raise

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass

    def pause(self) -> None:
        """SIGSTOP: the process holds what it has but takes nothing more."""
        self._signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        self._signal(signal.SIGCONT)
        self.paused = False

    def kill(self) -> None:
        """SIGKILL the whole group (no warm shutdown, nothing restored or acked)."""
        self._signal(signal.SIGKILL)
        if self.proc is not None:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self.paused = False

    def stop(self, timeout: float = 10.0) -> None:
        if self.paused:
            self.resume()
        self._signal(signal.SIGTERM)
        if self.proc is not None:
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        self.kill()

    def restart(self) -> None:
        self.kill()
        self.start()

    def tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def decode_message(raw: bytes) -> tuple[list, dict]:
    """(args, kwargs) of a Celery (protocol 2) message as kombu's Redis transport stores it."""
    envelope = json.loads(raw)
    body = envelope["body"]
    if envelope.get("properties", {}).get("body_encoding") == "base64":
        body = base64.b64decode(body)
    args, kwargs, _embed = json.loads(body)
    return args, kwargs


class Stack:
    """The orchestrator and the agent processes, plus the Redis-side helpers."""

    def __init__(self, *, redis_url: str, database_url: str, workdir: Path, console_app) -> None:
        import redis

        self.redis_url = redis_url
        self.redis = redis.Redis.from_url(redis_url)
        self.app = console_app
        self.workdir = workdir
        self.last_kill_at = 0.0
        tag = f"{os.getpid()}"
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("PYTEST", "COUPLER_", "CELERY_"))}
        env.update(DATABASE_URL=database_url, REDIS_URL=redis_url, PYTHONUNBUFFERED="1",
                   DJANGO_SETTINGS_MODULE="console.settings_dev",
                   COUPLER_VAR_DIR=str(workdir / "var"),
                   # reconcile_cluster (sent as beat sends it) re-drives steps older than this
                   COUPLER_STUCK_STEP_S="1")
        py = sys.executable
        orch_argv = [py, "-m", "celery", "-A", "console", "worker", "-Q", "scheduler,workflow",
                     "--pool=solo", "--concurrency=1", f"--hostname=orch-{tag}@%h",
                     "--loglevel=INFO", "--without-gossip", "--without-mingle"]
        self.orchestrator = Child("orchestrator", orch_argv, env, workdir / "orchestrator.log",
                                  ready=" ready.")
        config = self.write_agent_config(workdir)
        agent_env = dict(env, COUPLER_AGENT_CONFIG=str(config),
                         COUPLER_AGENT_STATE_DIR=str(workdir / "agent"),
                         COUPLER_BROKER_URL=redis_url, LOG_LEVEL="INFO")
        self.agent = Child("agent", [py, "-m", "hostagent", "run"], agent_env,
                           workdir / "agent.log", ready=" ready.")
        self.children = (self.orchestrator, self.agent)

    @staticmethod
    def write_agent_config(workdir: Path) -> Path:
        from coupler_demo.profiles import inventory_for

        not_a_dir = workdir / "cgroupfs-missing"  # a file: no cgroup can be made under it
        not_a_dir.write_text("not a cgroup filesystem\n")
        hosts = []
        for name, kind, rack in HOSTS:
            hosts.append({
                "name": name,
                "token": agent_token(name),
                "libvirt_uri": f"test://{SIM / f'node_{kind}.xml'}",
                "checks_root": str(SIM / "roots" / "good"),
                "cgroup_root": str(not_a_dir / "coupler") if name == BROKEN_HOST else "",
                "inventory": inventory_for(kind, name, group=rack),
            })
        # No console web server runs: the heartbeat loop's single early beat fails fast
        # (nothing listens on port 9) and the tests report domains themselves.
        path = workdir / "agent-config.json"
        path.write_text(json.dumps({"console_url": "http://127.0.0.1:9",
                                    "heartbeat_interval_s": 3600, "hosts": hosts}))
        return path

    # --- processes ------------------------------------------------------------------

    def start(self) -> None:
        for child in self.children:
            child.start()

    def stop(self) -> None:
        for child in self.children:
            child.stop()

    def ensure_running(self) -> None:
        for child in self.children:
            if child.paused:
                child.resume()
            if not child.alive():
                child.start()

    def kill(self, child: Child) -> None:
        child.kill()
        self.last_kill_at = time.time()

    def pause_idle(self, child: Child) -> None:
        """Freeze a worker so that new messages stay in Redis.

        A worker blocked in BRPOP when frozen would still receive the next message
        into its socket; kombu's BRPOP times out after 1 s, after which nothing
        more is handed to the frozen process.
        """
        child.pause()
        time.sleep(1.3)

    # --- Redis ----------------------------------------------------------------------

    def queue_length(self, queue: str) -> int:
        return int(self.redis.llen(queue))

    def purge(self) -> None:
        """Drop every message of db 15 (queues, unacked, replies) but keep kombu's
        binding tables: the running workers declared them once and would not again."""
        for key in self.redis.scan_iter(count=1000):
            if not key.startswith(b"_kombu.binding"):
                self.redis.delete(key)

    def lose_everything(self) -> None:
        """What a Redis restart without persistence does to db 15: every key gone
        (messages, unacked, kombu's binding tables) and every client disconnected."""
        self.redis.flushdb()
        me = self.redis.client_id()
        for client in self.redis.client_list():
            if str(client.get("db")) == str(REDIS_DB) and int(client["id"]) != me:
                try:
                    self.redis.client_kill_filter(_id=int(client["id"]))
                except Exception:
                    pass


    def bindings_ready(self, queues: list[str]) -> bool:
        return all(self.redis.exists(f"_kombu.binding.{q}") for q in queues)

    def busy(self) -> list[str]:
        """Messages waiting in a queue, or delivered and not yet acked since the last kill
        (a killed worker's unacked message would only come back after the visibility
        timeout; the reconciler, not redelivery, repairs what it was doing)."""
        waiting = []
        for key in self.redis.scan_iter(count=1000):
            if key.startswith(b"_kombu") or key.startswith(b"unacked"):
                continue
            if self.redis.type(key) == b"list" and key != REPLY_QUEUE.encode():
                n = self.redis.llen(key)
                if n:
                    waiting.append(f"{key.decode()}={n}")
        for tag, delivered in self.redis.zrange("unacked_index", 0, -1, withscores=True):
            if delivered > self.last_kill_at:
                waiting.append(f"unacked {tag.decode()}")
        return waiting

    def wait_idle(self, timeout: float = 20.0, settle: float = 0.3) -> None:
        """Until no message waits or is being worked on, for `settle` seconds."""
        deadline = time.monotonic() + timeout
        quiet_since = None
        while True:
            busy = self.busy()
            now = time.monotonic()
            if busy:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = now
            elif now - quiet_since >= settle:
                return
            if now > deadline:
                raise AssertionError(f"workers not idle after {timeout:.0f} s: {busy}")
            time.sleep(0.05)

    # --- asking the agent -----------------------------------------------------------

    def _declare_reply_queue(self) -> None:
        from kombu import Exchange, Queue

        with self.app.connection_for_write() as conn:
            Queue(REPLY_QUEUE, Exchange(REPLY_QUEUE, type="direct"), REPLY_QUEUE)(
                conn.default_channel).declare()

    def ask_agent(self, host: str, verb: str, timeout: float = 15.0, **kwargs) -> dict:
        """Send ``hostagent.<verb>`` to ``host.<host>`` and return the agent's answer."""
        rid = uuid.uuid4().hex
        self._declare_reply_queue()
        report_to = {"task": REPLY_TASK, "queue": REPLY_QUEUE, "context": {"rid": rid}}
        task = f"hostagent.{verb}"
        # Sealed as the console seals its commands (console.core.signed_messages).
        envelope = signing.seal({"host": host, **kwargs, "report_to": report_to},
                                sender=signing.CONSOLE, recipient=signing.host_principal(host),
                                task=task, key=signing.key_from_token(agent_token(host)))
        self.app.send_task(task, kwargs={"signed": envelope}, queue=f"host.{host}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            item = self.redis.brpop([REPLY_QUEUE], timeout=1)
            if item is None:
                continue
            args, _kwargs = decode_message(item[1])
            (answer,) = args
            assert answer["from"] == signing.host_principal(host), answer
            body = json.loads(answer["body"])
            payload, context = body["payload"], body["context"]
            if context.get("rid") == rid:
                return payload
        raise AssertionError(f"no answer from the agent to {verb} on {host} in {timeout} s")

    def domains(self, host: str, *, with_xml: bool = False) -> dict:
        """{name: state} (or {name: {"state", "xml"}}) of Coupler's domains on ``host``."""
        answer = self.ask_agent(host, "list_domains", with_xml=with_xml)
        if with_xml:
            return {d["name"]: d for d in answer["domains"]}
        return {d["name"]: d["state"] for d in answer["domains"]}

    def all_domains(self) -> dict[str, dict[str, str]]:
        return {name: self.domains(name) for name, _kind, _rack in HOSTS}

    def clear_domains(self) -> None:
        """Tear down every Coupler domain the agent holds (a clean slate between tests)."""
        for host, names in self.all_domains().items():
            for name in names:
                answer = self.ask_agent(host, "teardown", name=name, job_id="")
                assert answer.get("ok"), answer
        leftover = {h: d for h, d in self.all_domains().items() if d}
        assert not leftover, f"domains left on the agent: {leftover}"
