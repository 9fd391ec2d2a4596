"""DRF throttles whose rates are read from settings at each request.

DRF's own classes copy their rates when the module is imported; these look
them up per request (``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]``), and
``COUPLER_API_THROTTLE = False`` switches them off (the tests, except the
ones about throttling). Rates are per signed-in user and per client address.
"""

from django.conf import settings
from rest_framework import throttling


class _RatesFromSettings:
    scope: str

    def get_rate(self):
        if not getattr(settings, "COUPLER_API_THROTTLE", True):
            return None
        return settings.REST_FRAMEWORK.get("DEFAULT_THROTTLE_RATES", {}).get(self.scope)


class AnonRateThrottle(_RatesFromSettings, throttling.AnonRateThrottle):
    pass


class UserRateThrottle(_RatesFromSettings, throttling.UserRateThrottle):
    pass
