"""Template filters for values people read: times in their zone with a
relative form, numbers without float noise, structured facts as lists.
Registered as the ``coupler`` library in settings.TEMPLATES."""

import datetime
from decimal import Decimal

from django import template
from django.contrib.humanize.templatetags.humanize import naturaltime
from django.template.defaultfilters import floatformat
from django.utils import formats, timezone
from django.utils.html import escape, format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

register = template.Library()


@register.filter
def when(value):
    """<time> with a relative text ("3 minutes ago") and the absolute time,
    in the user's zone, on hover."""
    if not isinstance(value, datetime.datetime):
        return "—" if value in (None, "") else value
    local = timezone.localtime(value) if timezone.is_aware(value) else value
    # strftime writes "Y-m-d H:i:s" as date_format does, for a fraction of its cost
    # (a list page writes one per row).
    absolute = f"{local.strftime('%Y-%m-%d %H:%M:%S')} {local.tzname() or ''}".strip()
    return mark_safe(  # noqa: S308 - every part is escaped
        f'<time datetime="{value.isoformat()}" title="{escape(absolute)}">'
        f"{escape(naturaltime(value))}</time>")


@register.filter
def clock(value):
    """H:i:s in the user's zone, the full time on hover (timelines)."""
    if not isinstance(value, datetime.datetime):
        return ""
    local = timezone.localtime(value) if timezone.is_aware(value) else value
    return format_html('<time datetime="{}" title="{}">{}</time>', value.isoformat(),
                       f"{formats.date_format(local, 'Y-m-d H:i:s')} {local.tzname() or ''}",
                       formats.time_format(local, "H:i:s"))


@register.filter
def num(value, places=1):
    """24.0 → "24", 16.54 → "16.5", 0.500 → "0.5", 12000 → "12,000" (localised)."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return value
    if isinstance(value, float | Decimal) and float(value).is_integer():
        value = int(value)
    if isinstance(value, int):
        return formats.number_format(value, use_l10n=True, force_grouping=True)
    # At most ``places`` decimals, and no trailing zeros (0.5, not 0.500).
    rounded = Decimal(str(round(float(value), int(places)))).normalize()
    decimals = max(-rounded.as_tuple().exponent, 0)
    if not decimals:
        return formats.number_format(int(rounded), use_l10n=True, force_grouping=True)
    return floatformat(value, f"{decimals}g")


@register.filter
def percent(value, places=1):
    """0.206 → "20.6 %"."""
    if value is None or value == "":
        return "—"
    return f"{num(float(value) * 100, places)} %"


@register.filter
def permille(milli):
    """A GPU share: 500 → "0.5 GPU"."""
    if milli in (None, ""):
        return "—"
    return _("%(gpus)s GPU") % {"gpus": num(int(milli) / 1000, 3)}


@register.filter
def label(key):
    """A key of reported data as a label: "board_name" → "board name"; a path
    ("/sys/kernel/mm/transparent_hugepage/enabled") stays as it is."""
    key = str(key)
    return key if "/" in key else key.replace("_", " ")


@register.filter
def pretty(value):
    """Structured facts for people: a dict as a definition list, a list as
    items, scalars as text (no Python reprs)."""
    if isinstance(value, dict):
        if not value:
            return "—"
        return format_html(
            '<dl class="facts compact">{}</dl>',
            format_html_join("", "<dt>{}</dt><dd>{}</dd>",
                             ((label(k), pretty(v)) for k, v in value.items())),
        )
    if isinstance(value, list | tuple):
        if not value:
            return "—"
        if all(isinstance(v, int | float | str) and not isinstance(v, bool) for v in value) \
                and all(isinstance(v, int) for v in value) and len(value) > 4:
            from coupler_common.cpulist import format_cpulist

            return format_cpulist(value)
        if all(not isinstance(v, dict | list | tuple) for v in value):
            return ", ".join(str(pretty(v)) for v in value)
        return format_html("<ul>{}</ul>", format_html_join("", "<li>{}</li>",
                                                            ((pretty(v),) for v in value)))
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, float | Decimal):
        return num(value, 2)
    if value is None:
        return "—"
    return mark_safe(format_html("{}", value))  # noqa: S308 - escaped by format_html


@register.simple_tag(takes_context=True)
def sortable_th(context, field, label, css=""):
    """A column header that sorts the list by ``field`` (again: the other way),
    keeping the filters in the URL so a sorted, filtered view can be bookmarked."""
    request = context["request"]
    query = request.GET.copy()
    current = query.get("ordering", "")
    descending = current == f"-{field}"
    active = current in (field, f"-{field}")
    query["ordering"] = field if descending or not active else f"-{field}"
    query.pop("page", None)
    aria = ""
    if active:
        aria = ' aria-sort="descending"' if descending else ' aria-sort="ascending"'
    return format_html('<th scope="col" class="{}"{}><a class="sort" href="?{}">{}</a></th>',
                       css, mark_safe(aria), query.urlencode(), label)  # noqa: S308 - fixed text


@register.filter
def job_state(value):
    """A job state's label ("running" → "Running", "运行中")."""
    from console.core.choices import JobState

    try:
        return JobState(value).label
    except ValueError:
        return value or "—"


@register.filter
def resource_label(figures):
    """The row label of a ``console.core.usage.Figures``: its GPU model, or the
    resource's name."""
    if getattr(figures, "model", ""):
        return figures.model
    return {"gpus": _("GPUs (all models)"), "vcpus": _("vCPUs"),
            "memory_gib": _("Memory (GiB)")}.get(figures.resource, figures.resource)


@register.filter
def job_shape(job):
    """What a job asks for: "2 GPUs A100 × 4 hosts (gang) · 16 vCPU · 64 GiB per host"
    (``partials/job_shape.html``, and each row of the job list)."""
    if job.gpu_milli:
        text = escape(permille(job.gpu_milli))
    else:
        n = job.gpus_per_host
        text = ngettext("%(n)s GPU", "%(n)s GPUs", n) % {"n": n}
    if job.gpu_model:
        text += " " + escape(job.gpu_model)
    gang = job.host_count > 1
    if gang:
        text += " × " + _("%(n)s hosts (gang)") % {"n": job.host_count}
    text += f" · {job.vcpus_per_host} vCPU · {job.memory_gib_per_host} GiB"
    if gang:
        text += " " + _("per host")
    return mark_safe(text)  # noqa: S308 - the model name is escaped, the rest is our text
