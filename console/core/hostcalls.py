"""The one seam between console tasks and host agents: Celery messages by name.

A command goes to the host's own queue ``host.<name>`` as a task named
``hostagent.<verb>`` (the agent registers those names on its own Celery app;
the console never imports the agent's drivers). The agent answers by sending
``console.core.tasks.workflow.host_result`` to the ``workflow`` queue with the
outcome and the ``context`` it was given (job id, generation, operation), so no
worker blocks waiting for a host and a lost answer is repaired by the
reconciler from database state.

Over the broker a command travels as one signed envelope
(``console.core.signed_messages``): the agent checks it came from the console,
for that host, and is neither expired nor replayed.

In eager mode (logic tests, the screenshots, the load test's in-process mode)
there is no broker: the command crosses the same typed boundary through an
in-process transport. It is encoded as its protocol type and handed to the
local agent the process was wired with (``install_local_agent``; the demo
package wires the agent's own handlers, ``coupler_demo.simhosts``), and its
answer is decoded as its declared type (``hostagent.protocol.RESULTS``) and
applied at once by the handler the answer task registered
(``answer_handler``). The console imports nothing of the agent here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from console.celery import app
from console.core.signed_messages import NoKey, seal_command
from coupler_common.naming import host_queue
from hostagent.protocol import COMMANDS, PROTOCOL_VERSION, RESULTS, decode, encode

log = logging.getLogger(__name__)

RESULT_TASK = "console.core.tasks.workflow.host_result"
RESULT_QUEUE = "workflow"

# (task name, command in wire form) -> the agent's answer in wire form.
LocalAgent = Callable[[str, dict[str, Any]], dict[str, Any]]
AnswerHandler = Callable[[dict[str, Any], dict[str, Any]], Any]

_local_agent: LocalAgent | None = None
# Answer task name -> the function that applies a verified (payload, context).
_answer_handlers: dict[str, AnswerHandler] = {}


def install_local_agent(agent: LocalAgent | None) -> LocalAgent | None:
    """Make ``agent`` the host side of eager mode (None: none); returns the previous one."""
    global _local_agent
    previous, _local_agent = _local_agent, agent
    return previous


def answer_handler(task_name: str) -> Callable[[AnswerHandler], AnswerHandler]:
    """Register the function that applies the answers sent to ``task_name`` (the
    task itself opens the signed envelope first, then calls the same function)."""

    def register(handler: AnswerHandler) -> AnswerHandler:
        _answer_handlers[task_name] = handler
        return handler

    return register


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
        _send_in_process(task_name, encode(command), context, result_task)
        return
    try:
        envelope = seal_command(host_name, task_name, command)
    except NoKey as exc:  # the reconciler re-sends once the host has registered
        log.error("%s not sent: %s", task_name, exc)
        return
    app.send_task(task_name, kwargs={"signed": envelope}, queue=host_queue(host_name))


def _send_in_process(task_name: str, wire: dict[str, Any], context: dict[str, Any] | None,
                     result_task: str) -> None:
    if _local_agent is None:
        raise ImproperlyConfigured(
            "eager mode has no in-process agent: call "
            "coupler_demo.simhosts.install_in_process_agent(), or run agents over a broker")
    answer = decode(RESULTS[task_name], _local_agent(task_name, wire))
    if context is not None:
        _answer_handlers[result_task](encode(answer), context)
