"""The demo's credentials file lets a script log in as the admin and as each tenant."""

import json

import pytest
from django.test import Client
from rest_framework.test import APIClient

from console.core.demo.seed import seed_demo
from console.core.models import Host, Tenant


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
