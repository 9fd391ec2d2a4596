"""The demo's credentials file lets a script log in as the admin and as each tenant."""

import json

import pytest
from django.test import Client
from rest_framework.test import APIClient

from console.core.models import Host, Tenant
from coupler_demo.seed import seed_demo


@pytest.fixture
def var_dir(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    return tmp_path


@pytest.mark.django_db
def test_every_credential_logs_in_by_password_and_by_token(var_dir):
    seed_demo()
    credentials = json.loads((var_dir / "demo-credentials.json").read_text())
    assert Host.objects.count() >= 12
    assert Tenant.objects.count() >= 3
    people = [credentials["admin"], *credentials["tenants"]]
    for person in people:
        assert Client().login(username=person["username"], password=person["password"]), person
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Token {person['token']}")
        assert api.get("/api/v1/jobs/").status_code == 200
    admin = APIClient()
    admin.credentials(HTTP_AUTHORIZATION=f"Token {credentials['admin']['token']}")
    assert len(admin.get("/api/v1/tenants/").json()["results"]) == len(credentials["tenants"])


@pytest.mark.django_db
def test_seeding_again_keeps_passwords_and_tokens(var_dir):
    first = seed_demo()
    second = seed_demo()
    assert first == second
    assert Client().login(username="admin", password=second["admin"]["password"])


@pytest.mark.django_db
def test_seeding_again_replaces_a_revoked_token_and_stores_no_secret(var_dir):
    from console.core.actions.tokens import do_revoke_api_token
    from console.core.models import ApiToken

    first = seed_demo()
    member = first["tenants"][0]
    assert not ApiToken.objects.filter(prefix=member["token"]).exists()
    assert member["token"] not in str(list(ApiToken.objects.values_list()))
    for token in ApiToken.objects.filter(user__username=member["username"]):
        do_revoke_api_token(token, actor="test")
    second = seed_demo()
    assert second["tenants"][0]["token"] != member["token"]
    assert second["admin"]["token"] == first["admin"]["token"]
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {second['tenants'][0]['token']}")
    assert api.get("/api/v1/jobs/").status_code == 200
