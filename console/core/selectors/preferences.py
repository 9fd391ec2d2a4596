"""A user's language and time zone, read on every console request.

Kept in the cache (``CACHE_S``) so a page costs no query for it; any save or
delete of the row forgets the cached copy (``forget_preference``, connected to
the model's signals in ``CoreConfig.ready``), so a change shows on the next page.
"""

from __future__ import annotations

from django.core.cache import cache

from console.core.models import UserPreference

CACHE_S = 300


def _key(user_id: int) -> str:
    return f"coupler:preference:{user_id}"


def preference_of(user_id: int) -> tuple[str, str]:
    """``(language, time zone)`` of the user; ``("", "")``: follow the browser."""
    value = cache.get(_key(user_id))
    if value is None:
        row = (UserPreference.objects.filter(user_id=user_id)
               .values_list("language", "time_zone").first())
        value = tuple(row) if row else ("", "")
        cache.set(_key(user_id), value, CACHE_S)
    return value[0], value[1]


def forget_preference(sender, instance: UserPreference, **_kwargs) -> None:
    cache.delete(_key(instance.user_id))
