"""The one seam between console tasks and host agents: Celery messages by name.

A command goes to the host's own queue ``host.<name>`` as a task named
``hostagent.<verb>`` (the agent registers those names on its own Celery app;
the console never imports the agent's drivers). The agent answers by sending
``console.core.tasks.workflow.host_result`` to the ``workflow`` queue with the
outcome and the ``context`` it was given (job id, attempt, operation), so no
worker blocks waiting for a host and a lost answer is repaired by the
reconciler from database state.

In eager mode (logic tests, the UI's browser test) there is no broker and no
agent process: the agent's task module (``COUPLER_INLINE_AGENT_MODULE``,
imported by name so the import contract holds) runs the command in this
process, against the libvirt URI the agent runtime is configured with
(``test:///default`` unless told otherwise), and its answer is handled at once.
"""

from __future__ import annotations

import importlib
from typing import Any

from django.conf import settings

from console.celery import app

RESULT_TASK = "console.core.tasks.workflow.host_result"
RESULT_QUEUE = "workflow"


def host_queue(host_name: str) -> str:
    return f"host.{host_name}"


def inline_agent_module():
    name = getattr(settings, "COUPLER_INLINE_AGENT_MODULE", "hostagent.agent_tasks")
    return importlib.import_module(name)


def send_host_task(host_name: str, verb: str, kwargs: dict[str, Any],
                   context: dict[str, Any] | None = None, *,
                   result_task: str = RESULT_TASK) -> None:
    """Send ``hostagent.<verb>`` to ``host.<host_name>``; its answer comes back as
    ``<result_task>(payload, context)`` (``host_result`` unless told otherwise; at
    once, in this process, in eager mode)."""
    task_name = f"hostagent.{verb}"
    kwargs = {"host": host_name, **kwargs}
    if app.conf.task_always_eager:
        module = inline_agent_module()
        payload = module.run_inline(task_name, kwargs)
        if context is not None:
            if result_task == RESULT_TASK:
                from console.core.tasks.workflow import handle_host_result

                handle_host_result(payload, context)
            else:
                app.tasks[result_task](payload, context)
        return
    if context is not None:
        kwargs["report_to"] = {"task": result_task, "queue": RESULT_QUEUE, "context": context}
    app.send_task(task_name, kwargs=kwargs, queue=host_queue(host_name))
