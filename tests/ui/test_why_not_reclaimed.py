"""A tenant under its guarantee that waits for room is told who holds the
contested GPUs and why that work is not reclaimed — without naming another
tenant to a member; and the pending reason reads in Chinese too."""

import pytest

from console.core.actions.tenants import do_set_quota
from console.core.models import Job

pytestmark = pytest.mark.django_db

H100 = "H100-SXM5-80GB"


@pytest.fixture
def h100_taken(tenant_a, tenant_b, member_a, member_b, cluster, submit, place):
    do_set_quota(tenant_a, resource="gpus", gpu_model=H100, guaranteed=8, limit=8)
    do_set_quota(tenant_b, resource="gpus", gpu_model=H100, guaranteed=8, limit=16)
    place(submit(tenant_b, member_b, name="b-train", gpus_per_host=8, gpu_model=H100), "hgx-1",
          list(range(8)), cores=range(0, 8))
    waiting = submit(tenant_a, member_a, name="a-wants-h100", gpus_per_host=2, gpu_model=H100)
    Job.objects.filter(pk=waiting.pk).update(
        pending_code="no_host_with_free_gpus",
        pending_reason="No room: 0 host(s) have 2 connected free GPU(s) of H100-SXM5-80GB, "
                       "1 needed; the most any host has is 0.",
        pending_data={"gpus_per_host": 2, "gpu_milli": 1000, "hosts_needed": 1,
                      "hosts_with_enough_gpus": 0, "max_free_gpus_on_a_host": 0})
    return waiting


def test_a_member_learns_why_without_the_other_tenants_name(login, member_a, h100_taken):
    html = login(member_a).get(f"/jobs/{h100_taken.pk}/").content.decode()
    section = html[html.index('id="not-reclaimed"'):]
    assert f"8 GPU(s) are held by another tenant, within its own guarantee on {H100}" in section
    assert "Tenant B" not in html


def test_an_admin_sees_the_tenant(login, admin_user, h100_taken):
    html = login(admin_user).get(f"/jobs/{h100_taken.pk}/").content.decode()
    assert "held by Tenant B, within its own guarantee" in html


def test_a_tenant_above_its_guarantee_is_told_so(login, member_a, tenant_a, h100_taken):
    do_set_quota(tenant_a, resource="gpus", gpu_model=H100, guaranteed=1, limit=8)
    html = login(member_a).get(f"/jobs/{h100_taken.pk}/").content.decode()
    assert "reclaimed only for a tenant under its guarantee" in html
    assert "the job would take it to 2, its guarantee is 1" in html


def test_the_pending_reason_in_chinese(login, member_a, h100_taken):
    html = login(member_a).get(f"/jobs/{h100_taken.pk}/",
                               HTTP_ACCEPT_LANGUAGE="zh-Hans").content.decode()
    assert "没有空间" in html and "位于其自身" in html


def test_an_over_limit_reason_in_chinese_without_float_noise(login, member_a, h100_taken):
    Job.objects.filter(pk=h100_taken.pk).update(
        pending_code="over_limit",
        pending_reason="Over the gpus limit by 8: the job asks for 16, the tenant uses 8 of its "
                       "limit 16.",
        pending_data={"limit": 16.0, "over_by": 8.0, "request": 16, "resource": "gpus",
                      "usage": 8})
    html = login(member_a).get(f"/jobs/{h100_taken.pk}/",
                               HTTP_ACCEPT_LANGUAGE="zh-Hans").content.decode()
    assert "超出 gpus 上限 8：作业申请 16，租户已使用其上限 16 中的 8。" in html
