"""No 500 on any input (issue 13, finding "Low"): out-of-range dates in list
filters, deeply nested JSON, NUL bytes, malformed agent bodies, stale, future
and replayed heartbeats, and latency endpoints outside the cluster — each a 4xx
with a message, and nothing applied."""

import json
import time

import pytest

from console.core.actions.agents import do_issue_agent_token
from console.core.models import Host

pytestmark = pytest.mark.django_db


@pytest.fixture
def tokens(cluster):
    return {h.name: do_issue_agent_token(h, actor="test") for h in Host.objects.all()}


def _beat(api_client, token, body, host="dgx-1"):
    return api_client.post(f"/api/v1/agent/hosts/{host}/heartbeat/", body, format="json",
                           HTTP_AUTHORIZATION=f"Bearer {token}")


@pytest.mark.parametrize("value", ["9999-12-31T23:59:59+14:00", "0001-01-01T00:00:00-12:00",
                                   "10000-01-01", "2026-13-45", "\x00", "1e400"])
def test_out_of_range_dates_in_list_filters_are_400(client_for, member_a, tenant_a, value):
    client = client_for(member_a)
    for url, param in (("/api/v1/jobs/", "submitted_after"), ("/api/v1/jobs/", "submitted_before"),
                       ("/api/v1/incidents/", "opened_after")):
        response = client.get(url, {param: value})
        assert response.status_code in (200, 400), (url, param, value, response.status_code)
        if response.status_code == 400:
            assert param in response.json()


def test_out_of_range_dates_in_console_lists_are_not_500(client, member_a, tenant_a):
    client.force_login(member_a)
    response = client.get("/jobs/", {"submitted_after": "9999-12-31T23:59:59+14:00"})
    assert response.status_code in (200, 400)


def test_deeply_nested_json_is_400(client_for, member_a, tenant_a):
    body = "[" * 100_000 + "]" * 100_000
    response = client_for(member_a).post("/api/v1/jobs/", body, content_type="application/json")
    assert response.status_code == 400
    assert "detail" in response.json()


def test_a_nul_byte_in_a_name_is_400(client_for, admin_user, member_a, tenant_a, job_spec):
    response = client_for(admin_user).post("/api/v1/tenants/", {"name": "bad\x00name",
                                                                "slug": "bad", "weight": 1},
                                           format="json")
    assert response.status_code == 400, response.content
    response = client_for(member_a).post("/api/v1/jobs/", job_spec(name="x\x00y"), format="json")
    assert response.status_code == 400, response.content
    response = client_for(member_a).get("/api/v1/jobs/", {"name": "a\x00b"})
    assert response.status_code in (200, 400)


MALFORMED = [
    [], "text", 42, None, {"sent_at": "now"}, {"sent_at": None}, {"sent_at": float("nan")},
    {"domains": "dom"}, {"domains": [1, 2]}, {"stopped_domains": "x"},
    {"stopped_domains": [None]}, {"domain_states": []}, {"domain_states": {"a": 1}},
    {"checks": "all"}, {"checks": [1]}, {"xid_events": {"a": 1}}, {"xid_events": ["x"]},
    {"latency_endpoint": 7}, {"load": []}, {"gpus": "all"}, {"healthy": "yes"},
    {"host": "dgx-2"},
]


def test_malformed_agent_bodies_are_4xx(api_client, tokens):
    for i, extra in enumerate(MALFORMED):
        if isinstance(extra, dict):
            body = {"host": "dgx-1", "sent_at": time.time() + i * 0.001, "domains": [], **extra}
            if isinstance(body["sent_at"], float) and body["sent_at"] != body["sent_at"]:
                body = json.dumps(body)  # NaN is not JSON: sent as the literal
        else:
            body = extra
        if isinstance(body, str) and body.startswith("{"):
            response = api_client.post("/api/v1/agent/hosts/dgx-1/heartbeat/", body,
                                       content_type="application/json",
                                       HTTP_AUTHORIZATION=f"Bearer {tokens['dgx-1']}")
        else:
            response = _beat(api_client, tokens["dgx-1"], body)
        assert 400 <= response.status_code < 500, (extra, response.status_code, response.content)
    for body in ([], "x", {"inventory": "no"}, {"inventory": {"gpus": "all"}}):
        response = api_client.post("/api/v1/agent/hosts/dgx-1/register/", body, format="json",
                                   HTTP_AUTHORIZATION=f"Bearer {tokens['dgx-1']}")
        assert 400 <= response.status_code < 500, (body, response.status_code)


def test_stale_future_and_replayed_heartbeats_are_refused(api_client, tokens):
    token = tokens["dgx-1"]
    now = time.time()
    stale = _beat(api_client, token, {"sent_at": now - 3600, "domains": []})
    assert stale.status_code == 400 and "old" in stale.json()["detail"]
    future = _beat(api_client, token, {"sent_at": 4102444800.0, "domains": []})  # 2100
    assert future.status_code == 400 and "future" in future.json()["detail"]
    assert Host.objects.get(name="dgx-1").last_heartbeat is None
    fresh = {"sent_at": now, "domains": []}
    assert _beat(api_client, token, fresh).status_code == 200
    replay = _beat(api_client, token, fresh)
    assert replay.status_code == 400 and "replay" in replay.json()["detail"]


def test_a_latency_endpoint_outside_the_cluster_networks_is_ignored(api_client, tokens, settings):
    settings.COUPLER_AGENT_NETWORKS = "10.0.0.0/8"
    for i, endpoint in enumerate(["169.254.169.254:80", "8.8.8.8:7471", "metadata.google.internal:80",
                                  "192.168.1.5:7471"]):
        body = {"sent_at": time.time() + i * 0.001, "domains": [], "latency_endpoint": endpoint}
        assert _beat(api_client, tokens["dgx-1"], body).status_code == 200
        assert Host.objects.get(name="dgx-1").latency_endpoint == "", endpoint
    body = {"sent_at": time.time() + 1, "domains": [], "latency_endpoint": "10.1.2.3:7471"}
    assert _beat(api_client, tokens["dgx-1"], body).status_code == 200
    assert Host.objects.get(name="dgx-1").latency_endpoint == "10.1.2.3:7471"
