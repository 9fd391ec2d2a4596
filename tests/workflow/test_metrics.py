"""/metrics speaks Prometheus text and counts what the cluster holds."""

import pytest

pytestmark = pytest.mark.django_db(transaction=True)


def test_metrics_report_queue_gpus_shares_states_latency_and_hosts(client, cluster, submit,
                                                                   tenant_b, admin_user):
    submit(gpus_per_host=2, gpu_model="A100-SXM4-40GB")
    client.force_login(admin_user)  # who may read /metrics: tests/api/test_disclosure.py
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    text = response.content.decode()
    assert 'coupler_queue_length{tenant="tenant-b"} 0' in text
    assert 'coupler_gpus_allocated{model="A100-SXM4-40GB"} 2' in text
    assert 'coupler_gpus_free{model="A100-SXM4-40GB"} 14' in text
    assert 'coupler_dominant_share{tenant="tenant-a"}' in text
    assert 'coupler_jobs{state="running"} 1' in text
    assert 'coupler_submit_to_running_seconds_count 1' in text
    assert 'coupler_submit_to_running_seconds_bucket{le="+Inf"} 1' in text
    assert 'coupler_hosts{state="ready"} 4' in text
    for line in text.splitlines():
        assert line.startswith("#") or len(line.rsplit(" ", 1)) == 2


def test_metrics_can_require_a_bearer_token(client, settings):
    settings.COUPLER_METRICS_TOKEN = "s3cret-scrape-token"
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    ok = client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-scrape-token")
    assert ok.status_code == 200
    assert b"coupler_jobs" in ok.content


def test_scrapes_within_a_few_seconds_share_one_computation(client, cluster, submit,
                                                            admin_user):
    from django.core.cache import cache

    from console.metrics import METRICS_CACHE_KEY

    client.force_login(admin_user)
    first = client.get("/metrics").content.decode()
    assert "coupler_metrics_computed_timestamp_seconds " in first
    assert 'coupler_jobs{state="running"} 0' in first
    submit(gpus_per_host=1)
    assert client.get("/metrics").content.decode() == first  # the same text, timestamp too
    cache.delete(METRICS_CACHE_KEY)  # as when it expires
    assert 'coupler_jobs{state="running"} 1' in client.get("/metrics").content.decode()
