"""Console forms. Validation that needs the database (inventory, quotas) is
the actions' own (``validate_job``, ``do_set_quota``); the forms add field
shapes and show those errors next to their fields."""

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError

from console.core.admission import (
    GPU_MODEL_MAX,
    IMAGE_NAME_MAX,
    JOB_FLAGS,
    JOB_NAME_MAX,
    JOB_NUMBERS,
    REQUIRED_MESSAGE,
    known_gpu_models,
    validate_job_name,
)
from console.core.choices import QuotaResource
from console.core.models import Image, Tenant


def add_action_errors(form: forms.Form, error: ValidationError) -> None:
    """Attach an action's ValidationError to the form's fields (unknown keys
    become form-wide errors)."""
    if hasattr(error, "error_dict"):
        for field, errors in error.error_dict.items():
            target = field if field in form.fields else NON_FIELD_ERRORS
            for e in errors:
                form.add_error(None if target == NON_FIELD_ERRORS else target, e)
    else:
        form.add_error(None, error)


def _flag(field: str) -> forms.BooleanField:
    rule = JOB_FLAGS[field]
    return forms.BooleanField(label=rule.label, required=False, initial=rule.default,
                              help_text=rule.help)


def _number(field: str, initial: int | None = None) -> forms.IntegerField:
    rule = JOB_NUMBERS[field]
    return forms.IntegerField(label=rule.label, min_value=rule.low, max_value=rule.high,
                              required=rule.required, initial=initial, help_text=rule.help,
                              error_messages=rule.messages())


class JobSubmitForm(forms.Form):
    tenant = forms.ModelChoiceField(
        queryset=Tenant.objects.none(), to_field_name="slug", empty_label=None,
        help_text="The tenant whose quota the job uses.",
    )
    # Every job field's rule is console.core.admission's (the API serializer reads the same).
    name = forms.CharField(
        strip=False, validators=[validate_job_name], error_messages={"required": REQUIRED_MESSAGE},
        widget=forms.TextInput(attrs={"maxlength": JOB_NAME_MAX}),
        help_text="Letters (any script), digits, _ . and -.",
    )
    gpus_per_host = _number("gpus_per_host", initial=1)
    hosts = _number("hosts", initial=1)
    # Any text: an unknown model gets the admission rule's message, as from the API.
    gpu_model = forms.CharField(label="GPU model", required=False, max_length=GPU_MODEL_MAX,
                                widget=forms.Select())
    gpu_milli = _number("gpu_milli")
    vcpus_per_host = _number("vcpus_per_host", initial=8)
    memory_gib_per_host = _number("memory_gib_per_host", initial=64)
    priority = _number("priority", initial=0)
    preemptible = forms.BooleanField(
        required=False, initial=True,
        help_text="Borrowed capacity is only lent to preemptible jobs.",
    )

    # Any text: an unknown image gets the catalogue rule's message, as from the API.
    image = forms.CharField(label="Boot image", required=False, max_length=IMAGE_NAME_MAX,
                            widget=forms.Select(),
                            help_text="Empty: the cluster's default image.")
    require_kvm = _flag("require_kvm")

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["tenant"].queryset = Tenant.objects.for_user(user)
        self.fields["image"].widget.choices = [("", "Default")] + [
            (n, n) for n in Image.objects.order_by("name").values_list("name", flat=True).distinct()
        ]
        self.fields["gpu_model"].widget.choices = [("", "Any model")] + [
            (m, m) for m in known_gpu_models()
        ]

    def spec(self) -> dict:
        data = self.cleaned_data
        return {
            "name": data["name"],
            "gpus_per_host": data["gpus_per_host"],
            "host_count": data.get("hosts") or JOB_NUMBERS["hosts"].default,
            "gpu_model": data.get("gpu_model") or "",
            "gpu_milli": data.get("gpu_milli"),
            "vcpus_per_host": data["vcpus_per_host"],
            "memory_gib_per_host": data["memory_gib_per_host"],
            "priority": data.get("priority") or 0,
            "preemptible": data.get("preemptible", False),
            "image": data.get("image") or "",
            "require_kvm": data.get("require_kvm", False),
        }


class ConfirmForm(forms.Form):
    reason = forms.CharField(
        max_length=500, required=False, widget=forms.TextInput(attrs={"size": 60}),
        help_text="Recorded in the audit log.",
    )


class ReasonRequiredForm(forms.Form):
    reason = forms.CharField(max_length=500, widget=forms.TextInput(attrs={"size": 60}),
                             help_text="Recorded in the audit log.")


class TenantForm(forms.Form):
    name = forms.CharField(max_length=100)
    weight = forms.DecimalField(
        min_value=0.001, max_digits=8, decimal_places=3,
        help_text="Fair-share weight: weight 2 is entitled to twice the dominant share of weight 1.",
    )


class QuotaForm(forms.Form):
    """One quota row of the tenant edit page (a formset of these)."""

    # The blank choice keeps the formset's empty "add a quota" row unchanged.
    resource = forms.ChoiceField(choices=[("", "Choose a resource"), *QuotaResource.choices])
    gpu_model = forms.CharField(max_length=100, required=False, label="GPU model",
                                help_text="Whole GPUs only; empty = any model.")
    guaranteed = forms.IntegerField(min_value=0)
    limit = forms.IntegerField(min_value=0)
    delete = forms.BooleanField(required=False, label="Remove")

    def clean(self):
        data = super().clean()
        guaranteed, limit = data.get("guaranteed"), data.get("limit")
        if guaranteed is not None and limit is not None and guaranteed > limit:
            self.add_error("guaranteed", "Guaranteed cannot exceed the limit.")
        model = (data.get("gpu_model") or "").strip()
        data["gpu_model"] = model
        if model and data.get("resource") != QuotaResource.GPUS:
            self.add_error("gpu_model", "Only whole-GPU quotas name a GPU model.")
        elif model and model not in known_gpu_models():
            known = ", ".join(known_gpu_models()) or "none registered"
            self.add_error("gpu_model", f"Unknown GPU model {model!r}. Known models: {known}.")
        return data


class BaseQuotaFormSet(forms.BaseFormSet):
    def clean(self):
        if any(self.errors):
            return
        seen = set()
        for form in self.forms:
            if not form.has_changed() and not form.initial:
                continue
            data = form.cleaned_data
            if not data or data.get("delete"):
                continue
            key = (data["resource"], data["gpu_model"])
            if key in seen:
                form.add_error("resource", "This resource appears twice.")
            seen.add(key)


QuotaFormSet = forms.formset_factory(QuotaForm, formset=BaseQuotaFormSet, extra=1)


class ResolveIncidentForm(forms.Form):
    resolution = forms.CharField(
        max_length=1000, widget=forms.Textarea(attrs={"rows": 3}),
        help_text="What was found and done; recorded in the audit log.",
    )
    release_gpu = forms.BooleanField(required=False, initial=True,
                                     label="Return the GPU to service (uncordon it)")
    uncordon_host = forms.BooleanField(required=False, initial=False,
                                       label="Return the host to service (uncordon it)")
