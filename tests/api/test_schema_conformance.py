"""Schemathesis against /api/schema/, in process: every operation's responses
conform to the schema (status code, content type, body, headers) and none is
a 5xx, for a tenant member and for an admin (issue 13, part 5)."""

import os
import time
from contextlib import contextmanager

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from console.core.actions.tokens import do_create_api_token
from console.core.models import ApiToken

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, response_headers_conformance]
EXAMPLES = int(os.environ.get("COUPLER_SCHEMATHESIS_EXAMPLES", "4"))
BUDGET_S = 60
# Valid requests, and requests the schema says are invalid (those must be 4xx, documented).
MODES = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]


@contextmanager
def connection_kept_open():
    """Django's WSGI handler called in the test's transaction: like Django's test
    client, keep it from closing the connection at each request's start and end
    (on PostgreSQL that would end the test's transaction). The test client
    reconnects the signal after each of its own requests, so this wraps the loop."""
    signals = (request_started, request_finished)
    for signal in signals:
        signal.disconnect(close_old_connections)
    try:
        yield
    finally:
        for signal in signals:
            signal.connect(close_old_connections)


@pytest.fixture
def world(cluster, tenant_a, member_a, admin_user, make_job):
    from console.core.actions.tenants import do_set_quota

    do_set_quota(tenant_a, resource="gpus", guaranteed=4, limit=8)
    make_job(tenant_a, name="queued-job")
    return cluster


def _fuzz(operation, send, mode):
    # No shrinking: a failure is reported as found, and the test stays bounded.
    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case):
        send(case)

    return run


@pytest.mark.parametrize("role", ["member", "admin"])
def test_responses_conform_to_the_schema(role, world, member_a, admin_user, client_for):
    user = member_a if role == "member" else admin_user
    token, secret = do_create_api_token(user, name="schemathesis", actor="test")
    auth = {"Authorization": f"Token {secret}"}
    raw = client_for(user).get("/api/schema/", {"format": "json"}).json()
    schema = schemathesis.openapi.from_dict(raw)
    app = get_wsgi_application()
    failures = []
    started = time.monotonic()
    with connection_kept_open():
        _fuzz_all(schema, app, auth, token, failures)
    elapsed = time.monotonic() - started
    assert not failures, "\n\n".join(failures)
    assert elapsed < BUDGET_S


def _fuzz_all(schema, app, auth, token, failures):
    for result in schema.get_all_operations():
        operation = result.ok()

        def send(case):
            # A generated revoke/rotate may hit the test's own token: keep it usable.
            ApiToken.objects.filter(pk=token.pk).update(revoked_at=None)
            # Each request in a savepoint rolled back after it: cases stay independent,
            # and a statement PostgreSQL refuses (answered 400) does not abort the
            # test's transaction for the next one, as autocommit would not in production.
            savepoint = transaction.savepoint()
            try:
                response = case.call(app=app, headers=auth)
            finally:
                transaction.savepoint_rollback(savepoint)
            case.validate_response(response, checks=CHECKS)

        for mode in MODES:
            try:
                _fuzz(operation, send, mode)()
            except (Exception, BaseExceptionGroup) as exc:
                if isinstance(exc, Unsatisfiable) and mode.value == "negative":
                    continue  # nothing to make invalid (no parameters, no body): no case

                failures.append(f"{operation.label} ({mode.value}): {str(exc)[:700]}")
