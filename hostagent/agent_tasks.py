"""The host agent's Celery tasks, on the agent's own Celery app.

Each task gets fully specified inputs (the host's name and a ProvisionSpec or a
domain name), acts through ``hostagent.runtime`` and returns a plain dict.
When the console passed ``report_to`` (``{"task", "queue", "context"}``) the
agent also sends the outcome there as ``task(payload, context)``: that is how
the console learns of results without a worker blocking on a host.

Broker: ``COUPLER_BROKER_URL`` (or ``REDIS_URL``); without either, kombu's
filesystem transport in ``COUPLER_BROKER_DIR`` (``var/broker``), the same
folders as the console's default. Late acks: a task of a crashed agent is
redelivered, and every action is idempotent.
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery

from hostagent import runtime, transport


def _broker_config() -> dict[str, Any]:
    url = os.environ.get("COUPLER_BROKER_URL") or os.environ.get("REDIS_URL") or ""
    if url:
        return {"broker_url": url,
                "broker_transport_options": {"visibility_timeout": 600}}
    options = transport.filesystem_broker_options(
        os.environ.get("COUPLER_BROKER_DIR", "var/broker"))
    transport.ensure_folders(options)
    return {"broker_url": transport.BROKER_URL, "broker_transport_options": options}


# Not the current app: in a console process (eager tests) shared tasks stay on the console app.
app = Celery("coupler-hostagent", set_as_current=False)
app.conf.update(
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_ignore_result=True,
    broker_connection_retry_on_startup=True,
    **_broker_config(),
)


def report(report_to: dict[str, Any] | None, payload: dict[str, Any]) -> None:
    if not report_to:
        return
    app.send_task(report_to["task"], args=[payload, report_to.get("context") or {}],
                  queue=report_to.get("queue") or "workflow")


@app.task(name="hostagent.provision")
def provision(host: str, spec: dict[str, Any], report_to: dict | None = None) -> dict[str, Any]:
    result = runtime.provision(host, spec)
    report(report_to, result)
    return result


@app.task(name="hostagent.teardown")
def teardown(host: str, name: str, job_id: str = "",
             report_to: dict | None = None) -> dict[str, Any]:
    result = runtime.teardown(host, name, job_id)
    report(report_to, result)
    return result


@app.task(name="hostagent.list_domains")
def list_domains(host: str, report_to: dict | None = None,
                 with_xml: bool = False) -> dict[str, Any]:
    domains: list[dict[str, Any]] = list(runtime.list_domains(host))
    if with_xml:  # what libvirt really holds, e.g. to compare with the plan
        for d in domains:
            d["xml"] = runtime.domain_xml(host, d["name"])
    result = {"host": host, "ok": True, "domains": domains}
    report(report_to, result)
    return result


@app.task(name="hostagent.run_checks")
def run_checks(host: str, root: str | None = None, baseline: dict[str, str] | None = None,
               peers: list[str] | None = None, report_to: dict | None = None) -> dict[str, Any]:
    result = {"host": host, "ok": True,
              "checks": runtime.run_checks(host, root=root, baseline=baseline, peers=peers or ())}
    report(report_to, result)
    return result


TASKS = {t.name: t for t in (provision, teardown, list_domains, run_checks)}


def run_inline(task_name: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Run a task in this process, without a broker (the console's eager mode)."""
    return TASKS[task_name].run(**kwargs)
