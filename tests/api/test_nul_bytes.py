"""A NUL byte anywhere in a URL is a 4xx, never a 500 (PostgreSQL refuses NUL in
text: issue 13's finding "a NUL byte in a host name"). Run with a PostgreSQL
DATABASE_URL to see the database's side; SQLite accepts NUL and answers 404."""

import pytest

URLS = [
    "/hosts/dgx%00-1/", "/hosts/dgx%00-1/topology/", "/hosts/dgx%00-1/checks/",
    "/tenants/tenant%00-a/", "/jobs/?search=a%00b", "/hosts/?name=a%00b", "/faults/?host=a%00b",
    "/api/v1/hosts/?name=a%00b", "/api/v1/clusters/te%00st/", "/api/v1/tenants/tenant%00-a/",
    "/api/v1/jobs/?name=a%00b", "/api/v1/incidents/?host=a%00b", "/api/v1/quotas/?tenant=a%00b",
    "/api/v1/tokens/?name=a%00b",
]


@pytest.mark.parametrize("url", URLS)
def test_a_nul_byte_in_a_url_is_not_a_500(url, admin_user, cluster, tenant_a, client,
                                         client_for):
    client.force_login(admin_user)
    response = (client_for(admin_user) if url.startswith("/api/") else client).get(url)
    assert response.status_code < 500, (url, response.status_code)


@pytest.mark.parametrize("path", ["register", "heartbeat"])
def test_a_nul_byte_in_an_agents_host_name_is_not_a_500(path, api_client, cluster):
    response = api_client.post(f"/api/v1/agent/hosts/dgx%00-1/{path}/", {}, format="json",
                               HTTP_AUTHORIZATION="Bearer x")
    assert 400 <= response.status_code < 500


def test_a_nul_byte_in_a_bulk_host_selection_is_not_a_500(admin_user, cluster, client):
    client.force_login(admin_user)
    response = client.post("/hosts/bulk/", {"action": "cordon", "host": ["dgx\x00-1"]})
    assert response.status_code < 500
