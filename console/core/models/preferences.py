from django.conf import settings
from django.db import models


class UserPreference(models.Model):
    """A console user's language and time zone. Empty means "follow the
    browser": its Accept-Language and the zone its clock reports."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                related_name="preference")
    language = models.CharField(max_length=16, blank=True, default="")
    time_zone = models.CharField(max_length=64, blank=True, default="")

    def __str__(self) -> str:
        return f"{self.user}: {self.language or 'browser'} / {self.time_zone or 'browser'}"
