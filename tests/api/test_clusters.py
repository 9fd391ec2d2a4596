"""/api/v1/clusters/: read-only for any signed-in user."""

import pytest


def test_member_of_a_lists_clusters_with_host_and_gpu_counts(cluster, member_a, client_for):
    response = client_for(member_a).get("/api/v1/clusters/")
    assert response.status_code == 200
    [only] = response.json()["results"]
    assert (only["slug"], only["host_count"], only["gpu_count"]) == ("test", 4, 28)


@pytest.mark.parametrize("who", ["member_a", "member_b", "outsider", "admin_user"])
def test_any_signed_in_user_reads_a_cluster(cluster, client_for, request, who):
    user = request.getfixturevalue(who)
    assert client_for(user).get("/api/v1/clusters/test/").status_code == 200


def test_anonymous_gets_401(cluster, client_for):
    assert client_for(None).get("/api/v1/clusters/").status_code == 401


def test_clusters_are_read_only(cluster, admin_user, client_for):
    client = client_for(admin_user)
    assert client.post("/api/v1/clusters/", {"name": "x", "slug": "x"}).status_code == 405
    assert client.delete("/api/v1/clusters/test/").status_code == 405
