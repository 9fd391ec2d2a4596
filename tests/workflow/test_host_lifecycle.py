"""Host lifecycle across the watchdog and the agent: an offline host comes back in
the state it had, and re-registration follows GPUs by UUID."""

import time

import pytest
from django.utils import timezone

from console.core.actions.agents import (
    do_agent_heartbeat,
    do_agent_register,
    do_mark_host_offline,
)
from console.core.actions.hosts import do_cordon_host, do_drain_host
from console.core.choices import HostState
from console.core.models import Event, Host

pytestmark = pytest.mark.django_db(transaction=True)


def _beat(host, **extra):
    return do_agent_heartbeat(host, {"host": host.name, "sent_at": time.time(), **extra})


def _offline_then_back(host, *, register=False):
    do_mark_host_offline(host, reason="no heartbeat for 120 s")
    host.refresh_from_db()
    assert host.state == HostState.OFFLINE
    if register:
        from console.core.demo.profiles import inventory_for

        do_agent_register(host, inventory=inventory_for("dgx_a100", host.name, group="rack-a"),
                          agent_version="t")
    else:
        _beat(host)
    host.refresh_from_db()
    return host


def test_a_ready_host_comes_back_ready(cluster):
    host = Host.objects.get(name="dgx-1")
    host = _offline_then_back(host)
    assert host.state == HostState.READY and host.state_reason == ""
    assert "state_before_offline" not in host.facts
    online = Event.objects.filter(host=host, kind="online").latest("pk")
    assert (online.from_state, online.to_state) == (HostState.OFFLINE, HostState.READY)


@pytest.mark.parametrize("register", [False, True])
def test_an_admin_cordon_survives_going_offline(cluster, register):
    host = do_cordon_host(Host.objects.get(name="dgx-1"), actor="admin", reason="bad fan")
    host = _offline_then_back(host, register=register)
    assert host.state == HostState.CORDONED
    assert host.state_reason == "bad fan"
    online = Event.objects.filter(host=host, kind="online").latest("pk")
    assert online.to_state == HostState.CORDONED and "bad fan" in online.reason
    # A second heartbeat changes nothing.
    _beat(host)
    host.refresh_from_db()
    assert host.state == HostState.CORDONED


def test_a_drain_survives_going_offline(cluster):
    host = do_drain_host(Host.objects.get(name="dgx-2"), actor="admin", reason="RMA")
    host = _offline_then_back(host)
    assert host.state == HostState.DRAINING and host.state_reason == "RMA"


def test_a_fault_cordon_survives_going_offline(cluster):
    host = Host.objects.get(name="hgx-1")
    host.last_heartbeat = timezone.now()
    host.save(update_fields=["last_heartbeat"])
    xid = {"kind": "xid", "line": "NVRM: Xid (PCI:0000:99:00): 79, GPU has fallen off the bus.",
           "xid": 79, "pci": "0000:99:00", "fault": "hardware", "cordon": True}
    _beat(host, xid_events=[xid])
    host.refresh_from_db()
    assert host.state == HostState.CORDONED
    host = _offline_then_back(host)
    assert host.state == HostState.CORDONED and "Xid 79" in host.state_reason
