from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class UserPreference(models.Model):
    """A console user's language and time zone. Empty means "follow the
    browser": its Accept-Language and the zone its clock reports."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                related_name="preference")
    language = models.CharField(max_length=16, blank=True, default="")
    time_zone = models.CharField(max_length=64, blank=True, default="")

    def __str__(self) -> str:
        return f"{self.user}: {self.language or 'browser'} / {self.time_zone or 'browser'}"


class SavedFilterQuerySet(models.QuerySet):
    def for_user(self, user):
        """A user's own saved filters: nobody reads another's."""
        if not getattr(user, "is_authenticated", False):
            return self.none()
        return self.filter(user=user)


class SavedFilter(models.Model):
    """A named filter of one console list (its query string, as the list's
    address carries it), kept per user."""

    class List(models.TextChoices):
        JOBS = "jobs", _("Jobs")
        HOSTS = "hosts", _("Hosts")
        FAULTS = "faults", _("Faults")

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="saved_filters")
    list = models.CharField(max_length=16, choices=List.choices)
    name = models.CharField(max_length=80)
    query = models.CharField(max_length=2000, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = SavedFilterQuerySet.as_manager()

    class Meta:
        ordering = ["list", "name"]
        constraints = [
            models.UniqueConstraint(fields=["user", "list", "name"],
                                    name="saved_filter_unique_name"),
        ]

    def __str__(self) -> str:
        return f"{self.user}: {self.list} / {self.name}"
