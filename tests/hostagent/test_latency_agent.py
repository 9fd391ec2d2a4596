"""The agent's side of network.hop_latency: its echo responder, the endpoint it
advertises, and check rounds that measure against the peers the console answers with."""

import socket

import pytest

from hostagent import runtime
from hostagent.checks.network import tcp_round_trip_us
from hostagent.sim import KINDS
from hostagent.sim.roots import kind_root


@pytest.fixture(autouse=True)
def _clean_runtime():
    runtime.reset()
    yield
    runtime.reset()


@pytest.fixture
def responders():
    started = []

    def start(listen="127.0.0.1:0", advertise=""):
        r = runtime.LatencyResponder(listen, advertise)
        r.start()
        started.append(r)
        return r

    yield start
    for r in started:
        r.stop.set()


def test_config_is_backward_compatible_and_reads_the_latency_fields():
    old = runtime.AgentConfig.from_dict({"hosts": [{"name": "h1"}]})
    assert old.latency_listen == "0.0.0.0:7471" and old.latency_advertise == ""
    new = runtime.AgentConfig.from_dict({"hosts": [], "latency_listen": "127.0.0.1:0",
                                         "latency_advertise": "10.0.0.7:7000"})
    assert (new.latency_listen, new.latency_advertise) == ("127.0.0.1:0", "10.0.0.7:7000")


def test_an_ephemeral_port_is_advertised_as_bound_and_echoes(responders):
    r = responders("127.0.0.1:0")
    assert r.port > 0 and r.endpoint == f"127.0.0.1:{r.port}"
    assert len(tcp_round_trip_us(r.endpoint, rounds=3)) == 3
    # An explicit advertise address wins; without a port it takes the bound one.
    assert responders("127.0.0.1:0", "fabric-7.example").endpoint.startswith("fabric-7.example:")
    assert responders("127.0.0.1:0", "10.9.8.7:7555").endpoint == "10.9.8.7:7555"
    # A wildcard listen address is not something a peer can dial: advertise the FQDN.
    assert responders("0.0.0.0:0").endpoint.split(":")[0] == socket.getfqdn()


def test_a_taken_port_or_off_means_no_responder_and_the_agent_runs_on(responders):
    taken = responders("127.0.0.1:0")
    config = runtime.AgentConfig(latency_listen=f"127.0.0.1:{taken.port}")
    assert runtime.start_latency_responder(config) is None
    assert runtime.start_latency_responder(runtime.AgentConfig(latency_listen="off")) is None
    assert runtime.split_endpoint("[::1]:7471") == ("::1", 7471)
    assert runtime.split_endpoint("host-a", 7471) == ("host-a", 7471)


def test_check_rounds_measure_against_the_peers_of_the_consoles_answer(responders, tmp_path):
    """Register sends our endpoint; the console's answers carry peers; the next check
    round measures hop latency to them and records the method and per-peer figures."""
    peer = responders("127.0.0.1:0")
    ours = responders("127.0.0.1:0")
    root = kind_root(tmp_path / "roots", "dgx_a100")
    config = runtime.AgentConfig(console_url="http://console", heartbeat_interval_s=1, hosts=[
        runtime.HostConfig(name="dgx-a100-01", checks_root=str(root))])
    runtime.configure(config)
    posts = []

    k = KINDS["dgx_a100"]
    baseline = {"board_name": k.board_name, "bios_version": k.bios_version,
                "driver_version": k.driver_version, "vbios_version": k.vbios}

    def post(url, token, body):
        posts.append((url.rsplit("/", 2)[-2], body))
        return {"host": "dgx-a100-01", "peers": [peer.endpoint], "baseline": baseline}

    loop = runtime.HeartbeatLoop(config, post=post, checks_every=12, state_dir=tmp_path,
                                 latency_endpoint=ours.endpoint)
    loop.beat_once()  # register + first heartbeat: no checks yet, peers learnt
    assert [what for what, _ in posts] == ["register", "heartbeat"]
    assert all(body["latency_endpoint"] == ours.endpoint for _, body in posts)
    assert "checks" not in posts[1][1] and loop.peers["dgx-a100-01"] == [peer.endpoint]
    loop.beat_once()  # the first check round
    checks = {c["id"]: c for c in posts[-1][1]["checks"]}
    hop = checks["network.hop_latency"]
    # Both ends are on this machine: a loopback figure never passes a fabric check.
    assert hop["status"] == "unknown", hop
    assert hop["evidence"]["method"].startswith("tcp_rtt_half")
    figures = hop["evidence"][peer.endpoint]
    assert figures["rounds"] == 20 and figures["one_way_us"] > 0 and figures["median_rtt_us"] > 0
    assert "loopback" in hop["reason"] or "upper bound" in hop["reason"]
    # The answer's firmware baseline is measured too: the kind's tree is at it.
    assert checks["firmware.baseline"]["status"] == "pass", checks["firmware.baseline"]
    for _ in range(11):
        loop.beat_once()
    assert "checks" not in posts[-1][1]  # the next round is 12 beats later
    loop.beat_once()
    assert "checks" in posts[-1][1]


def test_the_first_check_round_waits_for_an_answer_after_every_host_registered(tmp_path):
    """The console is not up at the first beat: the rounds count each host's heartbeats,
    so even the first host to register measures with the peers of a later answer."""
    names = ["h1", "h2", "h3"]
    config = runtime.AgentConfig(hosts=[runtime.HostConfig(name=n, checks_root=str(tmp_path))
                                        for n in names])
    runtime.configure(config)
    registered, rounds = [], {}

    def post(url, token, body):
        host, what = url.rsplit("/", 3)[-3:-1]
        if console_down:
            raise runtime.ConsoleError("refused")
        if what == "register":
            registered.append(host)
        if "checks" in body:
            hop = next(c for c in body["checks"] if c["id"] == "network.hop_latency")
            rounds[host] = hop["evidence"]
        return {"peers": [f"{n}.invalid:1" for n in registered if n != host]}

    loop = runtime.HeartbeatLoop(config, post=post, state_dir=tmp_path)
    console_down = True
    loop.beat_once()
    console_down = False
    loop.beat_once()  # all register (h1 first: its register answer lists nobody), heartbeat
    assert registered == names and rounds == {}
    loop.beat_once()  # the first round
    assert set(rounds) == set(names)
    assert all(len([k for k in ev if k.endswith(":1")]) == 2 for ev in rounds.values()), rounds


def test_an_unreachable_console_leaves_hosts_unregistered_without_crashing(tmp_path):
    config = runtime.AgentConfig(console_url="http://127.0.0.1:9",
                                 hosts=[runtime.HostConfig(name="h1")])
    runtime.configure(config)

    def post(url, token, body):
        raise runtime.ConsoleError("refused")

    loop = runtime.HeartbeatLoop(config, post=post, state_dir=tmp_path)
    loop.beat_once()
    assert loop.registered == set() and loop.beats == 1
