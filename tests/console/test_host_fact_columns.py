"""Host facts the console relies on are columns: the board and BIOS (the firmware
baseline is looked up by board), read from the inventory at registration, shown among
the facts as before, and carried from the facts JSON by migration 0011_h5."""

import importlib

import pytest
from django.apps import apps

from console.core.actions.inventory import do_register_host
from console.core.models import Host
from coupler_demo.profiles import inventory_for

pytestmark = pytest.mark.django_db


def test_registration_fills_the_columns_and_the_api_shows_them_as_facts(
        cluster, admin_user, member_a, client_for):
    inventory = inventory_for("dgx_a100", "dgx-9", group="rack-a")
    inventory["facts"] = {**inventory.get("facts", {}), "board_name": "DGXA100",
                          "bios_version": "1.25", "driver_version": "535.104.05"}
    host = do_register_host(cluster=cluster, name="dgx-9", inventory=inventory, actor="test")
    host = Host.objects.get(pk=host.pk)
    assert (host.board_name, host.bios_version) == ("DGXA100", "1.25")
    assert "board_name" not in host.facts and "bios_version" not in host.facts
    for user in (admin_user, member_a):
        facts = client_for(user).get(f"/api/v1/hosts/{host.pk}/").json()["facts"]
        assert facts["board_name"] == "DGXA100" and facts["bios_version"] == "1.25"
        assert facts["driver_version"] == "535.104.05"


def test_the_migration_moves_the_facts_into_the_columns_and_back(cluster):
    migration = importlib.import_module("console.core.migrations.0011_h5_host_board_bios")
    host = Host.objects.get(name="dgx-1")
    Host.objects.filter(pk=host.pk).update(
        board_name="", bios_version="",
        facts={"board_name": "DGXA100", "bios_version": "1.25", "kind": "dgx_a100"})

    migration.facts_to_columns(apps, None)
    host.refresh_from_db()
    assert (host.board_name, host.bios_version, host.facts) == ("DGXA100", "1.25",
                                                                 {"kind": "dgx_a100"})
    migration.columns_to_facts(apps, None)
    host.refresh_from_db()
    assert host.facts == {"kind": "dgx_a100", "board_name": "DGXA100", "bios_version": "1.25"}


def test_the_latency_endpoint_moves_from_the_facts_into_its_column_and_back(cluster):
    migration = importlib.import_module("console.core.migrations.0012_h5_host_latency_endpoint")
    host = Host.objects.get(name="dgx-1")
    Host.objects.filter(pk=host.pk).update(
        latency_endpoint="", facts={"latency_endpoint": "10.0.0.1:7471", "kind": "dgx_a100"})

    migration.facts_to_column(apps, None)
    host.refresh_from_db()
    assert (host.latency_endpoint, host.facts) == ("10.0.0.1:7471", {"kind": "dgx_a100"})
    migration.column_to_facts(apps, None)
    host.refresh_from_db()
    assert host.facts == {"kind": "dgx_a100", "latency_endpoint": "10.0.0.1:7471"}


def test_the_cgroup_layout_and_hugetlbfs_come_from_the_agents_report(cluster, admin_user,
                                                                     client_for, client):
    from console.core.actions.agents import do_agent_register

    host = Host.objects.get(name="dgx-1")
    assert (host.cgroup_layout, host.hugetlbfs_1g) == ("", None)  # nothing reported yet
    do_agent_register(host, inventory={}, hypervisor={
        "hypervisor": "qemu", "cgroup_layout": "hybrid", "hugetlbfs_1g": False})
    host.refresh_from_db()
    assert (host.hypervisor, host.cgroup_layout, host.hugetlbfs_1g) == ("qemu", "hybrid", False)
    body = client_for(admin_user).get(f"/api/v1/hosts/{host.pk}/").json()
    assert (body["cgroup_layout"], body["hugetlbfs_1g"]) == ("hybrid", False)
    client.force_login(admin_user)
    page = client.get(f"/hosts/{host.name}/").content.decode()
    assert "hybrid (v1 controllers, v2 mount)" in page and "no 1 GiB hugetlbfs" in page
    # A report without them (a simulated host's) keeps what was known; an unknown word
    # is not stored.
    do_agent_register(host, inventory={}, hypervisor={"hypervisor": "kvm",
                                                      "cgroup_layout": "v7"})
    host.refresh_from_db()
    assert (host.hypervisor, host.cgroup_layout, host.hugetlbfs_1g) == ("kvm", "hybrid", False)


def test_the_migration_carries_the_reported_layout_into_the_columns(cluster):
    migration = importlib.import_module("console.core.migrations.0017_host_cgroup_layout_hugetlbfs")
    host = Host.objects.get(name="dgx-1")
    Host.objects.filter(pk=host.pk).update(facts={"hypervisor": {
        "hypervisor": "kvm", "cgroup_layout": "v2", "hugetlbfs_1g": True}})
    migration.columns_from_facts(apps, None)
    host.refresh_from_db()
    assert (host.cgroup_layout, host.hugetlbfs_1g) == ("v2", True)
