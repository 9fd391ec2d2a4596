"""The broker is no longer an open door (issue 13, finding "High").

The three forgeries the security review reproduced, each now refused and
logged with nothing changed — and the genuine path, through the same sealing
and checking code, still working:

1. a host's agent sends a teardown to another host's queue;
2. a host (or a name that is no host) fails another tenant's job;
3. a host marks a job RUNNING whose VM never started.

The host side runs the real agent task bodies (``hostagent.agent_tasks``) on
libvirt's test driver; the console side runs the real answer task. Only the
broker hop is skipped: envelopes are handed over as Celery would deliver them.
"""

import logging
import time

import pytest

from console.core.actions.agents import do_issue_agent_token
from console.core.choices import JobState
from console.core.models import Event, Host, Job
from console.core.signed_messages import seal_command
from hostagent import agent_tasks, runtime
from hostagent.protocol import signing

pytestmark = pytest.mark.django_db(transaction=True)

RESULT_TASK = "console.core.tasks.workflow.host_result"


@pytest.fixture
def tokens(cluster):
    """Every host's agent token, issued by the console and configured in the agent."""
    issued = {h.name: do_issue_agent_token(h, actor="test") for h in Host.objects.all()}
    runtime.configure(runtime.AgentConfig(hosts=[
        runtime.HostConfig(name=name, token=token) for name, token in issued.items()]))
    return issued




def _forged_answer(signer_token, *, sender, payload, context, task=RESULT_TASK):
    return signing.seal({"payload": payload, "context": context}, sender=sender,
                        recipient=signing.CONSOLE, task=task,
                        key=signing.key_from_token(signer_token))


def _host_result(envelope):
    from console.core.tasks.workflow import host_result

    return host_result(envelope)


def _provisioning_job(submit, unsent, **spec):
    job = submit(**spec)
    job = Job.objects.get(pk=job.pk)
    assert job.state == JobState.PROVISIONING, job.pending_reason
    host, verb, kwargs, context = unsent[-1]
    assert verb == "provision"
    return job, host, kwargs, context


def _snapshot(job):
    job = Job.objects.get(pk=job.pk)
    return job.state, job.generation, Event.objects.filter(job=job).count()


# --- 1. a teardown sent to another host's queue ------------------------------------------

def _running_domain(host):
    spec = {"job_id": "41", "name": "coupler-job-41", "vcpus": 1, "memory_mib": 1024,
            "cpus": [0], "numa_nodes": [0], "gpus": [], "hugepages": False}
    assert runtime.provision(host, spec)["ok"]
    return spec["name"]


def test_a_teardown_forged_by_another_host_is_refused_and_the_vm_survives(tokens, caplog):
    victim, attacker = "dgx-2", "dgx-1"
    domain = _running_domain(victim)
    body = {"host": victim, "name": domain, "job_id": "41"}
    forgeries = {
        "signed with the attacker's own key":
            signing.seal(body, sender=signing.CONSOLE, recipient=f"host:{victim}",
                         task="hostagent.teardown", key=signing.key_from_token(tokens[attacker])),
        "sent as the attacker":
            signing.seal(body, sender=f"host:{attacker}", recipient=f"host:{victim}",
                         task="hostagent.teardown", key=signing.key_from_token(tokens[attacker])),
        "unsigned, as before": {"host": victim, "name": domain, "job_id": "41"},
    }
    with caplog.at_level(logging.WARNING, logger="hostagent.agent_tasks"):
        for why, forged in forgeries.items():
            result = agent_tasks.teardown.run(signed=forged)
            assert result["ok"] is False and result["refused"], why
    assert {d["name"] for d in runtime.list_domains(victim)} == {domain}
    assert caplog.text.count("refused hostagent.teardown") == len(forgeries)

    # A command the console sealed for the victim, but delivered to another host's
    # task name or rewritten to name another host, is refused as well.
    genuine = seal_command(victim, "hostagent.teardown", body)
    assert agent_tasks.provision.run(signed=genuine)["refused"]
    tampered = dict(genuine, to=f"host:{attacker}")
    assert agent_tasks.teardown.run(signed=tampered)["refused"]
    assert {d["name"] for d in runtime.list_domains(victim)} == {domain}

    # The console's own command works once, and only once.
    assert agent_tasks.teardown.run(signed=genuine)["ok"] is True
    assert runtime.list_domains(victim) == []
    assert "replay" in agent_tasks.teardown.run(signed=genuine)["error"]


def test_an_expired_command_is_refused(tokens):
    domain = _running_domain("dgx-1")
    stale = signing.seal({"host": "dgx-1", "name": domain}, sender=signing.CONSOLE,
                         recipient="host:dgx-1", task="hostagent.teardown",
                         key=signing.key_from_token(tokens["dgx-1"]), ttl_s=60,
                         now=time.time() - 120)
    assert "expired" in agent_tasks.teardown.run(signed=stale)["error"]
    assert {d["name"] for d in runtime.list_domains("dgx-1")} == {domain}


# --- 2. another tenant's job failed in the name of some host ---------------------------

def test_a_failure_forged_for_a_job_is_refused_and_logged(tokens, submit, unsent, caplog):
    job, victim_host, _kwargs, context = _provisioning_job(submit, unsent, gpus_per_host=8,
                                                           gpu_model="A100-SXM4-40GB")
    attacker = next(h for h in tokens if h != victim_host)
    before = _snapshot(job)
    failure = {"job_id": str(job.pk), "ok": False, "error": "forged: GPU fell off the bus"}
    forgeries = [
        # a host that does not exist (its "key" is anyone's guess)
        _forged_answer("guess", sender="host:ghost-99", payload={**failure, "host": "ghost-99"},
                       context=context),
        # a real host speaking for the host that holds the job
        _forged_answer(tokens[attacker], sender=f"host:{attacker}",
                       payload={**failure, "host": victim_host}, context=context),
        # a real host failing a job it does not hold, in its own name
        _forged_answer(tokens[attacker], sender=f"host:{attacker}",
                       payload={**failure, "host": attacker}, context=context),
        # the old unsigned (payload, context) call
        {**failure, "host": victim_host},
    ]
    with caplog.at_level(logging.WARNING, logger="coupler.security"):
        for forged in forgeries:
            assert _host_result(forged) is False
    assert _snapshot(job) == before
    assert "ghost-99" in caplog.text and "speaks for" in caplog.text
    assert "holds no part of it" in caplog.text


# --- 3. a job marked RUNNING with no VM started ------------------------------------------

def test_running_forged_without_a_vm_is_refused_and_the_real_answer_counts(
        tokens, submit, unsent, answers, caplog):
    job, host, kwargs, context = _provisioning_job(submit, unsent, gpus_per_host=4,
                                                   gpu_model="H100-SXM5-80GB")
    attacker = next(h for h in tokens if h != host)
    before = _snapshot(job)
    up = {"job_id": str(job.pk), "ok": True, "domain": job.domain_name, "state": "running"}
    with caplog.at_level(logging.WARNING, logger="coupler.security"):
        assert _host_result(_forged_answer(tokens[attacker], sender=f"host:{attacker}",
                                           payload={**up, "host": attacker},
                                           context=context)) is False
        assert _host_result(_forged_answer(tokens[attacker], sender=f"host:{host}",
                                           payload={**up, "host": host},
                                           context=context)) is False
        assert _host_result({**up, "host": host}) is False
    assert _snapshot(job) == before
    assert runtime.list_domains(host) == []

    # The genuine round trip: the console seals the command, the host's agent starts
    # the VM and answers, signed; the console applies it once.
    kwargs = {**kwargs, "report_to": {"task": RESULT_TASK, "queue": "workflow",
                                      "context": context}}
    envelope = seal_command(host, "hostagent.provision", {"host": host, **kwargs})
    assert agent_tasks.provision.run(signed=envelope)["ok"] is True
    ((name, (answer,), queue),) = answers
    assert (name, queue, answer["from"]) == (RESULT_TASK, "workflow", f"host:{host}")
    assert _host_result(answer) is True
    assert Job.objects.get(pk=job.pk).state == JobState.RUNNING
    assert [d["name"] for d in runtime.list_domains(host)] == [job.domain_name]
    with caplog.at_level(logging.WARNING, logger="coupler.security"):
        assert _host_result(answer) is False  # a replay
    assert "replay" in caplog.text


def test_check_results_for_another_host_are_refused(tokens):
    from console.core.tasks.hosts import CHECKS_RESULT_TASK, host_checks_result

    victim = Host.objects.get(name="dgx-2")
    forged = _forged_answer(tokens["dgx-1"], sender="host:dgx-1", task=CHECKS_RESULT_TASK,
                            payload={"host": "dgx-1", "ok": True, "checks": []},
                            context={"op": "checks", "host_id": victim.pk})
    assert host_checks_result(forged) is False
