"""The workflow through the real broker, with real worker processes.

Once per module (tests/workflow/broker_harness.py): an orchestrator
(``celery -A console worker -Q scheduler,workflow --pool=solo``) and one host agent
process (``python -m hostagent run``, libvirt's ``test:///`` driver, one connection per
host) against Redis db 15 and this run's PostgreSQL test database. The tests commit
their rows (``transaction=True``), talk to the workers only through Redis, and ask
the agent itself what domains it holds (``hostagent.list_domains``).

Needs REDIS_URL (any db: these tests use db 15 of that server, and flush only it) and
a PostgreSQL DATABASE_URL (separate processes must share the test database); skipped
otherwise, e.g. on the SQLite default.

Between tests: the workers are idle (no message waiting or in flight), every message
of db 15 is dropped (kombu's binding tables are kept: the running workers declared
them once), every domain the agent holds is torn down, and pytest-django flushes the
database.
"""

import os
import threading
import time
import xml.etree.ElementTree as ET

import pytest

from console.core.choices import ACTIVE_JOB_STATES, JobState
from console.core.models import Allocation, Event, Gpu, Host, Job
from hostagent.protocol import signing
from tests.workflow.broker_harness import (
    BROKEN_HOST,
    HOSTS,
    REDIS_DB,
    Stack,
    agent_token,
    wait_for,
    with_db,
)

pytestmark = [pytest.mark.broker, pytest.mark.django_db(transaction=True)]


# --- fixtures ---------------------------------------------------------------------------


def _drop_pools(app):
    """Forget cached broker connections so the next publish uses the current URL."""
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture(scope="module")
def stack(django_db_setup, django_db_blocker, tmp_path_factory):
    url = os.environ.get("REDIS_URL")
    if not url:
        pytest.skip("REDIS_URL is not set: the real-broker tests need Redis")
    with django_db_blocker.unblock():
        from django.db import connection

        vendor, name = connection.vendor, connection.settings_dict["NAME"]
    if vendor != "postgresql":
        pytest.skip("the real-broker tests run worker processes that share the test "
                    "database: set DATABASE_URL=postgres://… (this run uses "
                    f"{vendor})")
    import redis

    url = with_db(url, str(REDIS_DB))
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis at {url} is unreachable: {exc}")

    from console.celery import app

    saved = (app.conf.broker_url, app.conf.broker_transport_options)
    app.conf.broker_url = url
    app.conf.broker_transport_options = {"visibility_timeout": 600}
    _drop_pools(app)
    workdir = tmp_path_factory.mktemp("broker")
    s = Stack(redis_url=url, database_url=with_db(os.environ["DATABASE_URL"], name),
              workdir=workdir, console_app=app)
    s.redis.flushdb()  # db 15 is ours; the workers declare their queues afresh
    try:
        s.start()
        yield s
    finally:
        s.stop()
        s.redis.flushdb()
        app.conf.broker_url, app.conf.broker_transport_options = saved
        _drop_pools(app)


@pytest.fixture(autouse=True)
def agent_tokens(transactional_db):
    """Every host registered during a test gets the agent token the agent is configured
    with: commands and answers are signed with keys derived from it."""
    from django.db.models.signals import pre_save

    def issue(sender, instance, **kwargs):
        if not instance.agent_token_hash:
            instance.set_agent_token(agent_token(instance.name))

    pre_save.connect(issue, sender=Host, dispatch_uid="broker-test-agent-tokens")
    yield
    pre_save.disconnect(sender=Host, dispatch_uid="broker-test-agent-tokens")


@pytest.fixture(autouse=True)
def clean_slate(stack, transactional_db):
    stack.ensure_running()
    stack.purge()
    stack.clear_domains()
    yield
    stack.ensure_running()
    try:
        stack.wait_idle(timeout=20)
    finally:
        stack.purge()
    # pytest-django flushes the database after this.


# --- helpers ----------------------------------------------------------------------------


def _state(job_id):
    return Job.objects.get(pk=job_id).state


def _wait_state(job_id, state, timeout=30.0):
    def reached():
        job = Job.objects.get(pk=job_id)
        return job.state == state

    try:
        wait_for(reached, timeout, f"job {job_id} {state}")
    except AssertionError:
        job = Job.objects.get(pk=job_id)
        events = list(Event.objects.filter(job_id=job_id).order_by("id")
                      .values_list("kind", "to_state", "reason"))
        raise AssertionError(f"job {job_id} is {job.state}, not {state}: {events}") from None


def _submit(client_for, member_a, **spec):
    body = {"tenant": "tenant-a", "name": "train", "gpus_per_host": 2, "hosts": 1,
            "vcpus_per_host": 8, "memory_gib_per_host": 32}
    body.update(spec)
    response = client_for(member_a).post("/api/v1/jobs/", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()["id"]


def _hosts_of(job_id):
    return set(Allocation.objects.filter(job_id=job_id).values_list("host__name", flat=True))


def report_domains(stack):
    """What a heartbeat carries: each registered host's domains, as its agent lists them."""
    from console.core.actions.agents import do_agent_heartbeat

    for host in Host.objects.all():
        domains = stack.domains(host.name)
        do_agent_heartbeat(host, {
            "host": host.name, "sent_at": time.time(), "agent_version": "test",
            "domains": sorted(n for n, s in domains.items() if s == "running"),
            "stopped_domains": sorted(n for n, s in domains.items() if s != "running"),
            "gpus": [], "healthy": True, "xid_events": [],
        })


def assert_consistent(stack):
    """No leaked allocation, no GPU counted twice, no orphan domain, no lost domain."""
    held = Allocation.objects.exclude(job__state__in=ACTIVE_JOB_STATES)
    assert not held.exists(), f"allocations of finished jobs: {list(held.values())}"
    per_gpu, exclusive = {}, {}
    for gpu_id, milli in Allocation.objects.filter(gpu__isnull=False).values_list("gpu_id",
                                                                                  "milli"):
        per_gpu[gpu_id] = per_gpu.get(gpu_id, 0) + milli
        if milli >= 1000:
            exclusive[gpu_id] = exclusive.get(gpu_id, 0) + 1
    for gpu in Gpu.objects.all():
        assert gpu.allocated_milli == per_gpu.get(gpu.pk, 0), (gpu, gpu.allocated_milli)
        assert gpu.allocated_milli <= 1000, gpu
    assert all(n == 1 for n in exclusive.values()), exclusive
    running = {}
    for job in Job.objects.filter(state=JobState.RUNNING):
        for host in _hosts_of(job.pk):
            running.setdefault(host, set()).add(job.domain_name)
    for name, _kind, _rack in HOSTS:
        on_host = stack.domains(name)
        assert set(on_host) == running.get(name, set()), (name, on_host, running)
        assert all(state == "running" for state in on_host.values()), (name, on_host)


def _pci(address_el) -> str:
    a = {k: int(v, 16) for k, v in address_el.attrib.items() if k in
         ("domain", "bus", "slot", "function")}
    return f"{a['domain']:04x}:{a['bus']:02x}:{a['slot']:02x}.{a['function']:x}"


# --- tests ------------------------------------------------------------------------------


def test_submit_runs_as_planned_and_cancel_releases_everything(stack, cluster, client_for,
                                                               member_a):
    job_id = _submit(client_for, member_a, gpu_model="A100-SXM4-40GB")
    _wait_state(job_id, JobState.RUNNING)
    job = Job.objects.get(pk=job_id)
    (host,) = _hosts_of(job_id)
    allocs = list(Allocation.objects.filter(job_id=job_id).select_related("gpu"))
    planned_gpus = sorted(a.gpu.pci_address for a in allocs if a.gpu)
    (base,) = [a for a in allocs if a.gpu is None]
    assert len(planned_gpus) == 2

    # The agent holds exactly this domain, defined as planned.
    domains = stack.domains(host, with_xml=True)
    assert set(domains) == {job.domain_name}
    assert domains[job.domain_name]["state"] == "running"
    root = ET.fromstring(domains[job.domain_name]["xml"])
    passed = sorted(_pci(a) for a in root.findall("./devices/hostdev/source/address"))
    assert passed == planned_gpus
    pinned = sorted(int(p.get("cpuset")) for p in root.findall("./cputune/vcpupin"))
    assert pinned == sorted(base.cpus)
    assert int(root.findtext("vcpu")) == len(base.cpus) == 8
    assert {h: d for h, d in stack.all_domains().items() if d} == {host: {job.domain_name:
                                                                          "running"}}
    assert_consistent(stack)

    response = client_for(member_a).post(f"/api/v1/jobs/{job_id}/cancel/")
    assert response.status_code in (200, 202), response.content
    _wait_state(job_id, JobState.CANCELLED)
    assert stack.domains(host) == {}
    assert not Allocation.objects.filter(job_id=job_id).exists()
    assert not Gpu.objects.exclude(allocated_milli=0).exists()
    stack.wait_idle()
    assert_consistent(stack)


def test_a_host_failing_mid_gang_releases_everything(stack, cluster, client_for, member_a):
    """A 2-host gang on dgx-1 + dgx-3, whose agent cannot create the job's cgroup."""
    from console.core.actions.hosts import do_cordon_host
    from console.core.actions.inventory import do_register_host
    from coupler_demo.profiles import inventory_for

    do_cordon_host(Host.objects.get(name="dgx-2"), actor="test", reason="keep the gang off")
    do_register_host(cluster=cluster, name=BROKEN_HOST,
                     inventory=inventory_for("dgx_a100", BROKEN_HOST, group="rack-a"))
    # The cycles these changes asked for are over. (A cycle already running reads the
    # hosts and the queue in separate statements, READ COMMITTED: one that read the
    # hosts before the cordon and the queue after the submit would still use dgx-2.)
    stack.wait_idle()
    job_id = _submit(client_for, member_a, gpus_per_host=8, hosts=2,
                     gpu_model="A100-SXM4-40GB")
    wait_for(lambda: Job.objects.get(pk=job_id).pending_code == "retry_backoff", 30,
             "requeued for retry")
    job = Job.objects.get(pk=job_id)
    assert job.state == JobState.QUEUED and job.attempts == 1
    failed = Event.objects.get(job_id=job_id, kind="member_failed")
    assert failed.host.name == BROKEN_HOST and "cgroup" in failed.reason
    placed = Event.objects.get(job_id=job_id, to_state=JobState.SCHEDULED).data["hosts"]
    assert sorted(placed) == ["dgx-1", BROKEN_HOST]
    assert Event.objects.filter(job_id=job_id, kind="member_down").count() == 2
    stack.wait_idle()
    assert stack.domains("dgx-1") == {} and stack.domains(BROKEN_HOST) == {}
    assert not Allocation.objects.exists()
    assert not Gpu.objects.exclude(allocated_milli=0).exists()
    assert_consistent(stack)


@pytest.mark.parametrize("victim", ["agent", "orchestrator"])
def test_a_worker_killed_during_provisioning(stack, cluster, client_for, member_a, victim,
                                             settings):
    """SIGKILL mid-provisioning, restart, reconcile: the job completes (RUNNING, one
    domain); nothing leaks.

    agent: it received the provision command and dies before acting on it (the
    message, popped from Redis, is lost with the process; libvirt's test driver
    forgets its domains with it).
    orchestrator: the agent has started the domain and answered; the orchestrator
    dies holding that answer, which is lost.
    """
    from console.core.tasks.reconcile import reconcile

    stack.pause_idle(stack.agent)
    job_id = _submit(client_for, member_a, gpus_per_host=2)
    _wait_state(job_id, JobState.PROVISIONING)
    (host,) = _hosts_of(job_id)
    domain = Job.objects.get(pk=job_id).domain_name
    wait_for(lambda: stack.queue_length(f"host.{host}") == 1, 10, "the provision command")
    if victim == "agent":
        stack.agent.resume()
        stack.kill(stack.agent)  # it may or may not have taken the command: either way
        stack.agent.start()
    else:
        # Frozen inside its BRPOP, the orchestrator is handed the next message (almost
        # always: unless its 1 s BRPOP ends first, and then the answer waits in Redis).
        stack.orchestrator.pause()
        stack.agent.resume()
        wait_for(lambda: stack.domains(host) == {domain: "running"}, 15, "the domain")
        try:
            wait_for(lambda: stack.queue_length("workflow") == 0, 3, "the answer taken")
        except AssertionError:
            pass
        stack.kill(stack.orchestrator)  # it dies holding the answer
        stack.orchestrator.start()
    time.sleep(0.5)
    assert _state(job_id) in (JobState.PROVISIONING, JobState.RUNNING)

    # On a loaded machine the resumed agent may start the domain and answer before the
    # kill lands: the job is RUNNING and its domain died with the agent (libvirt's test
    # driver). The reports below are taken after the job started (no grace needed), so
    # the reconciler requeues it and it runs again: a second RUNNING, never a job
    # RUNNING without its domain.
    settings.COUPLER_REPORT_GRACE_S = 0
    report_domains(stack)  # what the next heartbeats carry
    reconcile(stuck_s=0)  # as beat's reconcile_cluster, once the step is old enough
    _wait_state(job_id, JobState.RUNNING)
    for _round in range(3):  # beat's rounds
        stack.wait_idle()
        report_domains(stack)
        reconcile(stuck_s=0)
        stack.wait_idle()
        if _state(job_id) == JobState.RUNNING and stack.domains(host) == {domain: "running"}:
            break
        _wait_state(job_id, JobState.RUNNING)
    assert _state(job_id) == JobState.RUNNING
    assert stack.domains(host) == {domain: "running"}
    runs = Event.objects.filter(job_id=job_id, to_state=JobState.RUNNING).count()
    requeued = Event.objects.filter(job_id=job_id, reason__contains="vanished").exists()
    assert runs == (2 if requeued else 1), (runs, requeued)
    assert victim == "agent" or not requeued  # the orchestrator's death loses no domain
    assert Event.objects.filter(job_id=job_id, kind="member_up").count() == runs
    assert_consistent(stack)


def test_the_broker_restarting_mid_workflow_loses_no_job(stack, cluster, client_for, member_a):
    """Redis loses every message (and kombu's routing tables) and drops every client
    while one job waits for its host and another for a scheduling cycle; the
    reconciler (beat's reconcile_cluster message) re-drives both from the database."""
    from console.core.tasks.reconcile import reconcile_cluster

    stack.pause_idle(stack.agent)
    first = _submit(client_for, member_a, gpus_per_host=1, gpu_model="A100-SXM4-40GB")
    _wait_state(first, JobState.PROVISIONING)
    (host,) = _hosts_of(first)
    wait_for(lambda: stack.queue_length(f"host.{host}") == 1, 10, "the provision command")
    stack.pause_idle(stack.orchestrator)
    second = _submit(client_for, member_a, gpus_per_host=1, gpu_model="H100-SXM5-80GB")
    wait_for(lambda: stack.queue_length("scheduler") >= 1, 10, "the cycle request")

    stack.lose_everything()
    stack.agent.resume()
    stack.orchestrator.resume()
    queues = ["scheduler", "workflow"] + [f"host.{name}" for name, _k, _r in HOSTS]
    wait_for(lambda: stack.bindings_ready(queues), 30, "the workers to reconnect")
    time.sleep(1.5)
    assert _state(first) == JobState.PROVISIONING  # its command was lost
    assert _state(second) == JobState.QUEUED  # its cycle request was lost
    assert stack.domains(host) == {}

    reconcile_cluster.delay()  # what beat sends every COUPLER_RECONCILE_INTERVAL_S
    _wait_state(first, JobState.RUNNING)
    _wait_state(second, JobState.RUNNING)
    assert Event.objects.filter(job_id=first, kind="reconcile").exists()
    stack.wait_idle()
    assert_consistent(stack)


def test_a_task_delivered_twice_has_no_double_effect(stack, cluster, client_for, member_a):
    from console.core.tasks.workflow import host_result, provision_job

    stack.pause_idle(stack.agent)
    job_id = _submit(client_for, member_a, gpus_per_host=2)
    _wait_state(job_id, JobState.PROVISIONING)
    (host,) = _hosts_of(job_id)
    wait_for(lambda: stack.queue_length(f"host.{host}") == 1, 10, "the provision command")
    milli = dict(Gpu.objects.values_list("pk", "allocated_milli"))
    rows = Allocation.objects.filter(job_id=job_id).count()

    # provision_job delivered twice more while the job provisions: the host gets the
    # command three times.
    provision_job.delay(job_id)
    provision_job.delay(job_id)
    wait_for(lambda: stack.queue_length(f"host.{host}") == 3, 10, "three provision commands")
    stack.agent.resume()
    _wait_state(job_id, JobState.RUNNING)
    stack.wait_idle()
    job = Job.objects.get(pk=job_id)
    # The agent's answer delivered twice more, and provision_job once more.
    answer = {"job_id": str(job_id), "host": host, "ok": True, "domain": job.domain_name,
              "state": "running", "error": ""}
    context = {"op": "provision", "job_id": job_id, "generation": job.generation, "host": host}
    for _ in range(2):  # sealed anew each time, as a redelivering agent would: no replay
        host_result.delay(signing.seal(
            {"payload": answer, "context": context}, sender=signing.host_principal(host),
            recipient=signing.CONSOLE, task=host_result.name,
            key=signing.key_from_token(agent_token(host))))
    provision_job.delay(job_id)
    stack.wait_idle()

    assert _state(job_id) == JobState.RUNNING
    assert stack.domains(host) == {job.domain_name: "running"}
    assert dict(Gpu.objects.values_list("pk", "allocated_milli")) == milli
    assert Allocation.objects.filter(job_id=job_id).count() == rows
    assert Event.objects.filter(job_id=job_id, to_state=JobState.PROVISIONING).count() == 1
    assert Event.objects.filter(job_id=job_id, to_state=JobState.RUNNING).count() == 1
    assert Event.objects.filter(job_id=job_id, kind="member_up").count() == 1
    assert_consistent(stack)


def test_a_late_command_after_cancel_leaves_no_orphan_domain(stack, cluster, client_for,
                                                             member_a):
    """A provision command delivered again after the job ended (as a message restored
    after its visibility timeout would be) starts a domain nobody wants: the next
    heartbeat reports it and the reconciler destroys it."""
    from console.core.actions.workflow import provision_spec
    from console.core.tasks.reconcile import reconcile

    job_id = _submit(client_for, member_a, gpus_per_host=1)
    _wait_state(job_id, JobState.RUNNING)
    job = Job.objects.get(pk=job_id)
    (host,) = _hosts_of(job_id)
    spec = provision_spec(job, Host.objects.get(name=host)).to_dict()
    response = client_for(member_a).post(f"/api/v1/jobs/{job_id}/cancel/")
    assert response.status_code in (200, 202), response.content
    _wait_state(job_id, JobState.CANCELLED)
    assert stack.domains(host) == {}

    assert stack.ask_agent(host, "provision", spec=spec)["ok"]  # the late duplicate
    assert stack.domains(host) == {job.domain_name: "running"}
    report_domains(stack)
    assert f"orphan {job.domain_name}@{host}" in reconcile(stuck_s=0)
    wait_for(lambda: stack.domains(host) == {}, 15, "the orphan destroyed")
    assert Event.objects.filter(job_id=job_id, kind="reconcile").exists()
    stack.wait_idle()
    assert_consistent(stack)


def _race(n, fn):
    from django.db import connection

    barrier = threading.Barrier(n)
    errors = []

    def run():
        try:
            barrier.wait(timeout=10)
            fn()
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a cycle hangs"
    return errors


def _assert_no_gpu_twice():
    assert not Gpu.objects.filter(allocated_milli__gt=1000).exists()
    per_gpu, exclusive = {}, {}
    for gpu_id, milli in Allocation.objects.filter(gpu__isnull=False).values_list("gpu_id",
                                                                                  "milli"):
        per_gpu[gpu_id] = per_gpu.get(gpu_id, 0) + milli
        exclusive[gpu_id] = exclusive.get(gpu_id, 0) + (milli >= 1000)
    assert all(v <= 1000 for v in per_gpu.values())
    assert all(v <= 1 for v in exclusive.values())
    for gpu in Gpu.objects.all():
        assert gpu.allocated_milli == per_gpu.get(gpu.pk, 0)
    for job in Job.objects.filter(state__in=ACTIVE_JOB_STATES):
        allocs = list(Allocation.objects.filter(job=job))
        assert len({a.host_id for a in allocs}) == job.host_count
        assert sum(1 for a in allocs if a.gpu_id) == job.host_count * job.gpus_per_host


def _queue_jobs(stack, tenant, n=40):
    stack.wait_idle()  # the cycles the new cluster asked for are over: only ours race
    for i in range(n):
        Job.objects.create(tenant=tenant, name=f"j{i}", gpus_per_host=1 + i % 4,
                           vcpus_per_host=4, memory_gib_per_host=16)


def test_eight_racing_cycles_never_allocate_a_gpu_twice(stack, cluster, tenant_a):
    from console.core.planning import run_cycle

    _queue_jobs(stack, tenant_a)
    reports = []
    errors = _race(8, lambda: reports.append(run_cycle().as_dict()))
    assert not errors, errors
    assert any(r["ran"] for r in reports), reports  # one leader (or more, one after another)
    assert Job.objects.exclude(state=JobState.QUEUED).exists()  # some were placed
    _assert_no_gpu_twice()
    stack.wait_idle()  # the placed jobs were provisioned by the workers meanwhile
    _assert_no_gpu_twice()
    assert_consistent(stack)


def test_eight_cycles_without_the_leader_lock_are_stopped_by_the_database(
        stack, cluster, tenant_a, monkeypatch):
    """Every cycle plans on the same snapshot; the database refuses the overlaps."""
    from django.db import OperationalError

    from console.core import planning

    monkeypatch.setattr(planning, "acquire_leader_lock", lambda: True)
    _queue_jobs(stack, tenant_a)
    errors = _race(8, planning.run_cycle)
    # A cycle may lose a deadlock to another and roll back whole; nothing else fails.
    assert all(isinstance(e, OperationalError) and "deadlock" in str(e) for e in errors), errors
    assert len(errors) < 8
    assert Job.objects.exclude(state=JobState.QUEUED).exists()  # some were placed
    _assert_no_gpu_twice()
    stack.wait_idle()
    _assert_no_gpu_twice()
    assert_consistent(stack)


def test_sustained_submits_with_the_agent_killed_mid_run(stack, cluster, client_for, member_a,
                                                         settings):
    """Jobs keep arriving while the agent is SIGKILLed and restarted: every job ends
    RUNNING with exactly one domain (the reconciler re-drives the commands the dead
    agent lost, and requeues the jobs whose domains died with it: libvirt's test
    driver keeps its domains in the agent process), no GPU is allocated twice, no
    domain is orphaned; then every job cancels clean."""
    from console.core.tasks.reconcile import reconcile

    # The reports below are taken after the jobs started: no grace needed.
    settings.COUPLER_REPORT_GRACE_S = 0

    jobs = []
    for i in range(12):
        jobs.append(_submit(client_for, member_a, name=f"load-{i}", gpus_per_host=1,
                            vcpus_per_host=2, memory_gib_per_host=4))
        if i == 5:
            stack.kill(stack.agent)  # mid-run: whatever it held is lost with it
        elif i == 8:
            stack.agent.start()
        time.sleep(0.05)

    def all_running():
        return not Job.objects.filter(pk__in=jobs).exclude(state=JobState.RUNNING).exists()

    def settled():
        try:
            stack.wait_idle(timeout=30)
        except AssertionError:
            return False
        if not all_running():
            return False
        try:
            assert_consistent(stack)
        except AssertionError:
            return False
        return True

    for _round in range(12):
        if settled():
            break
        report_domains(stack)
        reconcile(stuck_s=0)
        time.sleep(1.0)
    states = dict(Job.objects.filter(pk__in=jobs).values_list("pk", "state"))
    assert set(states.values()) == {JobState.RUNNING}, states
    _assert_no_gpu_twice()
    assert_consistent(stack)

    client = client_for(member_a)
    for job_id in jobs:
        assert client.post(f"/api/v1/jobs/{job_id}/cancel/", {}, format="json").status_code == 200
    for job_id in jobs:
        _wait_state(job_id, JobState.CANCELLED)
    stack.wait_idle()
    assert_consistent(stack)
