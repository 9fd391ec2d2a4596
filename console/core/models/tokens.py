"""Personal API tokens: hashed at rest, expiring, revocable.

A user may hold several tokens, each with a name. The secret is drawn once
(``cpl_`` and 43 URL-safe characters), shown once, and only its SHA-256 is
stored, with a short visible prefix to tell tokens apart. A token works
until it expires or is revoked; the API's authentication class
(``console.api.authentication``) says which with a 401.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone

# The same one-round SHA-256 as agent tokens: the secrets are long and random,
# so there is nothing to brute-force and a lookup by hash stays one index probe.
from console.core.models.inventory import hash_agent_token as hash_token

SECRET_PREFIX = "cpl_"
# What the console and the API show of a token: enough to recognise it, not to use it.
VISIBLE_CHARS = 12


class TokenState(models.TextChoices):
    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


class ApiTokenQuerySet(models.QuerySet):
    def for_user(self, user):
        """A user's own tokens; an admin's view holds everyone's."""
        if not user.is_authenticated:
            return self.none()
        if user.is_staff:
            return self
        return self.filter(user=user)

    def usable(self, now=None):
        now = now or timezone.now()
        return self.filter(revoked_at__isnull=True, expires_at__gt=now)


class ApiToken(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=VISIBLE_CHARS)
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "-created_at"], name="apitoken_user_created")]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def set_secret(self, secret: str | None = None) -> str:
        secret = secret or new_secret()
        self.key_hash = hash_token(secret)
        self.prefix = secret[:VISIBLE_CHARS]
        return secret

    def state_at(self, now=None) -> TokenState:
        now = now or timezone.now()
        if self.revoked_at is not None:
            return TokenState.REVOKED
        if self.expires_at <= now:
            return TokenState.EXPIRED
        return TokenState.ACTIVE

    @property
    def state(self) -> TokenState:
        return self.state_at()
