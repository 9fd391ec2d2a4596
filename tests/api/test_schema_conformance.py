"""Schemathesis against /api/schema/, in process: every operation's responses
conform to the schema (status code, content type, body, headers) and none is
a 5xx, for a tenant member and for an admin (issue 13, part 5)."""

import os
import time

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, given, settings
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


@pytest.fixture
def world(cluster, tenant_a, member_a, admin_user, make_job):
    from console.core.actions.tenants import do_set_quota

    do_set_quota(tenant_a, resource="gpus", guaranteed=4, limit=8)
    make_job(tenant_a, name="queued-job")
    return cluster


def _fuzz(operation, send, mode):
    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
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
    for result in schema.get_all_operations():
        operation = result.ok()

        def send(case):
            # A generated revoke/rotate may hit the test's own token: keep it usable.
            ApiToken.objects.filter(pk=token.pk).update(revoked_at=None)
            response = case.call(app=app, headers=auth)
            case.validate_response(response, checks=CHECKS)

        for mode in MODES:
            try:
                _fuzz(operation, send, mode)()
            except (Exception, BaseExceptionGroup) as exc:
                failures.append(f"{operation.label} ({mode.value}): {str(exc)[:700]}")
    elapsed = time.monotonic() - started
    assert not failures, "\n\n".join(failures)
    assert elapsed < BUDGET_S
