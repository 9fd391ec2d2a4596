"""One rule, one place: the same submit inputs through the REST API and through the
console's form get the same verdicts and the same messages, field by field.

Both read their field rules from ``console.core.admission`` and their cross-field,
inventory and quota rules from the same action, so a disagreement here (the API
accepting ``llm.v2`` while the form refused it) is a second copy of a rule."""

import pytest

from console.core.admission import JOB_NAME_MESSAGE
from console.core.models import Job


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING = _Missing()  # left out of the API body; an empty field in the form

VALID = {"tenant": "tenant-a", "name": "train-llm", "gpus_per_host": 2, "hosts": 1,
         "gpu_model": "", "vcpus_per_host": 8, "memory_gib_per_host": 64, "priority": 0}

CASES = [
    # (overrides, expected verdict: None = accepted, else the fields refused)
    ({"name": "llm.v2"}, None),
    ({"name": "模型-训练_v2"}, None),  # letters of any script
    ({"name": "Ωmega.run-1"}, None),
    ({"name": "has spaces!"}, {"name"}),
    ({"name": "-leading-dash"}, {"name"}),
    ({"name": "_underscore"}, {"name"}),
    ({"name": "x" * 64}, {"name"}),
    ({"name": "tab\there"}, {"name"}),
    ({"name": MISSING}, {"name"}),
    ({"gpus_per_host": 17}, {"gpus_per_host"}),
    ({"gpus_per_host": -1}, {"gpus_per_host"}),
    ({"gpus_per_host": "many"}, {"gpus_per_host"}),
    ({"gpus_per_host": 12}, {"gpus_per_host"}),  # no host has 12 (inventory rule)
    ({"gpu_milli": 500}, {"gpu_milli"}),  # a share needs exactly 1 GPU
    ({"gpu_milli": 1500, "gpus_per_host": 1}, {"gpu_milli"}),
    ({"gpu_milli": 250, "gpus_per_host": 1}, None),
    ({"gpu_milli": 250, "gpus_per_host": 1, "hosts": 2}, {"hosts"}),
    ({"vcpus_per_host": 0}, {"vcpus_per_host"}),
    ({"vcpus_per_host": 1000}, {"vcpus_per_host"}),  # no host has 1000 cores
    ({"memory_gib_per_host": MISSING}, {"memory_gib_per_host"}),
    ({"memory_gib_per_host": 16385}, {"memory_gib_per_host"}),
    ({"gpu_model": "B200"}, {"gpu_model"}),
    ({"gpu_model": "A100-SXM4-40GB", "gpus_per_host": 0}, {"gpu_model"}),
    ({"hosts": 5, "gpus_per_host": 8}, {"hosts", "gpus_per_host"}),  # and over the limit
    ({"hosts": 513}, {"hosts"}),
    ({"gpus_per_host": 8, "hosts": 2}, {"gpus_per_host"}),  # over the tenant's limit
    ({"priority": 1001}, {"priority"}),
    ({"priority": MISSING}, None),  # default 0 on both
    ({"hosts": MISSING}, None),  # default 1 on both
    ({"require_kvm": True}, None),  # waits for a KVM host; not refused
    ({"image": "no-such-image"}, {"image"}),  # the catalogue's names only
]


def _api_body(overrides):
    body = {**VALID, **overrides, "preemptible": True}
    return {k: v for k, v in body.items() if v is not MISSING}


def _form_body(overrides):
    body = {**VALID, **overrides, "preemptible": "on"}
    return {k: ("" if v is MISSING else v) for k, v in body.items()}


@pytest.mark.parametrize(("overrides", "refused"), CASES,
                         ids=[repr(o)[:40] for o, _ in CASES])
def test_the_api_and_the_form_give_the_same_verdict_and_messages(
        login, member_a, quotas_a, client_for, overrides, refused):
    api = client_for(member_a).post("/api/v1/jobs/", _api_body(overrides), format="json")
    form = login(member_a).post("/jobs/new/", _form_body(overrides))
    if refused is None:
        assert api.status_code == 201, api.json()
        assert form.status_code == 302, form.context["form"].errors
        assert Job.objects.count() == 2
        return
    assert api.status_code == 400
    assert form.status_code == 200
    api_errors = api.json()
    form_errors = {k: list(v) for k, v in form.context["form"].errors.items()}
    assert set(api_errors) == refused, api_errors
    assert form_errors == api_errors
    assert not Job.objects.exists()


def test_the_name_rule_says_what_it_accepts(login, member_a, quotas_a, client_for):
    api = client_for(member_a).post("/api/v1/jobs/", _api_body({"name": "a b"}), format="json")
    assert api.json() == {"name": [JOB_NAME_MESSAGE]}


@pytest.mark.parametrize("value", [True, False])
def test_require_kvm_reaches_the_job_the_same_way(login, member_a, quotas_a, client_for, value):
    api = client_for(member_a).post("/api/v1/jobs/", _api_body({"require_kvm": value}),
                                    format="json")
    assert api.status_code == 201 and api.json()["require_kvm"] is value
    body = _form_body({})
    if value:
        body["require_kvm"] = "on"
    assert login(member_a).post("/jobs/new/", body).status_code == 302
    assert list(Job.objects.order_by("pk").values_list("require_kvm", flat=True)) == [value] * 2
    # Left out of the API body: the rule's default (False), as an unticked box.
    api = client_for(member_a).post("/api/v1/jobs/", _api_body({}), format="json")
    assert api.json()["require_kvm"] is False
