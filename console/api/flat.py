"""A list serializer that writes each row straight from its fields.

DRF's ``ListSerializer`` runs the full machinery of the child for every row
(``get_attribute`` with its error handling, an ordered dict, hooks) and
rebuilds the child's fields on every request; for a 50-row page of a wide
read-only model that is most of the request's CPU. This one builds, once per
serializer class, a reader per field (its source attributes and its own
``to_representation``) and applies them to each row, so the output is the
same value for value (a test holds it to the child's output) at a fraction of
the cost. Date-times, the widest part of a job row, skip DRF's per-value
lookup of the current time zone: it is looked up once per page.

Only for read-only serializers whose fields are plain or dotted sources (no
``SerializerMethodField``, no ``source="*"``, nothing that reads the context).

``values_of`` / ``rows_of`` / ``encode`` go one step further for the JSON job
list: the page is read with ``QuerySet.values()`` (tuples from the cursor, no
model instances; a related slug is a joined column), each row is written with
the same per-field rules, and the page is encoded by msgspec (which writes
date-times as DRF does: ISO 8601, "Z" for UTC).
"""

import datetime

import msgspec
from django.conf import settings
from django.db import connection
from django.db.models import CharField, Func
from django.utils import timezone
from rest_framework import ISO_8601, serializers
from rest_framework.settings import api_settings

_READERS: dict[type, list] = {}
_DATETIME = object()  # marker: format as DRF's DateTimeField does, zone looked up per page


def _readers(child_class: type) -> list:
    readers = _READERS.get(child_class)
    if readers is not None:
        return readers
    readers = []
    for field in child_class().fields.values():
        if field.write_only:
            continue
        if isinstance(field, serializers.SerializerMethodField) or field.source == "*":
            raise TypeError(f"{field.field_name}: FlatListSerializer reads plain sources")
        represent = field.to_representation
        iso = (getattr(field, "format", None) or api_settings.DATETIME_FORMAT) == ISO_8601
        if (type(field) is serializers.DateTimeField and iso and settings.USE_TZ
                and getattr(field, "timezone", None) is None):
            represent = _DATETIME
        readers.append((field.field_name, tuple(field.source_attrs), represent))
    _READERS[child_class] = readers
    return readers


def _write(item, readers: list, zone) -> dict:
    row = {}
    for name, attrs, represent in readers:
        value = item
        for attr in attrs:
            value = getattr(value, attr)
            if value is None:
                break
        if value is None:
            row[name] = None
        elif represent is _DATETIME:
            # DRF: to the current zone, ISO 8601, "+00:00" written "Z".
            text = value.astimezone(zone).isoformat()
            row[name] = text[:-6] + "Z" if text.endswith("+00:00") else text
        else:
            row[name] = represent(value)
    return row


def row_of(item, child_class: type) -> dict:
    """One instance written as ``child_class`` writes it (its fields built once per class)."""
    return _write(item, _readers(child_class), timezone.get_current_timezone())


class FlatListSerializer(serializers.ListSerializer):
    def to_representation(self, data):
        readers = _readers(type(self.child))
        zone = timezone.get_current_timezone()
        rows = data.all() if hasattr(data, "all") else data
        return [_write(item, readers, zone) for item in rows]


# --- rows from QuerySet.values() -------------------------------------------------

_COLUMNS: dict[type, list] = {}
_AS_IS = object()  # marker: the database's value is what DRF writes (int, bool, str, JSON)
# Fields whose ``to_representation`` returns a database value unchanged: int(int),
# bool(bool), str(str), a JSON document as decoded.
_AS_IS_TYPES = (serializers.IntegerField, serializers.BooleanField, serializers.CharField,
                serializers.SlugRelatedField)


def _columns(child_class: type) -> list:
    """(output name, ``values()`` lookup, writer) per field of ``child_class``."""
    columns = _COLUMNS.get(child_class)
    if columns is not None:
        return columns
    columns = []
    for name, _attrs, represent in _readers(child_class):
        field = child_class().fields[name]
        attrs = list(field.source_attrs)
        if isinstance(field, serializers.SlugRelatedField):
            attrs.append(field.slug_field)
        elif isinstance(field, serializers.RelatedField):
            raise TypeError(f"{name}: rows_of reads slug relations only")
        if represent is _DATETIME:
            writer = _DATETIME
        elif (type(field) in _AS_IS_TYPES
              or (type(field) is serializers.JSONField and not field.binary)):
            writer = _AS_IS
        else:
            writer = represent
        columns.append((name, "__".join(attrs), writer))
    _COLUMNS[child_class] = columns
    return columns


_ISO = "iso_"  # prefix of a date-time written as text by PostgreSQL


def _utc() -> bool:
    zone = timezone.get_current_timezone()
    return zone is datetime.UTC or getattr(zone, "key", "") == "UTC"


class _IsoUtc(Func):
    """A UTC date-time as DRF writes it, by PostgreSQL: "2026-01-02T03:04:05.123456Z"
    (``rows_of`` drops a fraction of zero, as ``isoformat`` does). Reading a
    date-time into Python costs more than the rest of a list's row together."""

    template = ("to_char(%(expressions)s AT TIME ZONE 'UTC', "
                "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')")
    output_field = CharField()


def values_of(queryset, child_class: type):
    """``queryset`` as dicts of the lookups ``rows_of`` writes (a cursor
    paginator can order and position them by the model's field names). On
    PostgreSQL, with the reader's zone UTC, date-times also come as text."""
    columns = _columns(child_class)
    values = queryset.values(*dict.fromkeys(lookup for _n, lookup, _w in columns))
    if connection.vendor == "postgresql" and _utc():
        # The ordering's own column stays a date-time: the paginator positions by it.
        values = values.annotate(**{_ISO + lookup: _IsoUtc(lookup)
                                    for _n, lookup, writer in columns if writer is _DATETIME})
    return values


def rows_of(values, child_class: type) -> list[dict]:
    """Rows of ``values_of`` written as ``child_class`` writes its instances
    (date-times stay ``datetime`` in the current zone, for ``encode``)."""
    columns = _columns(child_class)
    zone = timezone.get_current_timezone()
    utc = _utc()
    out = []
    for item in values:
        row = {}
        for name, lookup, writer in columns:
            value = item[lookup]
            if value is None or writer is _AS_IS:
                row[name] = value
            elif writer is _DATETIME and utc and (text := item.get(_ISO + lookup)):
                row[name] = text[:-8] + "Z" if text.endswith(".000000Z") else text
            elif writer is _DATETIME:
                # psycopg and SQLite give UTC date-times: msgspec writes them with "Z".
                row[name] = value if utc and value.utcoffset() == _ZERO else value.astimezone(zone)
            else:
                row[name] = writer(value)
        out.append(row)
    return out


_ZERO = datetime.timedelta(0)
_encoder = msgspec.json.Encoder()


def encode(document) -> bytes:
    """JSON as DRF's renderer writes it (compact, UTF-8); date-times as
    ISO 8601 with "Z" for UTC, as DRF's ``DateTimeField``."""
    return _encoder.encode(document)
