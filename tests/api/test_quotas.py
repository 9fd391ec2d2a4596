"""/api/v1/quotas/: members read their tenants' quotas with usage; admins write."""

import pytest

from console.core.models import Allocation, Gpu, Quota

URL = "/api/v1/quotas/"


@pytest.fixture
def quota_a(tenant_a):
    return Quota.objects.create(tenant=tenant_a, resource="gpus", guaranteed=4, limit=8)


@pytest.fixture
def quota_b(tenant_b):
    return Quota.objects.create(tenant=tenant_b, resource="gpus", guaranteed=2, limit=4)


def tenants_of(response):
    assert response.status_code == 200, response.content
    return sorted(q["tenant"] for q in response.json()["results"])


def test_member_of_a_lists_tenant_a_quotas_with_current_usage(
    cluster, quota_a, quota_b, tenant_a, member_a, make_job, client_for
):
    job = make_job(tenant_a, state="running", gpus_per_host=2)
    gpus = Gpu.objects.filter(host__name="dgx-1").order_by("index")[:2]
    for gpu in gpus:
        Allocation.objects.create(job=job, host=gpu.host, gpu=gpu, milli=1000)

    response = client_for(member_a).get(URL)

    assert tenants_of(response) == ["tenant-a"]
    quota = response.json()["results"][0]
    assert quota["resource_key"] == "gpus"
    assert (quota["guaranteed"], quota["limit"], quota["in_use"]) == (4, 8, 2)


def test_member_of_b_lists_only_tenant_b_quotas(quota_a, quota_b, member_b, client_for):
    assert tenants_of(client_for(member_b).get(URL)) == ["tenant-b"]


def test_user_without_membership_lists_no_quotas(quota_a, quota_b, outsider, client_for):
    assert tenants_of(client_for(outsider).get(URL)) == []


def test_admin_lists_every_quota(quota_a, quota_b, admin_user, client_for):
    assert tenants_of(client_for(admin_user).get(URL)) == ["tenant-a", "tenant-b"]


def test_anonymous_gets_401(quota_a, client_for):
    assert client_for(None).get(URL).status_code == 401


def test_member_of_b_gets_404_on_tenant_a_quota(quota_a, member_b, client_for):
    assert client_for(member_b).get(f"{URL}{quota_a.pk}/").status_code == 404


def test_user_without_membership_gets_404_on_a_quota(quota_a, outsider, client_for):
    assert client_for(outsider).get(f"{URL}{quota_a.pk}/").status_code == 404


def test_admin_creates_a_quota(tenant_a, admin_user, client_for):
    response = client_for(admin_user).post(
        URL, {"tenant": "tenant-a", "resource": "gpus", "gpu_model": "A100-SXM4-40GB",
              "guaranteed": 2, "limit": 6}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["resource_key"] == "gpus:A100-SXM4-40GB"
    assert Quota.objects.get(tenant=tenant_a).limit == 6


def test_admin_changes_a_quota(quota_a, admin_user, client_for):
    response = client_for(admin_user).patch(f"{URL}{quota_a.pk}/", {"limit": 16}, format="json")
    assert response.status_code == 200, response.content
    quota_a.refresh_from_db()
    assert (quota_a.guaranteed, quota_a.limit) == (4, 16)


def test_admin_deletes_a_quota(quota_a, admin_user, client_for):
    assert client_for(admin_user).delete(f"{URL}{quota_a.pk}/").status_code == 204
    assert not Quota.objects.exists()


def test_member_of_a_gets_403_on_every_write_to_own_quota(quota_a, member_a, client_for):
    client = client_for(member_a)
    assert client.patch(f"{URL}{quota_a.pk}/", {"limit": 99}).status_code == 403
    assert client.delete(f"{URL}{quota_a.pk}/").status_code == 403
    assert client.post(URL, {"tenant": "tenant-a", "resource": "vcpus", "limit": 9}
                       ).status_code == 403
    quota_a.refresh_from_db()
    assert quota_a.limit == 8
    assert Quota.objects.count() == 1


def test_member_of_b_gets_403_writing_tenant_a_quota(quota_a, member_b, client_for):
    assert client_for(member_b).patch(f"{URL}{quota_a.pk}/", {"limit": 99}).status_code == 403


def test_anonymous_gets_401_writing(quota_a, client_for):
    assert client_for(None).delete(f"{URL}{quota_a.pk}/").status_code == 401
    assert Quota.objects.count() == 1


def test_what_a_quota_is_about_cannot_change(quota_a, admin_user, client_for):
    response = client_for(admin_user).patch(f"{URL}{quota_a.pk}/", {"resource": "vcpus"},
                                            format="json")
    assert response.status_code == 400
    assert "resource" in response.json()


def test_guaranteed_above_the_limit_on_update_is_400(quota_a, admin_user, client_for):
    response = client_for(admin_user).patch(f"{URL}{quota_a.pk}/", {"guaranteed": 20},
                                            format="json")
    assert response.status_code == 400
    assert "guaranteed" in response.json()


@pytest.mark.parametrize(("field", "overrides"), [
    ("guaranteed", {"guaranteed": 9, "limit": 8}),
    ("guaranteed", {"guaranteed": -1}),
    ("limit", {"limit": -1}),
    ("limit", {"limit": 10**12}),
    ("limit", {"limit": "many"}),
    ("limit", {"limit": None}),
    ("resource", {"resource": "bananas"}),
    ("resource", {"resource": "gpus"}),  # tenant-a already has a gpus quota
    ("gpu_model", {"resource": "vcpus", "gpu_model": "A100-SXM4-40GB"}),
    ("gpu_model", {"gpu_model": "x" * 101}),
    ("tenant", {"tenant": "no-such-tenant"}),
    ("tenant", {"tenant": None}),
])
def test_bad_quota_input_gets_400_naming_the_field(quota_a, admin_user, client_for, field,
                                                   overrides):
    body = {"tenant": "tenant-a", "resource": "memory_gib", "guaranteed": 1, "limit": 8}
    body.update(overrides)
    response = client_for(admin_user).post(URL, body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert Quota.objects.count() == 1
