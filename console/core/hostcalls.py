"""The one seam between console tasks and host agents: Celery messages by name.

A command goes to the host's own queue ``host.<name>`` as a task named
``hostagent.<verb>`` (the agent registers those names on its own Celery app;
the console never imports the agent's drivers). The agent answers by sending
``console.core.tasks.workflow.host_result`` to the ``workflow`` queue with the
outcome and the ``context`` it was given (job id, generation, operation), so no
worker blocks waiting for a host and a lost answer is repaired by the
reconciler from database state.

In eager mode (logic tests, the UI's browser test) there is no broker and no
agent process: the agent's task module (``COUPLER_INLINE_AGENT_MODULE``,
imported by name so the import contract holds) runs the command in this
process, against the libvirt URI the agent runtime is configured with
(``test:///default`` unless told otherwise), and its answer is handled at once.

Over the broker a command travels as one signed envelope
(``console.core.signed_messages``): the agent checks it came from the console,
for that host, and is neither expired nor replayed.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

from django.conf import settings

from console.celery import app
from console.core.signed_messages import NoKey, seal_command
from coupler_common.naming import host_queue
from hostagent.protocol import COMMANDS, PROTOCOL_VERSION, decode, encode

log = logging.getLogger(__name__)

RESULT_TASK = "console.core.tasks.workflow.host_result"
RESULT_QUEUE = "workflow"
# Answer task -> the function it applies a verified (payload, context) with.
EAGER_HANDLERS = {
    RESULT_TASK: "console.core.tasks.workflow:handle_host_result",
    "console.core.tasks.hosts.host_checks_result": "console.core.tasks.hosts:handle_checks_result",
}


def inline_agent_module():
    name = getattr(settings, "COUPLER_INLINE_AGENT_MODULE", "hostagent.agent_tasks")
    return importlib.import_module(name)


def send_host_task(host_name: str, verb: str, kwargs: dict[str, Any],
                   context: dict[str, Any] | None = None, *,
                   result_task: str = RESULT_TASK) -> None:
    """Send ``hostagent.<verb>`` to ``host.<host_name>``; its answer comes back as
    ``<result_task>(payload, context)`` (``host_result`` unless told otherwise; at
    once, in this process, in eager mode).

    The command is built as its declared type (``hostagent.protocol.COMMANDS``)
    and so validated before it leaves; over the broker it is written in the
    protocol version the host's agent speaks (``seal_command``)."""
    task_name = f"hostagent.{verb}"
    fields: dict[str, Any] = {"version": PROTOCOL_VERSION, "host": host_name, **kwargs}
    if context is not None:
        fields["report_to"] = {"task": result_task, "queue": RESULT_QUEUE, "context": context}
    command = decode(COMMANDS[task_name], fields)
    if app.conf.task_always_eager:
        module = inline_agent_module()
        payload = module.run_inline(task_name, encode(command))
        if context is not None:
            # The answer's handler itself: the task would want a signed envelope.
            module, _, handler = EAGER_HANDLERS[result_task].partition(":")
            getattr(importlib.import_module(module), handler)(payload, context)
        return
    try:
        envelope = seal_command(host_name, task_name, command)
    except NoKey as exc:  # the reconciler re-sends once the host has registered
        log.error("%s not sent: %s", task_name, exc)
        return
    app.send_task(task_name, kwargs={"signed": envelope}, queue=host_queue(host_name))
