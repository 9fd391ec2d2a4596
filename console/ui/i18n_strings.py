"""Strings written outside the console's templates and views (form labels and
help texts in console/ui/forms.py, owned by the validation rules) that the
templates translate at render time (``{% translate field.label %}``). Listed
here so makemessages puts them in the catalogue; a text changed there without
a change here simply shows in English."""

from django.utils.translation import gettext_noop

FORM_TEXTS = (
    gettext_noop("Tenant"), gettext_noop("The tenant whose quota the job uses."),
    gettext_noop("Name"), gettext_noop("Letters, digits, - and _."),
    gettext_noop("GPUs per host"), gettext_noop("Hosts"),
    gettext_noop("More than one makes a gang: all hosts start together or none does."),
    gettext_noop("GPU model"), gettext_noop("GPU share (milli-GPU)"),
    gettext_noop("Leave empty for whole GPUs; 1–999 for a time-sliced share of 1 GPU."),
    gettext_noop("vCPUs per host"), gettext_noop("Memory per host (GiB)"),
    gettext_noop("Priority"), gettext_noop("Orders jobs within your tenant only."),
    gettext_noop("Preemptible"), gettext_noop("Borrowed capacity is only lent to preemptible jobs."),
    gettext_noop("Requires KVM"),
    gettext_noop("Every host of the job runs its VMs under KVM (hardware virtualisation), not "
                 "QEMU's emulation; the job waits for such hosts."),
    gettext_noop("Any model"), gettext_noop("Recorded in the audit log."),
    gettext_noop("Weight"),
    gettext_noop("Fair-share weight: weight 2 is entitled to twice the dominant share of weight 1."),
    gettext_noop("Resource"), gettext_noop("Choose a resource"),
    gettext_noop("Whole GPUs only; empty = any model."), gettext_noop("Guaranteed"),
    gettext_noop("Limit"), gettext_noop("Remove"), gettext_noop("Resolution"),
    gettext_noop("What was found and done; recorded in the audit log."),
    gettext_noop("Return the GPU to service (uncordon it)"),
    gettext_noop("Return the host to service (uncordon it)"),
)
