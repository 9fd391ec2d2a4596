"""/api/v1/tokens/ and the API's token authentication: personal tokens hashed at
rest, expiring, revocable and rotatable; a member sees only their own (404
across users), an admin everyone's, and an admin's revocation is audited."""

import hashlib
import importlib
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.apps import apps
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from console.core.actions.tokens import do_create_api_token, do_revoke_api_token
from console.core.models import ApiToken, Event


def _bearer(secret):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    return client


def _create(client, **body):
    return client.post("/api/v1/tokens/", {"name": "ci", **body}, format="json")


def _every_stored_value():
    """Every column of every token row and every token event, as text."""
    rows = list(ApiToken.objects.values_list())
    rows += list(Event.objects.filter(token__isnull=False).values_list())
    return " ".join(str(value) for row in rows for value in row)


def test_the_secret_is_shown_once_and_the_database_holds_only_its_hash(member_a, client_for):
    response = _create(client_for(member_a), name="ci pipeline")
    assert response.status_code == 201, response.content
    body = response.json()
    secret = body["token"]
    assert secret.startswith("cpl_") and len(secret) >= 40
    assert body["prefix"] == secret[:12] and body["state"] == "active"
    row = ApiToken.objects.get(pk=body["id"])
    assert row.key_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in _every_stored_value()
    assert secret[12:] not in _every_stored_value()
    # Never again: neither the detail nor the list carries it.
    again = client_for(member_a).get(f"/api/v1/tokens/{body['id']}/").json()
    assert "token" not in again and again["name"] == "ci pipeline"
    assert _bearer(secret).get("/api/v1/jobs/").status_code == 200


def test_a_token_expires_after_the_default_lifetime_unless_asked(member_a, client_for, settings):
    settings.COUPLER_API_TOKEN_DAYS = 30
    settings.COUPLER_API_TOKEN_MAX_DAYS = 60
    default = ApiToken.objects.get(pk=_create(client_for(member_a)).json()["id"])
    assert default.expires_at - default.created_at == timedelta(days=30)
    short = ApiToken.objects.get(pk=_create(client_for(member_a), expires_in_days=2).json()["id"])
    assert short.expires_at - short.created_at == timedelta(days=2)
    too_long = _create(client_for(member_a), expires_in_days=61)
    assert too_long.status_code == 400
    assert "60" in too_long.json()["expires_in_days"][0]
    assert _create(client_for(member_a), name="").status_code == 400
    assert _create(client_for(member_a), secret="mine").status_code == 400


def test_an_expired_token_is_a_401_that_says_so(member_a):
    token, secret = do_create_api_token(member_a, name="old", actor="t")
    assert _bearer(secret).get("/api/v1/jobs/").status_code == 200
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = _bearer(secret).get("/api/v1/jobs/")
    assert response.status_code == 401
    assert "expired" in response.json()["detail"] and token.prefix in response.json()["detail"]
    assert response["WWW-Authenticate"] == "Token"


def test_a_revoked_token_is_a_401_that_says_so(member_a, client_for):
    token, secret = do_create_api_token(member_a, name="laptop", actor="t")
    revoked = client_for(member_a).post(f"/api/v1/tokens/{token.pk}/revoke/")
    assert revoked.status_code == 200 and revoked.json()["state"] == "revoked"
    response = _bearer(secret).get("/api/v1/jobs/")
    assert response.status_code == 401 and "revoked" in response.json()["detail"]
    assert Event.objects.filter(token=token, kind="api_token_revoked", actor="alice").exists()


def test_an_unknown_token_is_a_401(db):
    response = _bearer("cpl_" + "x" * 43).get("/api/v1/jobs/")
    assert response.status_code == 401 and response.json()["detail"] == "Invalid token."


def test_rotation_gives_a_new_secret_and_retires_the_old_one(member_a, client_for):
    token, old_secret = do_create_api_token(member_a, name="ci", expires_in_days=7, actor="t")
    response = _bearer(old_secret).post(f"/api/v1/tokens/{token.pk}/rotate/")
    assert response.status_code == 201, response.content
    new = response.json()
    assert new["name"] == "ci" and new["id"] != token.pk and new["token"] != old_secret
    assert _bearer(old_secret).get("/api/v1/jobs/").status_code == 401
    assert _bearer(new["token"]).get("/api/v1/jobs/").status_code == 200
    rotated = ApiToken.objects.get(pk=new["id"])
    assert rotated.expires_at - rotated.created_at == timedelta(days=7)
    again = client_for(member_a).post(f"/api/v1/tokens/{token.pk}/rotate/")
    assert again.status_code == 409


def test_the_last_use_is_recorded(member_a):
    token, secret = do_create_api_token(member_a, name="ci", actor="t")
    assert token.last_used_at is None
    _bearer(secret).get("/api/v1/jobs/")
    assert ApiToken.objects.get(pk=token.pk).last_used_at is not None


def test_a_member_sees_only_their_own_tokens(member_a, member_b, client_for):
    mine, _ = do_create_api_token(member_a, name="a-ci", actor="t")
    theirs, _ = do_create_api_token(member_b, name="b-ci", actor="t")
    listed = client_for(member_a).get("/api/v1/tokens/").json()["results"]
    assert mine.pk in {t["id"] for t in listed} and theirs.pk not in {t["id"] for t in listed}
    assert {t["user"] for t in listed} == {"alice"}


@pytest.mark.parametrize("method, path", [("get", ""), ("post", "revoke/"), ("post", "rotate/")])
def test_another_users_token_is_a_404(member_a, member_b, client_for, method, path):
    theirs, secret = do_create_api_token(member_b, name="b-ci", actor="t")
    response = getattr(client_for(member_a), method)(f"/api/v1/tokens/{theirs.pk}/{path}")
    assert response.status_code == 404
    assert _bearer(secret).get("/api/v1/jobs/").status_code == 200
    assert ApiToken.objects.filter(user=member_b).count() == 1


def test_an_admin_lists_and_revokes_anyones_token_and_it_is_audited(
        member_a, admin_user, client_for):
    token, secret = do_create_api_token(member_a, name="leaked", actor="t")
    listed = client_for(admin_user).get("/api/v1/tokens/").json()["results"]
    assert token.pk in {t["id"] for t in listed}
    response = client_for(admin_user).post(f"/api/v1/tokens/{token.pk}/revoke/")
    assert response.status_code == 200 and response.json()["user"] == "alice"
    assert _bearer(secret).get("/api/v1/jobs/").status_code == 401
    event = Event.objects.get(token=token, kind="api_token_revoked")
    assert event.actor == "root" and event.data["user"] == "alice"


def test_revoking_twice_changes_nothing(member_a):
    token, _ = do_create_api_token(member_a, name="ci", actor="t")
    first = do_revoke_api_token(token, actor="t").revoked_at
    assert do_revoke_api_token(token, actor="t").revoked_at == first
    assert Event.objects.filter(token=token, kind="api_token_revoked").count() == 1


def test_the_migration_hashes_existing_drf_keys_and_drops_the_plaintext(member_a):
    """Existing integrations keep their key (now hashed) until it expires."""
    migration = importlib.import_module("console.core.migrations.0008_h3_hash_authtoken_keys")
    key = "9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b"
    with connection.cursor() as cursor:
        cursor.execute('CREATE TABLE authtoken_token ("key" varchar(40) PRIMARY KEY, '
                       '"created" timestamp with time zone NOT NULL, "user_id" integer NOT NULL)')
        cursor.execute("INSERT INTO authtoken_token VALUES (%s, %s, %s)",
                       [key, timezone.now() - timedelta(days=400), member_a.pk])

    def execute(sql):
        with connection.cursor() as cursor:
            cursor.execute(sql)

    migration.hash_authtoken_keys(apps, SimpleNamespace(connection=connection, execute=execute))
    assert "authtoken_token" not in connection.introspection.table_names()
    token = ApiToken.objects.get(user=member_a)
    assert token.prefix == key[:8] and key not in _every_stored_value()
    assert token.expires_at > timezone.now() + timedelta(days=80)
    assert _bearer(key).get("/api/v1/jobs/").status_code == 200
