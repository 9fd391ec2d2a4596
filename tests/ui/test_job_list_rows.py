"""The job list's rows are written in Python (console.ui.jobs.job_rows) and a
job's shape by the ``job_shape`` filter, not by a template per row: both must
write what the templates they replace wrote, cell for cell, escaped the same
way, in English and in Chinese."""

import re

import pytest
from django.template import engines
from django.utils import timezone, translation

from console.core.choices import JobState
from console.core.models import Job
from console.ui.jobs import ROW_FIELDS, job_rows

# The templates as they were before the rows moved to Python.
SHAPE_BEFORE = (
    '{% load i18n %}{% if job.gpu_milli %}{{ job.gpu_milli|permille }}{% else %}'
    '{% blocktranslate count n=job.gpus_per_host %}{{ n }} GPU{% plural %}{{ n }} GPUs'
    '{% endblocktranslate %}{% endif %}{% if job.gpu_model %} {{ job.gpu_model }}{% endif %}'
    '{% if job.host_count > 1 %} × {% blocktranslate with n=job.host_count %}{{ n }} hosts '
    '(gang){% endblocktranslate %}{% endif %} · {{ job.vcpus_per_host }} vCPU · '
    '{{ job.memory_gib_per_host }} GiB{% if job.host_count > 1 %} {% translate "per host" %}'
    '{% endif %}')
ROW_BEFORE = (
    '{% for job in jobs %}<tr>'
    '<td>{% if job.state not in terminal_states %}<input type="checkbox" name="job" '
    'value="{{ job.pk }}" aria-label="{% blocktranslate with name=job.name %}Select {{ name }}'
    '{% endblocktranslate %}">{% endif %}</td>'
    '<td>{{ job.pk }}</td><td><a href="{% url \'job-detail\' job.pk %}">{{ job.name }}</a></td>'
    '<td>{{ job.tenant.name }}</td>'
    '<td><span class="badge {{ job.state_colour }}">{{ job.get_state_display }}</span></td>'
    '<td>' + SHAPE_BEFORE + '</td><td class="num">{{ job.priority }}</td>'
    '<td>{{ job.submitted_at|when }}</td>'
    '<td class="muted">{% if job.state == "queued" or job.state == "preempted" %}'
    '{{ job.pending_reason|truncatechars:90 }}{% endif %}</td></tr>{% endfor %}')

SHAPES = [
    {"gpus_per_host": 1},
    {"gpus_per_host": 2, "gpu_model": "A100-SXM4-40GB"},
    {"gpus_per_host": 1, "gpu_milli": 250},
    {"gpus_per_host": 8, "host_count": 4, "gpu_model": "H100 <b>&\"x\""},
    {"gpus_per_host": 0, "vcpus_per_host": 2, "memory_gib_per_host": 4},
]


def _flat(html: str) -> str:
    return re.sub(r">\s+<", "><", str(html)).strip()


@pytest.fixture
def jobs(tenant_a, member_a):
    from django.contrib.auth import get_user_model

    states = [JobState.QUEUED, JobState.RUNNING, JobState.SUCCEEDED, JobState.PREEMPTED,
              JobState.FAILED]
    made = []
    for i, (shape, state) in enumerate(zip(SHAPES, states, strict=True)):
        values = {"vcpus_per_host": 8, "memory_gib_per_host": 64, **shape}
        made.append(Job.objects.create(
            tenant=tenant_a, submitter=member_a, name=f"j{i}-<script>", state=state,
            priority=-5 + i * 600, pending_reason="waits " + "é&<" * 40, **values))
    Job.objects.filter(pk=made[2].pk).update(
        submitted_at=timezone.now() - timezone.timedelta(days=40, hours=3))
    assert get_user_model().objects.count() >= 1
    return made


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_the_rows_are_what_the_row_template_wrote(jobs, language):
    from console.core.choices import TERMINAL_JOB_STATES

    ordered = Job.objects.select_related("tenant").order_by("-submitted_at", "-id")
    with translation.override(language), timezone.override("Asia/Shanghai"):
        before = engines["django"].from_string(ROW_BEFORE).render(
            {"jobs": ordered, "terminal_states": TERMINAL_JOB_STATES})
        after = job_rows(ordered.values(*ROW_FIELDS))
    assert _flat(after).replace("\n", "") == _flat(before)
    assert "&lt;script&gt;" in after and "<script>" not in after


@pytest.mark.parametrize("language", ["en", "zh-hans"])
@pytest.mark.parametrize("shape", SHAPES)
def test_the_job_shape_filter_writes_what_the_partial_wrote(tenant_a, shape, language):
    job = Job(tenant=tenant_a, name="x", **{"vcpus_per_host": 8, "memory_gib_per_host": 64, **shape})
    with translation.override(language):
        before = engines["django"].from_string(SHAPE_BEFORE).render({"job": job})
        after = engines["django"].from_string(
            '{% include "partials/job_shape.html" %}').render({"job": job})
    assert after.strip() == before.strip()


def test_the_list_page_shows_the_rows_in_chinese(login, member_a, jobs):
    from console.core.models import UserPreference

    UserPreference.objects.create(user=member_a, language="zh-hans")
    html = login(member_a).get("/jobs/").content.decode()
    with translation.override("zh-hans"):
        assert str(JobState.RUNNING.label) in html
        assert translation.gettext("Select %(name)s") % {"name": "j0-&lt;script&gt;"} in html
