"""docs/protocol.md, written from the declared types (``python -m hostagent.protocol doc``).

A test compares the file with ``render()``: change a message, then rerun
``python -m hostagent.protocol doc --write docs/protocol.md``.
"""

from __future__ import annotations

import inspect
import types
import typing
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from hostagent.protocol import messages, spec
from hostagent.protocol.wire import (
    NEWEST_ACCEPTED,
    OLDEST_ACCEPTED,
    PROTOCOL_VERSION,
    Message,
    Part,
)

SECTIONS: list[tuple[str, str, list[type[Part]]]] = [
    ("Console → agent (broker, signed)", "Commands: a key unknown at the sender's version is "
     "refused.", [messages.ProvisionCommand, messages.TeardownCommand,
                  messages.ListDomainsCommand, messages.RunChecksCommand, messages.ReportTo]),
    ("The provision spec", "Parts of `ProvisionCommand`; strict like the commands.",
     [spec.ProvisionSpec, spec.CgroupSettings, spec.IoLimit, spec.GpuShare, spec.NumaCell,
      spec.ImageSpec]),
    ("Agent → console (broker, signed)", "The envelope's body is `{\"payload\": <answer>, "
     "\"context\": <the command's report_to.context>}`.",
     [messages.ProvisionResult, messages.TeardownResult, messages.DomainsResult,
      messages.DomainReport, messages.GuestReport, messages.ChecksResult, messages.JobContext,
      messages.ChecksContext]),
    ("Agent → console (REST, host token)", "`POST /api/v1/agent/hosts/<name>/register/` and "
     "`…/heartbeat/`; the console answers `ConsoleAnswer`.",
     [messages.Registration, messages.Inventory, messages.InventoryGpu,
      messages.InventoryNumaNode, messages.InventoryNic, messages.InventoryLink,
      messages.Heartbeat, messages.DomainEnd, messages.XidEvent, messages.CheckResult,
      messages.ConsoleAnswer]),
]


def _type(tp: Any) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Annotated:
        if args[0] is datetime:
            return "time (ISO 8601 with zone)"
        return _type(args[0])
    if tp is type(None):
        return "null"
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        return f"[{tp.__name__}](#{tp.__name__.lower()})"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type(a) for a in args)
    if origin is tuple:
        return f"list of {_type(args[0])}"
    if origin is dict:
        return f"object of {_type(args[0])} → {_type(args[1])}"
    if origin is Literal:
        return " or ".join(f"`{a!r}`".replace("'", '"') for a in args)
    names = {str: "string", int: "integer", float: "number", bool: "boolean", Any: "any"}
    return names.get(tp, getattr(tp, "__name__", str(tp)))


def _default(field: msgspec.inspect.Field) -> str:
    if field.required:
        return "required"
    value = field.default
    if value is msgspec.NODEFAULT:
        value = field.default_factory()
    if isinstance(value, msgspec.Struct):
        return "defaults"
    if value is None:
        return "null"
    return f"`{msgspec.json.encode(value).decode()}`"


def _struct(cls: type[Part]) -> list[str]:
    hints = typing.get_type_hints(cls, include_extras=True)
    doc = inspect.cleandoc(cls.__doc__ or "").split("\n\n")[0].replace("\n", " ")
    kind = "message" if issubclass(cls, Message) else "part"
    lines = [f"### {cls.__name__}", "", f"*{kind}* — {doc}" if doc else f"*{kind}*", "",
             "| field | type | default |", "|---|---|---|"]
    for field in msgspec.inspect.type_info(cls).fields:
        default = ("this side's version" if field.name == "version" and issubclass(cls, Message)
                   else _default(field))
        lines.append(f"| `{field.encode_name}` | {_type(hints[field.name])} | {default} |")
    return [*lines, ""]


def render() -> str:
    out = [
        "# Wire protocol",
        "",
        "<!-- Written by `python -m hostagent.protocol doc --write docs/protocol.md` from",
        "     hostagent/protocol/; tests/hostagent/test_protocol_doc.py keeps it current. -->",
        "",
        f"Protocol version **{PROTOCOL_VERSION}**. Every message between the console and the "
        "host agents is a declared `msgspec.Struct` (`hostagent.protocol`), decoded and "
        "validated on arrival by `decode(Type, data)`: a malformed message is refused "
        "(`SpecError` naming the field, logged) before anything is applied.",
        "",
        "**Versions.** Each *message* carries `version`, the protocol version of the side "
        "that wrote it (absent: 1, the untyped dictionaries before version 2). A side "
        f"accepts versions {OLDEST_ACCEPTED} to {NEWEST_ACCEPTED} (one apart) and refuses "
        "others with the reason. An older message lacks fields added since: they take "
        "their defaults; a newer one may carry fields this side does not know: they are "
        "ignored — except in a command at this side's version or older, where an unknown "
        "key is a typo and refused. Each side writes for its peer's version "
        "(`encode(msg, version)`): the console for the version the host's agent last "
        "registered or heartbeat with (`Host.facts[\"protocol_version\"]`), the agent for "
        "the version of the command it answers or of the console's last REST answer.",
        "",
        "**Version 1 → 2.** `JobContext.generation` was `attempt`; `Heartbeat.sent_at` was "
        "Unix time; version 1 knew no `version` key. Both are converted on decode and "
        "written back for a version 1 peer.",
        "",
        "**Times** are ISO 8601 with a zone (`2026-12-07T21:00:00.25Z`); a time without a "
        "zone is refused. (`XidEvent.timestamp` is evidence: the kernel-log line's own time "
        "as written.)",
        "",
        "**Transport.** Broker messages travel inside the signed envelope "
        "(`hostagent.protocol.signing`): the envelope's `body` is the message's JSON.",
        "",
    ]
    for title, text, types_ in SECTIONS:
        out += [f"## {title}", "", text, ""]
        for cls in types_:
            out += _struct(cls)
    return "\n".join(out).rstrip() + "\n"
