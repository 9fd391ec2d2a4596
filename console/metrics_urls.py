# /metrics in Prometheus format.
urlpatterns: list = []
