"""The wire itself: protocol version, the base of every message, decoding and encoding.

Every message is a frozen ``msgspec.Struct`` deriving from ``Message``: it carries
``version`` (the protocol version of the side that wrote it; absent means 1, the
untyped dictionaries before this package). A side accepts a message at most one
version away from its own (``PROTOCOL_VERSION``) and refuses anything further
with the reason:

- an older message lacks the fields added since: they take their defaults;
- a newer message may carry fields this side does not know: they are ignored;
- a *command* (``strict = True``) at this side's version or older must not carry
  unknown keys at any depth: there every key is known, so one is a typo and is
  refused rather than silently dropped.

``decode(Type, data)`` validates bytes, a JSON string or builtins (what Celery or
DRF already parsed) and raises ``SpecError`` naming the field; ``encode(msg,
version)`` gives the builtins to send to a peer of ``version`` (the console
answers an agent in the agent's version, the agent a console in the console's),
down-converted by each type's ``downgrade`` for version 1.

Timestamps are ISO 8601 with a zone (``Annotated[datetime, Meta(tz=True)]``);
a naive time is refused.
"""

from __future__ import annotations

import json
import typing
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, ClassVar, TypeVar

import msgspec

__all__ = ["OLDEST_ACCEPTED", "PROTOCOL_VERSION", "Message", "Part", "SpecError",
           "Timestamp", "decode", "encode", "peer_version", "refuse_version"]

# 1: the untyped dictionaries (Unix-time ``sent_at``, ``attempt`` in answer contexts).
# 2: declared msgspec types with ``version``; ISO 8601 times; ``generation``.
PROTOCOL_VERSION = 2
OLDEST_ACCEPTED = PROTOCOL_VERSION - 1
NEWEST_ACCEPTED = PROTOCOL_VERSION + 1

Timestamp = Annotated[datetime, msgspec.Meta(tz=True)]


class SpecError(ValueError):
    """A message does not satisfy its schema; the text names the field."""


class Part(msgspec.Struct, frozen=True, kw_only=True):
    """A typed piece of a message (no version of its own)."""

    # A command's parts refuse unknown keys (see ``decode``); a report's ignore them.
    strict: ClassVar[bool] = False

    def to_dict(self) -> dict[str, Any]:
        return msgspec.to_builtins(self)

    @classmethod
    def from_dict(cls, data: object):
        return decode(cls, data)


class Message(Part, frozen=True, kw_only=True):
    """A message between the console and an agent (see the module's text)."""

    version: int = PROTOCOL_VERSION

    @classmethod
    def upgrade(cls, data: dict[str, Any], version: int) -> dict[str, Any]:
        """Builtins of an older ``version`` in this version's shape (renamed keys)."""
        return data

    @classmethod
    def downgrade(cls, data: dict[str, Any], version: int) -> dict[str, Any]:
        """Builtins of this version in the shape a peer of ``version`` reads."""
        return data


T = TypeVar("T", bound=Part)

_decoders: dict[type, msgspec.json.Decoder] = {}


def refuse_version(version: object, what: str) -> int:
    """``version`` if this side speaks it (one version apart at most), else SpecError."""
    if isinstance(version, bool) or not isinstance(version, int):
        raise SpecError(f"{what}: version: expected an integer, got {version!r}")
    if not OLDEST_ACCEPTED <= version <= NEWEST_ACCEPTED:
        raise SpecError(
            f"{what}: protocol version {version} is {abs(version - PROTOCOL_VERSION)} versions "
            f"away from this side's {PROTOCOL_VERSION}: only {OLDEST_ACCEPTED} to "
            f"{NEWEST_ACCEPTED} are accepted (upgrade the older side)")
    return version


def peer_version(value: object) -> int:
    """The protocol version a peer told us (absent or unreadable: 1), within reach."""
    if isinstance(value, bool) or not isinstance(value, int):
        return 1
    return max(OLDEST_ACCEPTED, min(value, PROTOCOL_VERSION))


def _name(cls: type) -> str:
    return cls.__name__


def _struct_type(tp: Any) -> list[type]:
    """The Struct classes inside an annotation (``X``, ``X | None``, ``tuple[X, ...]``,
    ``dict[str, X]``), to walk nested objects for unknown keys."""
    origin = typing.get_origin(tp)
    if origin is Annotated:
        return _struct_type(typing.get_args(tp)[0])
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        return [tp]
    found: list[type] = []
    for arg in typing.get_args(tp):
        found.extend(_struct_type(arg))
    return found


def _unknown_keys(cls: type, data: object, where: str) -> None:
    if not isinstance(data, Mapping):
        return
    info = msgspec.inspect.type_info(cls)
    known = {f.encode_name: f for f in info.fields}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise SpecError(f"{where}: unknown keys {unknown}")
    hints = typing.get_type_hints(cls, include_extras=True)
    for f in info.fields:
        value = data.get(f.encode_name)
        for sub in _struct_type(hints.get(f.name)):
            label = f"{where}.{f.encode_name}"
            if isinstance(value, list | tuple):
                for i, item in enumerate(value):
                    _unknown_keys(sub, item, f"{label}[{i}]")
            else:  # (commands hold no dict of Structs)
                _unknown_keys(sub, value, label)


def _error(cls: type, exc: Exception) -> SpecError:
    text = str(exc)
    # msgspec: "<why> - at `$.cgroup.cpu_weight`": name the field first, as before.
    why, sep, at = text.rpartition(" - at `$")
    if sep:
        text = f"{at.rstrip('`').lstrip('.')}: {why}"
    return SpecError(f"{_name(cls)}: {text}")


def decode(cls: type[T], data: object) -> T:
    """``data`` (bytes, a JSON string or builtins) as a valid ``cls``, or SpecError.

    A ``Message`` is first checked for its version (refused when more than one
    apart) and, when older, brought to this version's shape (``upgrade``)."""
    if isinstance(data, cls):
        return data
    is_message = issubclass(cls, Message)
    if isinstance(data, bytes | bytearray | memoryview | str):
        if is_message and not cls.strict:
            # The hot path (heartbeats): straight from JSON to the type when the
            # version is this side's; else through builtins.
            try:
                decoder = _decoders.get(cls)
                if decoder is None:
                    decoder = _decoders[cls] = msgspec.json.Decoder(cls)
                msg = decoder.decode(data)
            except (msgspec.ValidationError, msgspec.DecodeError) as exc:
                try:
                    data = json.loads(data)
                except (ValueError, RecursionError):
                    raise SpecError(f"{_name(cls)}: not JSON: {exc}") from exc
            else:
                # Absent, "version" means 1 (the default would say this side's).
                raw = data.encode() if isinstance(data, str) else bytes(data)
                if msg.version == PROTOCOL_VERSION and b'"version"' in raw:
                    return msg
                data = json.loads(raw)
        else:
            try:
                data = json.loads(data)
            except (ValueError, RecursionError) as exc:
                raise SpecError(f"{_name(cls)}: not JSON: {exc}") from exc
    if not isinstance(data, Mapping):
        raise SpecError(f"{_name(cls)}: expected an object, got {type(data).__name__}")
    if is_message:
        version = refuse_version(data.get("version", 1), _name(cls))
        if version < PROTOCOL_VERSION:
            data = cls.upgrade(dict(data), version)
            data["version"] = version
        if cls.strict and version <= PROTOCOL_VERSION:
            _unknown_keys(cls, data, _name(cls))
    elif cls.strict:
        _unknown_keys(cls, data, _name(cls))
    try:
        return msgspec.convert(data, cls, strict=True)
    except (msgspec.ValidationError, SpecError, TypeError, RecursionError) as exc:
        raise _error(cls, exc) from exc


def encode(msg: Part, version: int = PROTOCOL_VERSION) -> dict[str, Any]:
    """The builtins (JSON-able) of ``msg`` for a peer speaking ``version``."""
    data = msgspec.to_builtins(msg)
    if isinstance(msg, Message):
        # An optional part left out means "not reported" (every such default is None).
        data = {k: v for k, v in data.items() if v is not None}
        data["version"] = PROTOCOL_VERSION  # what this side writes, whatever it read
        version = peer_version(version)
        if version < PROTOCOL_VERSION:
            data = type(msg).downgrade(data, version)
            data.pop("version", None)  # version 1 knew no such key
    return data
