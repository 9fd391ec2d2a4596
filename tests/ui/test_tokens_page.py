"""The console's API tokens page (Preferences → API tokens): make a token and
see its secret once, list and revoke your own; admins revoke anyone's."""

import re

from console.core.actions.tokens import do_create_api_token
from console.core.models import ApiToken, Event


def test_a_new_tokens_secret_is_shown_once_and_it_works(login, member_a):
    client = login(member_a)
    page = client.post("/tokens/", {"name": "notebook", "expires_in_days": 7})
    assert page.status_code == 200
    assert page["Cache-Control"] == "no-store"
    secret = re.search(r'id="token-secret">(cpl_[^<]+)<', page.content.decode()).group(1)
    token = ApiToken.objects.get(user=member_a, name="notebook")
    assert token.prefix == secret[:12]
    again = client.get("/tokens/").content.decode()
    assert secret not in again and token.prefix in again and "notebook" in again
    client.logout()
    api = client.get("/api/v1/jobs/", HTTP_AUTHORIZATION=f"Token {secret}")
    assert api.status_code == 200


def test_the_form_refuses_a_lifetime_over_the_maximum(login, member_a, settings):
    settings.COUPLER_API_TOKEN_MAX_DAYS = 30
    page = login(member_a).post("/tokens/", {"name": "x", "expires_in_days": 31})
    assert page.status_code == 200 and "token-secret" not in page.content.decode()
    assert not ApiToken.objects.filter(user=member_a).exists()


def test_a_member_revokes_their_own_token_but_not_anothers(login, member_a, member_b):
    mine, _ = do_create_api_token(member_a, name="mine", actor="t")
    theirs, _ = do_create_api_token(member_b, name="theirs", actor="t")
    client = login(member_a)
    page = client.get("/tokens/").content.decode()
    assert "mine" in page and "theirs" not in page and theirs.prefix not in page
    assert client.post(f"/tokens/{theirs.pk}/revoke/").status_code == 404
    assert ApiToken.objects.get(pk=theirs.pk).revoked_at is None
    assert client.post(f"/tokens/{mine.pk}/revoke/").status_code == 302
    assert ApiToken.objects.get(pk=mine.pk).revoked_at is not None


def test_an_admin_sees_and_revokes_anyones_token(login, admin_user, member_b):
    theirs, _ = do_create_api_token(member_b, name="theirs", actor="t")
    client = login(admin_user)
    page = client.get("/tokens/").content.decode()
    assert "theirs" in page and "bob" in page
    assert client.post(f"/tokens/{theirs.pk}/revoke/").status_code == 302
    assert ApiToken.objects.get(pk=theirs.pk).revoked_at is not None
    assert Event.objects.get(token=theirs, kind="api_token_revoked").actor == "root"


def test_the_preferences_page_links_to_the_tokens(login, member_a):
    assert 'href="/tokens/"' in login(member_a).get("/preferences/").content.decode()
