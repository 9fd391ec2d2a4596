"""Personal API tokens: create (the secret is returned once), revoke, rotate.

Only the secret's SHA-256 is stored (``ApiToken.set_secret``). Each change is
an audit ``Event`` on the token naming who made it; an admin revoking someone
else's token is recorded the same way.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from console.core.choices import EventKind
from console.core.models import ApiToken, Event

# A token's last use is written at most this often (not on every request).
LAST_USED_RESOLUTION = timedelta(minutes=1)


def default_days() -> int:
    return settings.COUPLER_API_TOKEN_DAYS


def max_days() -> int:
    return settings.COUPLER_API_TOKEN_MAX_DAYS


def check_token_fields(name: str, days: int | None) -> dict[str, list[str]]:
    """Per-field messages for a new token's name and lifetime (empty when valid)."""
    errors: dict[str, list[str]] = {}
    name = (name or "").strip()
    if not name:
        errors["name"] = [_("Give the token a name (what uses it).")]
    elif len(name) > 100:
        errors["name"] = [_("A name has at most 100 characters.")]
    if days is not None and not 1 <= days <= max_days():
        errors["expires_in_days"] = [
            _("A token lives from 1 to %(max)d days.") % {"max": max_days()}]
    return errors


def _create(user, *, name: str, days: int, actor: str, reason: str) -> tuple[ApiToken, str]:
    now = timezone.now()
    token = ApiToken(user=user, name=name.strip(), created_at=now,
                     expires_at=now + timedelta(days=days))
    secret = token.set_secret()
    token.save()
    Event.objects.create(token=token, kind=EventKind.API_TOKEN_CREATED, actor=actor, reason=reason,
                         data={"user": user.get_username(), "prefix": token.prefix,
                               "expires_at": token.expires_at.isoformat()})
    return token, secret


def do_create_api_token(user, *, name: str, expires_in_days: int | None = None,
                        actor: str) -> tuple[ApiToken, str]:
    """A new token for ``user``; returns it and its secret (never stored, never shown again)."""
    errors = check_token_fields(name, expires_in_days)
    if errors:
        raise ValidationError(errors)
    days = expires_in_days if expires_in_days is not None else default_days()
    with transaction.atomic():
        return _create(user, name=name, days=days, actor=actor, reason="API token created")


def do_revoke_api_token(token: ApiToken, *, actor: str) -> ApiToken:
    """The token stops working at once. Revoking a revoked token changes nothing."""
    with transaction.atomic():
        token = ApiToken.objects.select_for_update().select_related("user").get(pk=token.pk)
        if token.revoked_at is None:
            token.revoked_at = timezone.now()
            token.save(update_fields=["revoked_at"])
            Event.objects.create(token=token, kind=EventKind.API_TOKEN_REVOKED, actor=actor,
                                 reason="API token revoked",
                                 data={"user": token.user.get_username(),
                                       "prefix": token.prefix})
    return token


class TokenRevoked(Exception):
    """A revoked token cannot be rotated (a new one is created instead)."""


def do_rotate_api_token(token: ApiToken, *, actor: str) -> tuple[ApiToken, str]:
    """Replace a token: a new secret with the same name and lifetime, the old one
    revoked in the same transaction. Returns the new token and its secret."""
    with transaction.atomic():
        old = ApiToken.objects.select_for_update().select_related("user").get(pk=token.pk)
        if old.revoked_at is not None:
            raise TokenRevoked(_("This token is revoked; create a new one instead."))
        lifetime = max(1, min(max_days(), round((old.expires_at - old.created_at)
                                                / timedelta(days=1))))
        new, secret = _create(old.user, name=old.name, days=lifetime, actor=actor,
                              reason=f"API token rotated (replaces {old.prefix}…)")
        old.revoked_at = new.created_at
        old.save(update_fields=["revoked_at"])
        Event.objects.create(token=old, kind=EventKind.API_TOKEN_REVOKED, actor=actor,
                             reason=f"API token rotated (replaced by {new.prefix}…)",
                             data={"user": old.user.get_username(), "prefix": old.prefix})
    return new, secret


def record_api_token_use(token: ApiToken, now=None) -> None:
    """Remember when a token was last used, writing at most once a minute per token."""
    now = now or timezone.now()
    if token.last_used_at is not None and now - token.last_used_at < LAST_USED_RESOLUTION:
        return
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    token.last_used_at = now


def do_issue_demo_token(user, *, name: str, actor: str, keep: str = "") -> str:
    """The demo's token for ``user``: ``keep`` (the secret it wrote last time) while
    that is still one of the user's usable tokens, else a new one."""
    from console.core.models.tokens import hash_token

    if keep and ApiToken.objects.usable().filter(user=user, key_hash=hash_token(keep)).exists():
        return keep
    _token, secret = do_create_api_token(user, name=name, actor=actor)
    return secret
