"""Least disclosure and the operational endpoints (issue 13): /metrics closed by
default, the API docs and schema for signed-in users, a Content-Security-Policy
on every page, /healthz and /readyz for process managers."""

import pytest

from console.celery import app


@pytest.fixture
def metrics_off(monkeypatch):
    """The metrics text itself is i16's; here only who may read it matters."""
    import console.metrics

    monkeypatch.setattr(console.metrics, "render", lambda: "coupler_up 1\n")


def test_metrics_are_closed_to_anonymous_users_and_tenants_by_default(
        client, member_a, admin_user, settings, metrics_off):
    settings.COUPLER_METRICS_TOKEN = ""
    settings.COUPLER_METRICS_PUBLIC = False
    response = client.get("/metrics")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    client.force_login(member_a)
    assert client.get("/metrics").status_code == 401
    client.force_login(admin_user)
    assert client.get("/metrics").status_code == 200


def test_metrics_with_their_token_or_when_declared_public(client, settings, metrics_off):
    settings.COUPLER_METRICS_TOKEN = "scrape-token-0123456789"
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer nope").status_code == 401
    ok = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-token-0123456789")
    assert ok.status_code == 200 and b"coupler_up 1" in ok.content
    settings.COUPLER_METRICS_TOKEN = ""
    settings.COUPLER_METRICS_PUBLIC = True
    assert client.get("/metrics").status_code == 200


def test_api_docs_and_schema_are_for_signed_in_users(client, api_client, member_a):
    response = client.get("/api/docs/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert api_client.get("/api/schema/").status_code == 401
    client.force_login(member_a)
    page = client.get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "<script>" not in html  # the init script has its own URL: the CSP allows it
    script = client.get("/api/docs/", {"script": ""})
    assert script.status_code == 200 and b"SwaggerUIBundle" in script.content


def test_every_page_carries_a_content_security_policy(client, member_a):
    for url in ("/login/", "/api/docs/"):
        if url == "/api/docs/":
            client.force_login(member_a)
        policy = client.get(url)["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert "unsafe-eval" not in policy


def test_x_forwarded_proto_is_ignored_unless_configured(rf, settings):
    request = rf.get("/", HTTP_X_FORWARDED_PROTO="https")
    assert not request.is_secure()
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    assert rf.get("/", HTTP_X_FORWARDED_PROTO="https").is_secure()


def test_healthz_answers_without_touching_anything(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert client.post("/healthz").status_code == 405


@pytest.mark.django_db
def test_readyz_checks_the_database_and_the_broker(client, monkeypatch):
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json()["checks"] == {"database": "ok", "broker": "ok"}
    monkeypatch.setattr(app.conf, "broker_url", "redis://127.0.0.1:1/0")
    down = client.get("/readyz")
    assert down.status_code == 503
    assert down.json()["checks"] == {"database": "ok", "broker": "down"}


def test_every_response_names_its_request_id(client):
    response = client.get("/healthz", HTTP_X_REQUEST_ID="req-0123456789")
    assert response["X-Request-ID"] == "req-0123456789"
    drawn = client.get("/healthz", HTTP_X_REQUEST_ID="bad id with spaces")["X-Request-ID"]
    assert drawn != "bad id with spaces" and len(drawn) == 32


@pytest.mark.django_db(transaction=True)
def test_a_preempted_tenant_sees_no_other_tenant_quota_or_job(
        cluster, tenant_a, tenant_b, member_a, admin_user, client_for):
    import scheduler
    from console.core.actions.jobs import do_submit_job
    from console.core.planning import _preempt

    victim = do_submit_job(tenant=tenant_a, actor="test", name="victim", gpus_per_host=2,
                           vcpus_per_host=8, memory_gib_per_host=32)
    preemptor = do_submit_job(tenant=tenant_b, actor="test", name="preemptor",
                              gpus_per_host=1, vcpus_per_host=4, memory_gib_per_host=16)
    full = (f"Borrowed capacity reclaimed: tenant {tenant_b.slug} is below its guarantee "
            f"(gpus 8) and job {preemptor.pk} is short of gpus; tenant {tenant_a.slug} keeps "
            "at least its own guarantee on gpus.")
    assert _preempt(scheduler.Preemption(job_id=str(victim.pk), reason=full,
                                         for_job=str(preemptor.pk), resources=("gpus",)))
    url = f"/api/v1/jobs/{victim.pk}/"
    seen_by_tenant = client_for(member_a).get(url).content.decode()
    assert "preempted" in seen_by_tenant
    for secret in (tenant_b.slug, tenant_b.name, "gpus 8", f"job {preemptor.pk}",
                   "for_job", "preemption_reason"):
        assert secret not in seen_by_tenant, secret
    seen_by_admin = client_for(admin_user).get(url).json()
    teardown = next(e for e in seen_by_admin["events"] if e["to_state"] == "teardown")
    assert teardown["data"]["for_job"] == str(preemptor.pk)
    assert teardown["data"]["preemption_reason"] == full
