"""The dashboard: GPUs per model, utilization, fragmentation, queue, shares."""


def test_it_shows_capacity_queue_and_shares(login, admin_user, member_a, quotas_a, tenant_b,
                                            submit, place):
    place(submit(quotas_a, member_a, name="run"), "dgx-1", [0, 1, 2, 3, 4, 5])
    submit(quotas_a, member_a, name="waiting")
    html = login(admin_user).get("/").content.decode()
    assert "A100-SXM4-40GB" in html and "H100-SXM5-80GB" in html
    assert "Fragmentation rate" in html
    assert "Jobs in the queue" in html
    assert "Tenant A" in html and "Tenant B" in html
    assert 'class="fill borrowing"' in html  # 6 GPUs above a guarantee of 4


def test_members_see_only_their_tenants_share(login, member_a, quotas_a, tenant_b):
    html = login(member_a).get("/").content.decode()
    assert "Tenant A" in html and "Tenant B" not in html


def test_recent_incidents_link_to_the_drill_down(login, admin_user, incident):
    html = login(admin_user).get("/").content.decode()
    assert f'href="/faults/{incident.pk}/"' in html
