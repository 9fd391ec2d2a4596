# REST API v1 (tenants, quotas, clusters, hosts, jobs).
urlpatterns: list = []
