"""Turn what escapes an action into a 4xx, never a 500.

Actions raise Django's ``ValidationError`` (per-field messages), the database
raises ``IntegrityError`` when a constraint refuses a write (``DataError``
when a value cannot be stored) (the transaction
that made it is rolled back, so nothing was written), and an action that
cannot be done in the object's current state raises its own error (409).
"""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError, IntegrityError
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.serializers import as_serializer_error
from rest_framework.views import exception_handler as drf_exception_handler

from console.core.actions.hosts import HostActionError
from console.core.actions.jobs import JobActionError

# Model field names that the API spells differently.
API_FIELD_NAMES = {"host_count": "hosts"}


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the object's current state."
    default_code = "conflict"


def validation_error(exc: DjangoValidationError) -> exceptions.ValidationError:
    """A DRF ValidationError with the same per-field messages."""
    detail = as_serializer_error(exc)
    return exceptions.ValidationError(
        {API_FIELD_NAMES.get(field, field): messages for field, messages in detail.items()}
    )


def exception_handler(exc, context):
    if isinstance(exc, DjangoValidationError):
        exc = validation_error(exc)
    elif isinstance(exc, IntegrityError):
        exc = exceptions.ValidationError(
            {"non_field_errors": ["The request conflicts with existing data and was not saved."]}
        )
    elif isinstance(exc, DataError):
        # A value the database cannot store (out of range, a NUL byte): the
        # statement failed, so nothing was written.
        exc = exceptions.ValidationError(
            {"non_field_errors": ["A value in the request cannot be stored."]}
        )
    elif isinstance(exc, JobActionError | HostActionError):
        exc = Conflict(str(exc))
    return drf_exception_handler(exc, context)


@csrf_exempt  # it changes nothing; a POST to a wrong URL is a 404, not a CSRF refusal
def api_not_found(request, path: str = ""):
    """A URL under /api/ that names no endpoint (a malformed id or slug): the API's
    JSON 404, not the console's HTML page."""
    return JsonResponse({"detail": str(exceptions.NotFound.default_detail)}, status=404)
