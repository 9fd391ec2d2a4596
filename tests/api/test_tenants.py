"""/api/v1/tenants/: members list their own, admins all and create/update."""

import pytest

from console.core.models import Tenant

URL = "/api/v1/tenants/"


def slugs(response):
    assert response.status_code == 200, response.content
    return sorted(t["slug"] for t in response.json()["results"])


def test_member_of_a_lists_only_tenant_a(member_a, member_b, client_for):
    assert slugs(client_for(member_a).get(URL)) == ["tenant-a"]


def test_member_of_b_lists_only_tenant_b(member_a, member_b, client_for):
    assert slugs(client_for(member_b).get(URL)) == ["tenant-b"]


def test_user_without_membership_lists_no_tenants(member_a, member_b, outsider, client_for):
    assert slugs(client_for(outsider).get(URL)) == []


def test_admin_lists_every_tenant(tenant_a, tenant_b, admin_user, client_for):
    assert slugs(client_for(admin_user).get(URL)) == ["tenant-a", "tenant-b"]


def test_anonymous_gets_401(tenant_a, client_for):
    assert client_for(None).get(URL).status_code == 401
    assert client_for(None).get(f"{URL}tenant-a/").status_code == 401


def test_member_of_a_reads_tenant_a(member_a, client_for):
    response = client_for(member_a).get(f"{URL}tenant-a/")
    assert response.status_code == 200
    assert response.json()["weight"] == "1.000"


def test_member_of_b_gets_404_on_tenant_a(tenant_a, member_b, client_for):
    assert client_for(member_b).get(f"{URL}tenant-a/").status_code == 404


def test_user_without_membership_gets_404_on_tenant_a(tenant_a, outsider, client_for):
    assert client_for(outsider).get(f"{URL}tenant-a/").status_code == 404


def test_admin_creates_a_tenant(admin_user, client_for):
    response = client_for(admin_user).post(
        URL, {"name": "Vision lab", "slug": "vision", "weight": "2.5"}, format="json"
    )
    assert response.status_code == 201, response.content
    assert Tenant.objects.get(slug="vision").weight == 2.5


def test_member_gets_403_creating_a_tenant(member_a, client_for):
    response = client_for(member_a).post(URL, {"name": "Mine", "slug": "mine"}, format="json")
    assert response.status_code == 403
    assert not Tenant.objects.filter(slug="mine").exists()


def test_anonymous_gets_401_creating_a_tenant(client_for, db):
    assert client_for(None).post(URL, {"name": "X", "slug": "x"}).status_code == 401


def test_admin_changes_a_tenants_weight(tenant_a, admin_user, client_for):
    response = client_for(admin_user).patch(f"{URL}tenant-a/", {"weight": "3"}, format="json")
    assert response.status_code == 200, response.content
    tenant_a.refresh_from_db()
    assert tenant_a.weight == 3


def test_the_slug_cannot_change(tenant_a, admin_user, client_for):
    response = client_for(admin_user).patch(f"{URL}tenant-a/", {"slug": "other"}, format="json")
    assert response.status_code == 400
    assert "slug" in response.json()


def test_member_of_a_gets_403_changing_tenant_a(member_a, client_for):
    response = client_for(member_a).patch(f"{URL}tenant-a/", {"weight": "9"}, format="json")
    assert response.status_code == 403
    assert Tenant.objects.get(slug="tenant-a").weight == 1


def test_member_of_b_gets_403_changing_tenant_a(tenant_a, member_b, client_for):
    assert client_for(member_b).patch(f"{URL}tenant-a/", {"weight": "9"}).status_code == 403


def test_tenants_are_not_deleted_through_the_api(tenant_a, admin_user, client_for):
    assert client_for(admin_user).delete(f"{URL}tenant-a/").status_code == 405


@pytest.mark.parametrize(("field", "body"), [
    ("weight", {"name": "W", "slug": "w", "weight": "0"}),
    ("weight", {"name": "W", "slug": "w", "weight": "-1"}),
    ("weight", {"name": "W", "slug": "w", "weight": "NaN"}),
    ("weight", {"name": "W", "slug": "w", "weight": "Infinity"}),
    ("weight", {"name": "W", "slug": "w", "weight": "1e9"}),
    ("weight", {"name": "W", "slug": "w", "weight": "heavy"}),
    ("slug", {"name": "W", "slug": "not a slug"}),
    ("slug", {"name": "W", "slug": "tenant-a"}),
    ("slug", {"name": "W", "slug": "s" * 51}),
    ("name", {"name": "Tenant A", "slug": "w"}),
    ("name", {"name": "n" * 101, "slug": "w"}),
    ("name", {"slug": "w"}),
])
def test_bad_tenant_input_gets_400_naming_the_field(tenant_a, admin_user, client_for, field,
                                                    body):
    response = client_for(admin_user).post(URL, body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert Tenant.objects.count() == 1


def test_a_slug_that_cannot_exist_is_404_not_500(tenant_a, admin_user, client_for):
    assert client_for(admin_user).get(f"{URL}bad%00slug/").status_code == 404
