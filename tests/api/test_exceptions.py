"""console.api.exceptions: what escapes an action becomes a 4xx, never a 500."""

import pytest
from django.core.exceptions import ValidationError
from django.db import DataError, IntegrityError

from console.api.exceptions import exception_handler
from console.core.actions.hosts import HostActionError
from console.core.actions.jobs import JobActionError


def handle(exc):
    return exception_handler(exc, {})


def test_a_django_validation_error_becomes_400_with_api_field_names():
    response = handle(ValidationError({"host_count": ["Too many."], "name": ["Bad."]}))
    assert response.status_code == 400
    assert response.data == {"hosts": ["Too many."], "name": ["Bad."]}


def test_a_plain_validation_message_becomes_a_non_field_error():
    response = handle(ValidationError("Nope."))
    assert (response.status_code, response.data) == (400, {"non_field_errors": ["Nope."]})


@pytest.mark.parametrize("exc", [IntegrityError("duplicate key"), DataError("NUL byte")])
def test_database_refusals_become_400_without_leaking_sql(exc):
    response = handle(exc)
    assert response.status_code == 400
    assert "duplicate" not in str(response.data) and "NUL" not in str(response.data)


@pytest.mark.parametrize("exc", [JobActionError("Job 1 has already finished (failed)."),
                                 HostActionError("An offline host comes back by heartbeating.")])
def test_actions_refused_in_the_current_state_become_409(exc):
    response = handle(exc)
    assert response.status_code == 409
    assert response.data["detail"] == str(exc)


def test_other_errors_are_left_to_django():
    assert handle(RuntimeError("bug")) is None
