"""``manage.py loadtest --live``: the REST-API load test against a live server.

pytest-django's ``live_server`` serves the console in a thread; Celery is eager
(tests/conftest.py), so each submit runs the scheduling cycle and the agent's
own provisioning code in-process (console/core/hostcalls.py) and the job is
RUNNING when the POST answers. The command only talks HTTP, with the demo
tenants' tokens read from a credentials file like ``make demo`` writes.
One request at a time (``--concurrency 1``): the test database is SQLite in
memory, shared between threads by table locks, and two eager workflows
writing at once get "database table is locked".
"""

import io
import json

import pytest
from django.core.management import call_command


@pytest.fixture
def demo_credentials(transactional_db, settings, tmp_path):
    from coupler_demo.seed import seed_demo

    settings.VAR_DIR = tmp_path
    seed_demo()
    return tmp_path / "demo-credentials.json"


def test_live_loadtest_reaches_running_and_cancelled(live_server, demo_credentials):
    from console.core.models import Job

    out = io.StringIO()
    call_command("loadtest", "--live", live_server.url, "--credentials", str(demo_credentials),
                 "--jobs", "6", "--concurrency", "1", "--timeout", "30", "--poll", "0.05",
                 "--json", stdout=out)
    result = json.loads(out.getvalue())

    for key in ("mode", "url", "jobs", "submitted", "reached_running", "never_running",
                "jobs_per_s", "first_submit_to_last_running_s", "submit_to_running", "phases",
                "cancelled", "cancel_to_cancelled", "not_cancelled", "kinds", "tenants",
                "wall_s"):
        assert key in result, key
    for key in ("count", "p50_s", "p99_s", "mean_s", "max_s"):
        assert key in result["submit_to_running"]
        assert key in result["cancel_to_cancelled"]
    assert result["mode"] == "live"
    assert result["url"] == live_server.url
    assert result["submitted"] == 6 and result["refused"] == []
    assert result["reached_running"] == 6 and result["never_running"] == []
    assert result["submit_to_running"]["count"] == 6
    assert result["cancelled"] == 6 and result["not_cancelled"] == []
    assert result["cancel_to_cancelled"]["count"] == 6
    assert result["jobs_per_s"] > 0
    # Spread over the three demo tenants, whole GPUs first.
    assert result["tenants"] == {"aurora": 2, "borealis": 2, "cirrus": 2}
    assert result["kinds"]["gpu"] >= 3

    jobs = Job.objects.filter(name__startswith=result["tag"])
    assert jobs.count() == 6
    assert {job.state for job in jobs} == {"cancelled"}
    assert all(job.running_at is not None for job in jobs)
    assert {job.tenant.slug for job in jobs} == {"aurora", "borealis", "cirrus"}


def test_live_loadtest_human_summary(live_server, demo_credentials):
    out = io.StringIO()
    call_command("loadtest", "--live", live_server.url, "--credentials", str(demo_credentials),
                 "--jobs", "3", "--concurrency", "1", "--poll", "0.05", stdout=out)
    text = out.getvalue()
    assert "3 reached RUNNING" in text
    assert "3 CANCELLED" in text
    assert "submit→running p50" in text


def test_plan_fits_the_tenants_quotas():
    from coupler_demo.management.commands.loadtest import plan_jobs

    budgets = {"a": {"gpus": 2, "gpu_milli": 200, "vcpus": 100, "memory_gib": 1000},
               "b": {}}
    bodies = plan_jobs(10, budgets, cluster_gpus=80, tag="t")
    a = [b for b in bodies if b["tenant"] == "a"]
    assert len(a) == 5 and len([b for b in bodies if b["tenant"] == "b"]) == 5
    assert sum(1 for b in a if b["kind"] == "gpu") == 2
    assert sum(1 for b in a if b["kind"] == "share") == 2
    assert all(b["gpu_milli"] == 100 for b in bodies if b["kind"] == "share")
    assert len({b["name"] for b in bodies}) == 10
