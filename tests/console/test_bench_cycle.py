"""`manage.py bench_cycle`: a fleet registered through the agent's path, a queue over
many tenants, and a timed cycle that places jobs and leaves the database as it was."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from console.core.choices import JobState
from console.core.models import Allocation, Gpu, Host, Job

pytestmark = pytest.mark.django_db(transaction=True)


def test_bench_cycle_places_jobs_and_rolls_back():
    out = StringIO()
    call_command("bench_cycle", hosts=2, jobs=12, tenants=3, repeat=2, json=True, stdout=out)
    figures = json.loads(out.getvalue())
    assert Host.objects.count() == figures["hosts"] == 2
    assert figures["gpus"] == Gpu.objects.count() == 16
    assert figures["queued"] == 12
    assert 0 < figures["placed"] <= 12
    assert figures["queries"] > 0 and figures["peak_python_mib"] > 0
    assert len(figures["runs_cycle_s"]) == 2
    # every run was rolled back: the queue is whole and nothing is allocated
    assert Job.objects.filter(state=JobState.QUEUED).count() == 12
    assert not Allocation.objects.exists()
    assert not Gpu.objects.filter(allocated_milli__gt=0).exists()


def test_bench_cycle_is_idempotent_in_setup():
    call_command("bench_cycle", hosts=1, jobs=3, tenants=2, repeat=1, json=True,
                 stdout=StringIO())
    call_command("bench_cycle", hosts=1, jobs=3, tenants=2, repeat=1, json=True,
                 stdout=StringIO())
    assert Host.objects.count() == 1
    assert Job.objects.filter(state=JobState.QUEUED).count() == 3


def test_bench_cycle_refuses_nonsense():
    with pytest.raises(CommandError, match="--hosts"):
        call_command("bench_cycle", hosts=0, stdout=StringIO())
