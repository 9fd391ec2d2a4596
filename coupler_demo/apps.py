from django.apps import AppConfig


class DemoConfig(AppConfig):
    name = "coupler_demo"
    label = "coupler_demo"
    verbose_name = "Coupler demo and tooling"
