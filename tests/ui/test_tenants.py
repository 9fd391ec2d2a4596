"""Tenants and quotas: usage bars, the admin edit form and its validation, and
the what-if preview that saves nothing."""

from decimal import Decimal

from console.core.models import Quota


def edit_body(tenant, rows, **tenant_fields):
    data = {"tenant-name": tenant.name, "tenant-weight": str(tenant.weight),
            # Rows that show an existing quota are "initial" forms, as on the page.
            "quota-TOTAL_FORMS": str(len(rows)),
            "quota-INITIAL_FORMS": str(min(len(rows), tenant.quotas.count())),
            "quota-MIN_NUM_FORMS": "0", "quota-MAX_NUM_FORMS": "1000"}
    data.update({f"tenant-{k}": v for k, v in tenant_fields.items()})
    for i, row in enumerate(rows):
        for key, value in row.items():
            data[f"quota-{i}-{key}"] = value
    return data


GPUS = {"resource": "gpus", "gpu_model": "", "guaranteed": "4", "limit": "8"}
VCPUS = {"resource": "vcpus", "gpu_model": "", "guaranteed": "64", "limit": "128"}


def test_members_see_usage_against_guaranteed_and_limit(login, member_a, quotas_a, submit,
                                                         place):
    place(submit(quotas_a, member_a), "dgx-1", [0, 1, 2, 3, 4, 5])
    html = login(member_a).get(f"/tenants/{quotas_a.slug}/").content.decode()
    assert "borrowing 2 above guarantee" in html
    assert 'class="fill borrowing"' in html
    assert "Edit weight and quotas" not in html


def test_an_admin_saves_weight_and_quotas(login, admin_user, quotas_a):
    client = login(admin_user)
    rows = [dict(GPUS, guaranteed="6", limit="12"), VCPUS,
            {"resource": "memory_gib", "gpu_model": "", "guaranteed": "256", "limit": "512"}]
    response = client.post(f"/tenants/{quotas_a.slug}/edit/",
                           edit_body(quotas_a, rows, weight="2.5") | {"save": "1"})
    assert response.status_code == 302
    quotas_a.refresh_from_db()
    assert quotas_a.weight == Decimal("2.5")
    gpus = Quota.objects.get(tenant=quotas_a, resource="gpus")
    assert (gpus.guaranteed, gpus.limit) == (6, 12)
    assert Quota.objects.filter(tenant=quotas_a, resource="memory_gib", limit=512).exists()


def test_an_admin_removes_a_quota(login, admin_user, quotas_a):
    client = login(admin_user)
    rows = [GPUS, dict(VCPUS, delete="on")]
    client.post(f"/tenants/{quotas_a.slug}/edit/", edit_body(quotas_a, rows) | {"save": "1"})
    assert not Quota.objects.filter(tenant=quotas_a, resource="vcpus").exists()
    assert Quota.objects.filter(tenant=quotas_a, resource="gpus").exists()


def test_guaranteed_above_limit_is_refused_inline(login, admin_user, quotas_a):
    client = login(admin_user)
    response = client.post(f"/tenants/{quotas_a.slug}/edit/",
                           edit_body(quotas_a, [dict(GPUS, guaranteed="9")]) | {"save": "1"})
    assert response.status_code == 200
    assert "Guaranteed cannot exceed the limit." in response.content.decode()
    assert Quota.objects.get(tenant=quotas_a, resource="gpus").guaranteed == 4


def test_a_model_on_a_non_gpu_quota_is_refused(login, admin_user, quotas_a):
    client = login(admin_user)
    response = client.post(
        f"/tenants/{quotas_a.slug}/edit/",
        edit_body(quotas_a, [dict(VCPUS, gpu_model="A100-SXM4-40GB")]) | {"save": "1"})
    assert "Only whole-GPU quotas name a GPU model." in response.content.decode()


def test_an_unknown_gpu_model_is_refused(login, admin_user, quotas_a):
    client = login(admin_user)
    response = client.post(f"/tenants/{quotas_a.slug}/edit/",
                           edit_body(quotas_a, [dict(GPUS, gpu_model="B200")]) | {"save": "1"})
    assert "Unknown GPU model" in response.content.decode()


def test_a_resource_twice_is_refused(login, admin_user, quotas_a):
    client = login(admin_user)
    response = client.post(f"/tenants/{quotas_a.slug}/edit/",
                           edit_body(quotas_a, [GPUS, GPUS]) | {"save": "1"})
    assert "This resource appears twice." in response.content.decode()


def test_weight_must_be_positive(login, admin_user, quotas_a):
    client = login(admin_user)
    response = client.post(f"/tenants/{quotas_a.slug}/edit/",
                           edit_body(quotas_a, [GPUS], weight="0") | {"save": "1"})
    assert "greater than or equal to 0.001" in response.content.decode()
    quotas_a.refresh_from_db()
    assert quotas_a.weight == 1


def test_what_if_shows_the_effect_without_saving(login, admin_user, member_a, quotas_a, submit):
    job = submit(quotas_a, member_a, name="big", gpus_per_host=4)
    client = login(admin_user)
    response = client.post(f"/tenants/{quotas_a.slug}/whatif/",
                           edit_body(quotas_a, [dict(GPUS, guaranteed="1", limit="2"), VCPUS]))
    html = response.content.decode()
    assert response.status_code == 200
    assert f"big #{job.pk}" in html
    assert "1 job would change outcome" in html
    assert Quota.objects.get(tenant=quotas_a, resource="gpus").limit == 8


def test_the_preview_button_works_without_javascript(login, admin_user, member_a, quotas_a,
                                                     submit):
    submit(quotas_a, member_a, name="small", gpus_per_host=1)
    client = login(admin_user)
    response = client.post(f"/tenants/{quotas_a.slug}/edit/",
                           edit_body(quotas_a, [GPUS, VCPUS]) | {"preview": "1"})
    html = response.content.decode()
    assert response.status_code == 200
    assert "No job would change outcome" in html and "small #" in html


def test_what_if_reports_invalid_values(login, admin_user, quotas_a):
    client = login(admin_user)
    html = client.post(f"/tenants/{quotas_a.slug}/whatif/",
                       edit_body(quotas_a, [dict(GPUS, limit="-1")])).content.decode()
    assert "Fix the marked fields" in html


def test_the_empty_add_a_quota_row_is_ignored(login, admin_user, quotas_a):
    client = login(admin_user)
    data = edit_body(quotas_a, [GPUS, VCPUS, {"resource": "", "gpu_model": "",
                                              "guaranteed": "", "limit": ""}])
    response = client.post(f"/tenants/{quotas_a.slug}/edit/", data | {"save": "1"})
    assert response.status_code == 302
    assert quotas_a.quotas.count() == 2
