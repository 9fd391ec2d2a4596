from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "console.core"
    label = "core"
    verbose_name = "Coupler"

    def ready(self):
        # Load-test counters: a no-op unless COUPLER_PERF_STATS_DIR is set.
        from console.core import perfstats

        perfstats.install()
