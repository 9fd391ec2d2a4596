# /metrics in Prometheus format; who may read it: console/access.py.
from django.urls import path

from console.access import metrics_protected
from console.metrics import metrics_view

urlpatterns = [path("metrics", metrics_protected(metrics_view), name="metrics")]
