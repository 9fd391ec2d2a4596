"""The REST API's token authentication: personal tokens, hashed at rest.

``Authorization: Token <secret>`` (or ``Bearer <secret>``). The secret is
hashed and looked up; an unknown, revoked or expired token is a 401 that
says which, so an integrator knows whether to fix a typo or make a new token.
"""

from __future__ import annotations

from django.utils import formats, timezone
from django.utils.translation import gettext as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from console.core.actions.tokens import record_api_token_use
from console.core.models import ApiToken
from console.core.models.tokens import hash_token

KEYWORDS = (b"token", b"bearer")


def _when(moment) -> str:
    return formats.date_format(timezone.localtime(moment), "DATETIME_FORMAT")


class ApiTokenAuthentication(BaseAuthentication):
    keyword = "Token"

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() not in KEYWORDS:
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(
                _("Invalid token header: give the token after “Token ” with no spaces."))
        try:
            secret = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(_("Invalid token.")) from None
        token = (ApiToken.objects.select_related("user")
                 .filter(key_hash=hash_token(secret)).first())
        if token is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        if token.revoked_at is not None:
            raise exceptions.AuthenticationFailed(
                _("This API token (%(prefix)s…) was revoked on %(when)s.")
                % {"prefix": token.prefix, "when": _when(token.revoked_at)})
        if token.expires_at <= timezone.now():
            raise exceptions.AuthenticationFailed(
                _("This API token (%(prefix)s…) expired on %(when)s; create a new one "
                  "under API tokens.") % {"prefix": token.prefix,
                                          "when": _when(token.expires_at)})
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        record_api_token_use(token)
        return token.user, token

    def authenticate_header(self, request) -> str:
        return self.keyword



class ApiTokenScheme(OpenApiAuthenticationExtension):
    """How /api/schema/ describes this authentication."""

    target_class = "console.api.authentication.ApiTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "Authorization",
                "description": "`Token <secret>`: a personal API token (console → "
                               "API tokens, or POST /api/v1/tokens/)."}
