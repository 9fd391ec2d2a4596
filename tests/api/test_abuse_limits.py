"""Abuse limits (issue 13, findings "no rate limit or lockout" and "one tenant can
flood the queue"): login lockout (django-axes), API throttles (DRF), and each
tenant's cap on waiting jobs and on its submit rate (429 naming the limit)."""

import pytest
from django.core.cache import cache

from console.core.models import Job

URL = "/api/v1/jobs/"
PASSWORD = "correct horse battery staple"  # tests/conftest.py's users


@pytest.fixture
def local_cache(settings):
    """A private in-memory cache: throttle counts from other tests (or CI's Redis) never leak in."""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                                   "LOCATION": "abuse-limits"}}
    cache.clear()
    yield
    cache.clear()


def _login(client, username, password):
    return client.post("/login/", {"username": username, "password": password})


def test_wrong_passwords_lock_the_account_out_even_for_the_right_one(
        client, member_a, settings):
    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = 5
    statuses = [_login(client, "alice", f"wrong-{i}").status_code for i in range(20)]
    assert statuses[:4] == [200] * 4  # the form again, with its error
    assert set(statuses[5:]) == {429}
    response = _login(client, "alice", PASSWORD)
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session
    # Another user, from the same address, is locked out too (per address).
    assert _login(client, "bob", "whatever").status_code == 429


def test_a_successful_login_before_the_limit_resets_the_count(client, member_a, settings):
    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = 3
    for i in range(2):
        assert _login(client, "alice", f"wrong-{i}").status_code == 200
    assert _login(client, "alice", PASSWORD).status_code == 302
    client.logout()
    for i in range(2):
        assert _login(client, "alice", f"wrong-again-{i}").status_code == 200
    assert _login(client, "alice", PASSWORD).status_code == 302


def test_the_api_throttles_a_signed_in_client(
        client_for, member_a, settings, local_cache):
    settings.COUPLER_API_THROTTLE = True
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK,
                               "DEFAULT_THROTTLE_RATES": {"anon": "3/min", "user": "5/min"}}
    member = client_for(member_a)
    statuses = [member.get(URL).status_code for _ in range(7)]
    assert statuses == [200] * 5 + [429] * 2
    response = member.get(URL)
    assert "Retry-After" in response.headers
    assert "throttled" in response.json()["detail"].lower()


def test_a_tenant_over_its_waiting_jobs_cap_gets_429_and_others_are_unaffected(
        cluster, member_a, member_b, client_for, job_spec, settings):
    settings.COUPLER_TENANT_MAX_QUEUED = 3
    alice = client_for(member_a)
    statuses = [alice.post(URL, job_spec(), format="json").status_code for _ in range(6)]
    assert statuses == [201] * 3 + [429] * 3
    response = alice.post(URL, job_spec(), format="json")
    assert response.status_code == 429
    assert "limit is 3" in response.json()["detail"]
    assert int(response.headers["Retry-After"]) > 0
    assert Job.objects.filter(tenant__slug="tenant-a").count() == 3
    bob = client_for(member_b)
    assert bob.post(URL, job_spec(tenant="tenant-b"), format="json").status_code == 201


def test_a_tenant_over_its_submit_rate_gets_429_naming_the_limit(
        cluster, member_a, client_for, job_spec, settings):
    settings.COUPLER_TENANT_SUBMITS_PER_MIN = 4
    alice = client_for(member_a)
    statuses = [alice.post(URL, job_spec(), format="json").status_code for _ in range(5)]
    assert statuses == [201] * 4 + [429]
    response = alice.post(URL, job_spec(), format="json")
    assert "limit is 4 a minute" in response.json()["detail"]
    assert 1 <= int(response.headers["Retry-After"]) <= 61


def test_the_console_form_shows_the_limit(cluster, member_a, client, settings):
    settings.COUPLER_TENANT_SUBMITS_PER_MIN = 1
    client.force_login(member_a)
    form = {"tenant": "tenant-a", "name": "train", "gpus_per_host": 1, "hosts": 1,
            "vcpus_per_host": 4, "memory_gib_per_host": 16, "priority": 0,
            "preemptible": "on"}
    first = client.post("/jobs/new/", form)
    assert first.status_code == 302, first.content[:2000]
    second = client.post("/jobs/new/", form)
    assert second.status_code == 200
    assert b"limit is 1 a minute" in second.content
    assert Job.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_flooding_tenant_hits_its_limits_and_others_are_unaffected(
        cluster, member_a, member_b, client_for, job_spec, settings):
    """One tenant submits as fast as one client can (each submit runs a whole
    scheduling cycle here: eager Celery); the other tenant's submits and running
    job, and the hosts' heartbeats, go on as before."""
    import time as clock

    from console.core.actions.agents import do_issue_agent_token
    from console.core.models import Host

    settings.COUPLER_TENANT_MAX_QUEUED = 5
    settings.COUPLER_TENANT_SUBMITS_PER_MIN = 12
    token = do_issue_agent_token(Host.objects.get(name="ada-1"), actor="test")
    agent = client_for(None)
    alice, bob = client_for(member_a), client_for(member_b)
    running = bob.post(URL, job_spec(tenant="tenant-b", gpus_per_host=1), format="json").json()
    assert Job.objects.get(pk=running["id"]).state == "running"

    flood, others, beats = [], [], []
    for i in range(40):
        flood.append(alice.post(URL, job_spec(gpus_per_host=1), format="json").status_code)
        if i % 10 == 9:
            others.append(bob.post(URL, job_spec(tenant="tenant-b", gpus_per_host=0),
                                   format="json").status_code)
            beats.append(agent.post("/api/v1/agent/hosts/ada-1/heartbeat/",
                                    {"host": "ada-1", "sent_at": clock.time(), "domains": []},
                                    format="json",
                                    HTTP_AUTHORIZATION=f"Bearer {token}").status_code)
    assert flood.count(201) <= 12 and flood.count(429) >= 28
    assert flood[-1] == 429
    assert others == [201] * 4
    assert beats == [200] * 4
    assert Job.objects.get(pk=running["id"]).state == "running"
