from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "console.core"
    label = "core"
    verbose_name = "Coupler"

    def ready(self):
        from django.db.models.signals import post_delete, post_save

        from console.core.models import UserPreference
        from console.core.selectors.preferences import forget_preference

        post_save.connect(forget_preference, sender=UserPreference,
                          dispatch_uid="coupler-forget-preference-on-save")
        post_delete.connect(forget_preference, sender=UserPreference,
                            dispatch_uid="coupler-forget-preference-on-delete")

        # Load-test counters: a no-op unless COUPLER_PERF_STATS_DIR is set.
        from console.core import perfstats

        perfstats.install()
