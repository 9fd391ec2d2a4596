"""The agent endpoints' bare route (console.wsgi) and the quiet heartbeat's one UPDATE.

A quiet heartbeat is applied against the host as the web process last read it; the
UPDATE re-checks that row, so whatever changed it since — a new token, the watchdog,
another worker writing the report — sends the heartbeat down the full path, never
answers from a stale copy.
"""

import io
import json
import time

import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, connection
from django.test.utils import CaptureQueriesContext

from console.api import agent
from console.core.actions.agents import do_agent_quiet_heartbeat, do_issue_agent_token
from console.core.models import Event, Host
from console.wsgi import agent_application, application

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _forget_hosts():
    agent._seen.clear()
    yield
    agent._seen.clear()


@pytest.fixture
def token(cluster):
    return do_issue_agent_token(Host.objects.get(name="dgx-1"), actor="test")


def _beat(host="dgx-1", **extra):
    return {"host": host, "sent_at": time.time(), "domains": [], **extra}


def _wsgi(path, body=None, *, token="", method="POST", app=application):
    """One request through console.wsgi's application, as gunicorn would make it."""
    raw = json.dumps(body).encode() if body is not None else b""
    environ = {
        "REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80", "HTTP_HOST": "127.0.0.1",
        "REMOTE_ADDR": "127.0.0.1", "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(raw)), "wsgi.input": io.BytesIO(raw),
        "wsgi.url_scheme": "http", "wsgi.errors": io.StringIO(),
    }
    if token:
        environ["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    started = []
    # As Django's test client does: the test's transaction must outlive the request.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        content = b"".join(app(environ, lambda status, headers, *a: started.append(
            (int(status.split()[0]), dict(headers)))))
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    status, headers = started[0]
    return status, headers, content


def _heartbeat(token, host="dgx-1", **extra):
    return _wsgi(f"/api/v1/agent/hosts/{host}/heartbeat/", _beat(host, **extra), token=token)


def test_the_agent_route_runs_only_the_agent_middleware(token):
    names = {m.rsplit(".", 1)[1] for m in agent_application.middleware}
    assert "SessionMiddleware" not in names and "CSPMiddleware" not in names
    assert "AxesMiddleware" not in names and "RequestIdMiddleware" in names
    status, headers, content = _heartbeat(token)
    assert status == 200, content
    assert json.loads(content)["host"] == "dgx-1"
    assert "X-Request-ID" in headers and "Set-Cookie" not in headers
    assert "Content-Security-Policy" not in headers
    # The rest of the console still gets its whole stack.
    status, headers, _ = _wsgi("/login/", method="GET")
    assert status == 200 and "Content-Security-Policy" in headers


def test_the_agent_route_keeps_the_apis_refusals(token, cluster):
    assert _heartbeat(token, host="dgx-2")[0] == 403  # another host's URL
    assert _heartbeat("not-the-token")[0] == 403
    assert _heartbeat("")[0] == 403
    assert _heartbeat(token, host="no-such-host")[0] == 404
    assert _wsgi("/api/v1/agent/hosts/dgx-1/heartbeat/", method="GET", token=token)[0] == 405
    status, _, content = _wsgi("/api/v1/agent/hosts/dgx-1/heartbeat/", _beat("dgx-2"),
                               token=token)
    assert status == 403, content  # a body naming another host
    assert _wsgi("/api/v1/agent/nothing-here/", {}, token=token)[0] == 404
    assert Host.objects.get(name="dgx-1").last_heartbeat is None


def test_quiet_heartbeats_cost_one_statement_once_the_host_was_read(token):
    assert _heartbeat(token)[0] == 200  # records the (empty) domain report
    assert _heartbeat(token)[0] == 200  # quiet: the host is read, then remembered
    before = Host.objects.get(name="dgx-1").last_heartbeat
    with CaptureQueriesContext(connection) as captured:
        status, _, content = _heartbeat(token)
    assert status == 200 and json.loads(content)["state"] == "ready"
    assert len(captured.captured_queries) == 1, captured.captured_queries
    assert captured.captured_queries[0]["sql"].startswith("UPDATE")
    assert Host.objects.get(name="dgx-1").last_heartbeat > before


def _remembered(token):
    for _ in range(2):
        assert _heartbeat(token)[0] == 200
    assert "dgx-1" in agent._seen


def test_a_new_token_is_required_at_once_though_the_host_was_remembered(token):
    _remembered(token)
    new = do_issue_agent_token(Host.objects.get(name="dgx-1"), actor="test")
    assert _heartbeat(token)[0] == 403
    assert _heartbeat(new)[0] == 200


def test_a_host_the_watchdog_took_offline_comes_back_with_its_next_heartbeat(token):
    from console.core.actions.agents import do_mark_host_offline

    _remembered(token)
    do_mark_host_offline(Host.objects.get(name="dgx-1"), reason="no heartbeat")
    status, _, content = _heartbeat(token)
    assert status == 200 and json.loads(content)["state"] == "ready"
    assert Host.objects.get(name="dgx-1").state == "ready"
    assert Event.objects.filter(host__name="dgx-1", kind="online").exists()


def test_a_report_written_by_another_worker_is_not_overwritten_by_a_stale_copy(token):
    """Worker A remembered the host with no domains; worker B recorded one running
    since. The agent's next beat (to A) again reports none: it must be written."""
    _remembered(token)
    host = Host.objects.get(name="dgx-1")
    facts = dict(host.facts)
    facts["reported_domains"] = {**facts["reported_domains"], "running": ["coupler-job-7"]}
    Host.objects.filter(pk=host.pk).update(facts=facts)
    assert _heartbeat(token)[0] == 200
    assert Host.objects.get(pk=host.pk).facts["reported_domains"]["running"] == []


def test_a_changed_report_takes_the_full_path(token):
    _remembered(token)
    assert _heartbeat(token, domains=["coupler-job-9"])[0] == 200
    assert Host.objects.get(name="dgx-1").facts["reported_domains"]["running"] == [
        "coupler-job-9"]
    assert "dgx-1" not in agent._seen


def test_a_replayed_heartbeat_is_refused_on_the_quiet_path_too(token):
    _remembered(token)
    body = _beat()
    path = "/api/v1/agent/hosts/dgx-1/heartbeat/"
    assert _wsgi(path, body, token=token)[0] == 200
    status, _, content = _wsgi(path, body, token=token)
    assert status == 400 and b"replay" in content


def test_the_quiet_update_writes_nothing_when_the_row_changed(token):
    from hostagent.protocol import Heartbeat, decode

    _remembered(token)
    seen = agent._seen["dgx-1"]
    beat = decode(Heartbeat, json.dumps(_beat()).encode())
    assert do_agent_quiet_heartbeat(seen, beat)["state"] == "ready"
    Host.objects.filter(pk=seen.pk).update(group="rack-moved")
    before = Host.objects.get(pk=seen.pk).last_heartbeat
    assert do_agent_quiet_heartbeat(seen, beat) is None
    assert Host.objects.get(pk=seen.pk).last_heartbeat == before
