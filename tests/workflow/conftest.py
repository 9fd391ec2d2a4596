import pytest


@pytest.fixture(autouse=True)
def _fresh_agent_runtime():
    """Each test starts with hosts that have no domains (one test:///default per host)."""
    from hostagent import runtime

    runtime.reset()
    yield
    runtime.reset()


@pytest.fixture
def domains():
    """domains(host) -> {name: state} of Coupler's domains on that simulated host."""
    from hostagent import runtime

    def read(host):
        return {d["name"]: d["state"] for d in runtime.list_domains(host)}

    return read


@pytest.fixture
def submit(tenant_a):
    """submit(**spec) -> Job, through the submit action (as the API does)."""
    from console.core.actions.jobs import do_submit_job

    def make(tenant=None, **spec):
        body = {"name": "train", "gpus_per_host": 2, "vcpus_per_host": 8,
                "memory_gib_per_host": 32}
        body.update(spec)
        return do_submit_job(tenant=tenant or tenant_a, actor="test", **body)

    return make


@pytest.fixture
def unsent(monkeypatch):
    """The console's commands, caught before the broker: the hosts never answer."""
    sent = []
    import console.core.tasks.workflow as workflow_tasks

    monkeypatch.setattr(workflow_tasks, "send_host_task",
                        lambda host, verb, kwargs, context=None, **kw:
                        sent.append((host, verb, kwargs, context)))
    return sent


@pytest.fixture
def answers(monkeypatch):
    """What the agent sends back over the broker (agent_tasks.report)."""
    from hostagent import agent_tasks

    out = []
    monkeypatch.setattr(agent_tasks.app, "send_task",
                        lambda name, args=None, kwargs=None, queue=None, **kw:
                        out.append((name, args, queue)))
    return out
