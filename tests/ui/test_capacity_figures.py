"""One set of capacity figures that adds up, on every page that shows them.

With one A100 out of service (cordoned after a fault, still held by a job) and
a half-GPU share, the dashboard, the host pages, the API and /metrics all show
total = out of service + in service, in service = allocated + free, and
utilisation = allocated / in service, from ``console.core.usage.capacity``.
"""

import re
from decimal import Decimal

import pytest

from console.core.choices import GpuMode
from console.core.models import Allocation, Gpu, Host

A100 = "A100-SXM4-40GB"


@pytest.fixture
def figures_cluster(cluster, quotas_a, member_a, submit, place):
    # two whole A100s on dgx-1
    place(submit(quotas_a, member_a, name="whole"), "dgx-1", [0, 1])
    # half of a shared A100 on dgx-1
    share = place(submit(quotas_a, member_a, name="share", gpus_per_host=1), "dgx-1", [],
                  cores=(8, 9))
    host = Host.objects.get(name="dgx-1")
    gpu2 = Gpu.objects.get(host=host, index=2)
    Gpu.objects.filter(pk=gpu2.pk).update(mode=GpuMode.SHARED, allocated_milli=500)
    Allocation.objects.create(job=share, host=host, gpu=gpu2, milli=500)
    # GPU3 fell off the bus: cordoned, the job on it not yet moved
    stuck = place(submit(quotas_a, member_a, name="stuck", gpus_per_host=1), "dgx-1", [3],
                  cores=(10, 11))
    Gpu.objects.filter(host=host, index=3).update(cordoned=True, cordon_reason="Xid 79")
    return stuck


def _rows(html):
    """{(resource, model): {figure: Decimal}} from the capacity tables."""
    rows = {}
    for match in re.finditer(r'<tr data-resource="([^"]*)" data-model="([^"]*)">(.*?)</tr>',
                             html, re.S):
        figures = dict(re.findall(r'data-figure="(\w+)">([^<]*)<', match.group(3)))
        rows[(match.group(1), match.group(2))] = {
            k: Decimal(v.replace(",", "").replace("%", "").strip()) for k, v in figures.items()
        }
    return rows


def _adds_up(f):
    assert f["total"] == f["out_of_service"] + f["in_service"]
    assert f["in_service"] == f["allocated"] + f["free"]
    expected = 100 * f["allocated"] / f["in_service"] if f["in_service"] else 0
    assert abs(f["utilization"] - expected) <= Decimal("0.05")


def test_every_dashboard_figure_adds_up(login, admin_user, figures_cluster):
    html = login(admin_user).get("/").content.decode()
    rows = _rows(html)
    assert {("gpus", ""), ("vcpus", ""), ("memory_gib", ""), ("gpus", A100)} <= set(rows)
    for figures in rows.values():
        _adds_up(figures)
    a100 = rows[("gpus", A100)]
    assert a100 == {"total": 16, "out_of_service": 1, "in_service": 15,
                    "allocated": Decimal("2.5"), "free": Decimal("12.5"),
                    "utilization": Decimal("16.7")}
    everything = rows[("gpus", "")]
    assert everything["out_of_service"] == 1 and everything["allocated"] == Decimal("2.5")
    assert "1 still held by jobs" in html  # the stuck job's GPU, counted out of service
    # The headline card says the same sum.
    card = re.search(r'id="gpu-utilization">(.*?)</div></div>', html, re.S).group(1)
    total = everything["total"]
    assert f"2.5 allocated of {total - 1} in service ({total} total − 1 out of service)" in card


def test_host_pages_show_the_same_sum(login, member_a, figures_cluster):
    client = login(member_a)
    expected = "2.5 allocated + 4.5 free + 1 out of service = 8 GPUs"
    assert expected in client.get("/hosts/").content.decode()
    assert expected in client.get("/hosts/dgx-1/").content.decode()
    assert expected in client.get("/topology/").content.decode()
    assert "0 allocated + 8 free = 8 GPUs" in client.get("/hosts/dgx-2/").content.decode()


def test_the_api_gives_the_same_figures(api_client, member_a, figures_cluster):
    api_client.force_authenticate(member_a)
    body = api_client.get("/api/v1/capacity/").json()
    a100 = next(row for row in body["gpu_models"] if row["model"] == A100)
    assert a100 | {"utilization": round(a100["utilization"], 3)} == {
        "resource": "gpus", "model": A100, "total": 16, "out_of_service": 1,
        "in_service": 15, "allocated": 2.5, "free": 12.5, "held_out_of_service": 1,
        "utilization": round(2.5 / 15, 3)}
    for row in [body["gpus"], body["vcpus"], body["memory_gib"], *body["gpu_models"]]:
        assert row["total"] == row["out_of_service"] + row["in_service"]
        assert row["in_service"] == row["allocated"] + row["free"]
    assert body["vcpus"]["allocated"] == 4 + 2 + 2  # the three jobs' pinned cores
    assert api_client.get("/api/v1/").json()["capacity"].rstrip("/").endswith("/api/v1/capacity")


def test_the_api_needs_a_signed_in_user(api_client, figures_cluster):
    assert api_client.get("/api/v1/capacity/").status_code in (401, 403)


def test_metrics_give_the_same_figures(client, admin_user, figures_cluster):
    client.force_login(admin_user)
    text = client.get("/metrics").content.decode()

    def value(name, **labels):
        label = ",".join(f'{k}="{v}"' for k, v in labels.items())
        return float(re.search(rf"^{name}{{{label}}} (\S+)$", text, re.M).group(1))

    assert value("coupler_gpus_free", model=A100) == 12.5
    assert value("coupler_gpus_total", model=A100) == (
        value("coupler_gpus_out_of_service", model=A100) + value("coupler_gpus_allocated", model=A100)
        + value("coupler_gpus_free", model=A100))
    assert value("coupler_gpus_utilization", model=A100) == pytest.approx(2.5 / 15, abs=1e-6)
    for resource in ("gpus", "vcpus", "memory_gib"):
        assert value("coupler_capacity_total", resource=resource) == (
            value("coupler_capacity_out_of_service", resource=resource)
            + value("coupler_capacity_allocated", resource=resource)
            + value("coupler_capacity_free", resource=resource))
