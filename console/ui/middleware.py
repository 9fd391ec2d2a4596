"""Each request in the user's language and time zone: their saved choice
first, then the browser's (Accept-Language via LocaleMiddleware, the zone the
browser's clock reports via the ``coupler_tz`` cookie), else UTC."""

import zoneinfo

from django.utils import timezone, translation

TZ_COOKIE = "coupler_tz"


def zone_or_none(name: str):
    try:
        return zoneinfo.ZoneInfo(name) if name else None
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None


class UserPreferenceMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        zone_name = request.COOKIES.get(TZ_COOKIE, "")
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            from console.core.selectors.preferences import preference_of

            language, time_zone = preference_of(user.pk)
            if language:
                translation.activate(language)
                request.LANGUAGE_CODE = translation.get_language()
            zone_name = time_zone or zone_name
        zone = zone_or_none(zone_name)
        if zone is not None:
            timezone.activate(zone)
        else:
            timezone.deactivate()
        return self.get_response(request)
