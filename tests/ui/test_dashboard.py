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


def test_a_member_never_sees_other_tenants_from_the_shared_figures(login, admin_user, member_a,
                                                                   quotas_a, tenant_b):
    """The cluster figures are computed once for everyone (an admin's read fills
    the cache with every tenant's share); a member's page still shows only theirs."""
    from django.test import Client

    admin_client = Client()
    admin_client.force_login(admin_user)
    assert "Tenant B" in admin_client.get("/").content.decode()
    html = login(member_a).get("/").content.decode()
    assert "Tenant A" in html and "Tenant B" not in html


def test_the_share_table_shows_the_largest_shares_and_links_to_all(login, admin_user, member_a,
                                                                   quotas_a, submit, place):
    from console.core.models import Tenant
    from console.ui.dashboard import TOP_TENANTS

    for i in range(TOP_TENANTS + 2):
        Tenant.objects.create(slug=f"idle-{i:02}", name=f"Idle {i:02}")
    place(submit(quotas_a, member_a, name="run"), "dgx-1", [0, 1])
    html = login(admin_user).get("/").content.decode()
    section = html[html.index('id="share-h"'):]
    assert section.count('href="/tenants/') == TOP_TENANTS + 1  # the rows and the link
    assert "Tenant A" in section  # the only tenant holding anything comes first
    total = Tenant.objects.count()
    assert f"The {TOP_TENANTS} tenants with the largest dominant share, of {total}." in section
    assert 'href="/tenants/">All tenants and their quotas' in section


def test_the_figures_are_shared_for_a_few_seconds_and_the_page_says_so(
        login, admin_user, member_a, quotas_a, submit):
    from django.core.cache import cache

    from console.ui.metrics import DASHBOARD_CACHE_KEY, DASHBOARD_CACHE_S

    client = login(admin_user)
    html = client.get("/").content.decode()
    assert f"computed at most every {DASHBOARD_CACHE_S} s" in html
    queue = '<div class="value">{}</div><div class="label">Jobs in the queue'
    assert queue.format(0) in html
    submit(quotas_a, member_a, name="waiting")
    assert queue.format(0) in client.get("/").content.decode()  # within the cache's life
    cache.delete(DASHBOARD_CACHE_KEY)  # as when it expires
    assert queue.format(1) in client.get("/").content.decode()
