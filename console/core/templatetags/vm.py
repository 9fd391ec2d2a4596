from django import template

from console.core.vmreport import vm_report

register = template.Library()


@register.simple_tag
def job_vms(job):
    """``{% job_vms job as vms %}``: console.core.vmreport.vm_report for a template."""
    return vm_report(job)
