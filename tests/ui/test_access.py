"""Who may open which page: login first, tenants see only their own, admins
see everything, admin pages answer 403 to members."""

import pytest

PAGES = ["/", "/jobs/", "/jobs/new/", "/tenants/", "/hosts/", "/topology/", "/checks/",
         "/faults/"]


@pytest.mark.parametrize("url", PAGES)
def test_anonymous_users_are_sent_to_login(client, db, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")


def test_login_page_has_labelled_fields(client, db):
    response = client.get("/login/")
    html = response.content.decode()
    assert response.status_code == 200
    assert '<label for="id_username">' in html and '<label for="id_password">' in html


def test_a_member_logs_in_and_out(client, member_a):
    response = client.post("/login/", {"username": "alice",
                                       "password": "correct horse battery staple"})
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/").status_code == 200
    client.post("/logout/")
    assert client.get("/").status_code == 302


def test_every_page_has_the_navigation(login, member_a, cluster):
    client = login(member_a)
    for url in ["/", "/jobs/", "/tenants/", "/hosts/", "/topology/", "/faults/"]:
        html = client.get(url).content.decode()
        assert '<nav aria-label="Main">' in html, url
        assert 'href="/api/docs/"' in html


def test_it_hides_other_tenants_jobs(login, member_a, member_b, tenant_a, tenant_b, submit):
    mine = submit(tenant_a, member_a, name="mine")
    theirs = submit(tenant_b, member_b, name="theirs")
    client = login(member_a)
    html = client.get("/jobs/").content.decode()
    assert "mine" in html and "theirs" not in html
    assert client.get(f"/jobs/{theirs.pk}/").status_code == 404
    assert client.get(f"/jobs/{theirs.pk}/live/").status_code == 404
    assert client.get(f"/jobs/{theirs.pk}/cancel/").status_code == 404
    assert client.post(f"/jobs/{theirs.pk}/cancel/").status_code == 404
    assert client.get(f"/jobs/{mine.pk}/").status_code == 200


def test_it_hides_other_tenants_pages(login, member_a, tenant_a, tenant_b):
    client = login(member_a)
    assert client.get(f"/tenants/{tenant_a.slug}/").status_code == 200
    assert client.get(f"/tenants/{tenant_b.slug}/").status_code == 404
    assert "Tenant B" not in client.get("/tenants/").content.decode()


def test_a_member_cannot_edit_quotas(login, member_a, tenant_a):
    client = login(member_a)
    assert client.get(f"/tenants/{tenant_a.slug}/edit/").status_code == 403
    assert client.post(f"/tenants/{tenant_a.slug}/edit/", {"save": "1"}).status_code == 403
    assert client.post(f"/tenants/{tenant_a.slug}/whatif/").status_code == 403


def test_a_member_cannot_act_on_hosts_or_see_checklists(login, member_a, cluster):
    client = login(member_a)
    assert client.get("/hosts/dgx-1/cordon/").status_code == 403
    assert client.post("/hosts/dgx-1/drain/").status_code == 403
    assert client.get("/checks/").status_code == 403
    assert client.get("/hosts/dgx-1/checks/").status_code == 403
    assert client.post("/hosts/dgx-1/checks/rerun/").status_code == 403


def test_an_outsider_sees_no_tenant_and_cannot_submit(login, outsider, tenant_a, cluster):
    client = login(outsider)
    assert client.get(f"/tenants/{tenant_a.slug}/").status_code == 404
    response = client.post("/jobs/new/", {"tenant": tenant_a.slug, "name": "x",
                                          "gpus_per_host": 1, "hosts": 1, "vcpus_per_host": 1,
                                          "memory_gib_per_host": 1, "priority": 0})
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()


def test_incidents_of_other_tenants_are_hidden(login, member_b, incident):
    client = login(member_b)
    assert client.get(f"/faults/{incident.pk}/").status_code == 404
    assert incident.heading() not in client.get("/faults/").content.decode()


def test_an_admin_sees_everything(login, admin_user, member_b, tenant_b, submit, incident):
    job = submit(tenant_b, member_b)
    client = login(admin_user)
    assert client.get(f"/jobs/{job.pk}/").status_code == 200
    assert client.get(f"/faults/{incident.pk}/").status_code == 200
    assert client.get(f"/tenants/{tenant_b.slug}/edit/").status_code == 200
    assert client.get("/checks/").status_code == 200
