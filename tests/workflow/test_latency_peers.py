"""network.hop_latency between agents, console side: registration stores the agent's
echo responder, heartbeat answers list the peers to measure against, run_host_checks
sends them; end to end with two agents' responders on 127.0.0.1."""

import time

import pytest

from console.core.actions.agent_checks import latency_peers
from console.core.actions.agents import do_issue_agent_token
from console.core.actions.inventory import do_register_host
from console.core.choices import HostState
from console.core.models import CheckResult, Cluster, Host
from coupler_demo.profiles import inventory_for
from hostagent import runtime

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _check_inputs_read_every_time(settings):
    """These tests change hosts between heartbeats and read the answer at once; the
    per-host reuse of check inputs is tested on its own below."""
    settings.COUPLER_CHECK_INPUTS_CACHE_S = 0


@pytest.fixture
def tokens(cluster):
    return {h.name: do_issue_agent_token(h, actor="test") for h in Host.objects.all()}


def _post(api_client, host, what, token, body):
    response = api_client.post(f"/api/v1/agent/hosts/{host}/{what}/", body, format="json",
                               HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200, response.content
    return response.json()


def _register(api_client, tokens, name, endpoint, **extra):
    return _post(api_client, name, "register", tokens[name],
                 {"agent_version": "t", "latency_endpoint": endpoint, **extra})


def _beat(api_client, tokens, name, **extra):
    return _post(api_client, name, "heartbeat", tokens[name],
                 {"host": name, "sent_at": time.time(), "domains": [], **extra})


def test_register_stores_the_endpoint_and_an_inventory_refresh_keeps_it(api_client, tokens):
    _register(api_client, tokens, "dgx-1", "10.0.0.1:7471",
              inventory=inventory_for("dgx_a100", "dgx-1", group="rack-a"))
    host = Host.objects.get(name="dgx-1")
    assert host.latency_endpoint == "10.0.0.1:7471"
    assert host.board_name == "DGXA100"  # the inventory's facts too, typed
    # An admin's inventory refresh (import, seed) does not wipe what the agent reported.
    do_register_host(cluster=host.cluster, name="dgx-1",
                     inventory=inventory_for("dgx_a100", "dgx-1", group="rack-a"))
    assert Host.objects.get(name="dgx-1").latency_endpoint == "10.0.0.1:7471"
    # A heartbeat may move it; an agent restarted without a responder clears it.
    _beat(api_client, tokens, "dgx-1", latency_endpoint="10.0.0.1:7500")
    assert Host.objects.get(name="dgx-1").latency_endpoint == "10.0.0.1:7500"
    _beat(api_client, tokens, "dgx-1")  # an older agent's heartbeat says nothing: kept
    assert Host.objects.get(name="dgx-1").latency_endpoint == "10.0.0.1:7500"
    _register(api_client, tokens, "dgx-1", "")
    assert Host.objects.get(name="dgx-1").latency_endpoint == ""
    _register(api_client, tokens, "dgx-1", "no port here")  # malformed: not stored
    assert Host.objects.get(name="dgx-1").latency_endpoint == ""


def test_heartbeat_answers_list_peers_same_rack_first_never_self_never_offline(api_client,
                                                                               tokens):
    # cluster: dgx-1, dgx-2 (rack-a), hgx-1 (rack-b), ada-1 (rack-c)
    for n, name in enumerate(["dgx-1", "dgx-2", "hgx-1", "ada-1"], start=1):
        answer = _register(api_client, tokens, name, f"10.0.0.{n}:7471")
    # ada-1 (rack-c) has no rack-mate: the others by name
    assert answer["peers"] == ["10.0.0.1:7471", "10.0.0.2:7471", "10.0.0.3:7471"]
    assert _beat(api_client, tokens, "dgx-1")["peers"] == [
        "10.0.0.2:7471",  # same rack first
        "10.0.0.4:7471", "10.0.0.3:7471"]  # then by name: ada-1, hgx-1
    # Another cluster's host, an offline one, a fifth host: never more than 3, never self.
    other = Cluster.objects.create(name="Other", slug="other")
    do_register_host(cluster=other, name="far-1",
                     inventory={**inventory_for("dgx_a100", "far-1", group="rack-a"),
                                "facts": {"latency_endpoint": "10.9.9.9:7471"}})
    Host.objects.filter(name="dgx-2").update(state=HostState.OFFLINE)
    peers = _beat(api_client, tokens, "dgx-1")["peers"]
    assert peers == ["10.0.0.4:7471", "10.0.0.3:7471"]
    Host.objects.filter(name="dgx-2").update(state=HostState.READY)
    do_register_host(cluster=Host.objects.get(name="dgx-1").cluster, name="dgx-3",
                     inventory={**inventory_for("dgx_a100", "dgx-3", group="rack-a"),
                                "facts": {"latency_endpoint": "10.0.0.5:7471"}})
    assert latency_peers(Host.objects.get(name="dgx-1")) == ["10.0.0.2:7471", "10.0.0.5:7471",
                                                              "10.0.0.4:7471"]
    # One agent serving several hosts (the demo) advertises one endpoint: measured once.
    Host.objects.exclude(cluster=other).update(latency_endpoint="127.0.0.1:7000")
    assert latency_peers(Host.objects.get(name="dgx-1")) == ["127.0.0.1:7000"]


def test_run_host_checks_sends_the_same_peers(api_client, tokens, monkeypatch):
    from console.core.tasks import hosts

    for n, name in enumerate(["dgx-1", "dgx-2", "hgx-1"], start=1):
        _register(api_client, tokens, name, f"10.0.0.{n}:7471")
    sent = []
    monkeypatch.setattr(hosts, "send_host_task", lambda *args, **kw: sent.append(args))
    hgx = Host.objects.get(name="hgx-1")
    assert hosts.run_host_checks(hgx.pk) is True
    (host_name, task, inputs, _context), = sent
    assert (host_name, task) == ("hgx-1", "run_checks")
    assert inputs["peers"] == ["10.0.0.1:7471", "10.0.0.2:7471"] == latency_peers(hgx)
    # The agent's own check rounds get the same inputs in the heartbeat answer.
    from console.core.models import FirmwareBaseline

    FirmwareBaseline.objects.create(board_name=hgx.board_name, bios_version="2.1.4")
    answer = _beat(api_client, tokens, "hgx-1")
    assert answer["peers"] == inputs["peers"]
    assert answer["baseline"] == {"board_name": hgx.board_name, "bios_version": "2.1.4"}


def test_two_agents_measure_each_other_end_to_end(api_client, tokens, tmp_path):
    """Two agents (each its own HeartbeatLoop and echo responder on a 127.0.0.1 port)
    talk to the console's real endpoints; each check round measures the other, and the
    console's re-run sends the same peer."""
    from console.core.tasks.hosts import run_host_checks

    def post(url, token, body):
        response = api_client.post(url, body, format="json",
                                   HTTP_AUTHORIZATION=f"Bearer {token}")
        assert response.status_code == 200, response.content
        return response.json()

    responders, loops = {}, {}
    try:
        for name in ("dgx-1", "dgx-2"):
            responders[name] = runtime.LatencyResponder("127.0.0.1:0")
            responders[name].start()
            config = runtime.AgentConfig(console_url="", hosts=[
                runtime.HostConfig(name=name, token=tokens[name])])
            runtime.configure(config)
            loops[name] = runtime.HeartbeatLoop(config, post=post, checks_every=1,
                                                state_dir=tmp_path,
                                                latency_endpoint=responders[name].endpoint)
        for _ in range(3):  # dgx-1 registers before dgx-2 exists: it learns of it a beat later
            for name in ("dgx-1", "dgx-2"):
                loops[name].beat_once()
        for name, other in (("dgx-1", "dgx-2"), ("dgx-2", "dgx-1")):
            host = Host.objects.get(name=name)
            assert host.latency_endpoint == responders[name].endpoint
            assert loops[name].peers[name] == [responders[other].endpoint]
            row = CheckResult.objects.get(host=host, check_id="network.hop_latency")
            assert row.status == "unknown", row.evidence  # loopback: proves no fabric
            assert row.evidence["method"].startswith("tcp_rtt_half")
            figures = row.evidence[responders[other].endpoint]
            assert figures["one_way_us"] > 0 and figures["rounds"] == 20
            reason = row.evidence["reason"]
            assert "loopback" in reason or "upper bound" in reason
        # The console's re-run (eager: the agent's task inline) measures the same peer.
        CheckResult.objects.filter(check_id="network.hop_latency").delete()
        run_host_checks.delay(Host.objects.get(name="dgx-1").pk, actor="admin")
        row = CheckResult.objects.get(host__name="dgx-1", check_id="network.hop_latency")
        assert list(k for k in row.evidence if ":" in k) == [responders["dgx-2"].endpoint]
    finally:
        for r in responders.values():
            r.stop.set()
        runtime.reset()


def test_heartbeat_answers_reuse_check_inputs_for_a_while_registration_reads_anew(
        api_client, tokens, settings):
    settings.COUPLER_CHECK_INPUTS_CACHE_S = 30
    names = sorted(tokens)
    a, b = names[0], names[1]
    _register(api_client, tokens, b, "127.0.0.1:7001")
    first = _beat(api_client, tokens, a)
    assert "127.0.0.1:7001" in first["peers"]
    # b moves to another endpoint: a's next heartbeats still get the kept inputs …
    _register(api_client, tokens, b, "127.0.0.1:7002")
    assert _beat(api_client, tokens, a)["peers"] == first["peers"]
    # … and a registration (an agent restart) reads them anew.
    assert "127.0.0.1:7002" in _register(api_client, tokens, a, "")["peers"]
    settings.COUPLER_CHECK_INPUTS_CACHE_S = 0
    assert "127.0.0.1:7002" in _beat(api_client, tokens, a)["peers"]


def test_kept_check_inputs_give_the_same_peers_as_reading_them(api_client, tokens, settings):
    names = sorted(tokens)
    for port, name in enumerate(names):
        _register(api_client, tokens, name, f"127.0.0.1:{7100 + port}")
    Host.objects.filter(name=names[1]).update(state=HostState.OFFLINE)
    settings.COUPLER_CHECK_INPUTS_CACHE_S = 30
    for name in names:
        if name == names[1]:
            continue
        host = Host.objects.get(name=name)
        assert _beat(api_client, tokens, name)["peers"] == latency_peers(host), name
