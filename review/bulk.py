"""Many rows written in one statement whose one parameter is the rows as a JSON document
(PostgreSQL's ``jsonb_to_recordset``), where Django's own bulk writes are slow.

Django 5.2 inserts many rows on PostgreSQL through ``unnest`` of one array a column, and its
``bulk_update`` builds a ``CASE WHEN id = ... THEN ...`` per field and row (at 10,000 rows
PostgreSQL was still planning it after minutes). With Django's client-side binding, psycopg
quotes those arrays in Python: every double quote inside a JSON column is escaped by a regular
expression substitution of its own. A batch's hand-over to review (8 assets with their generation
records, 16 audit events, 16 manifest stores) made about 8,700 of them, 43% of its time under a
profiler. One JSON document is escaped in C, and the statement stays the same size whatever the
number of rows. Measured over the 32 hand-overs of a 256-asset campaign on 2 cores: 0.45 s of
the hand-over thread's CPU and 0.67 s in all through arrays, 0.20 s and 0.37 s so.

Every many-row insert and update of the review models goes through here: registration, the
hand-over, a run's cancels and requeues, a publication's rows and manifests. Other databases
than PostgreSQL (the embedded demo's SQLite file): Django's bulk writes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, datetime, time
from typing import Any

from django.db import connection
from django.db.models import Field, Model
from psycopg.types.json import Jsonb


def rows_insert(rows: Sequence[Model]) -> None:
    """Insert ``rows`` (new instances of one model, no primary key set) as ``bulk_create``
    does: each field's value prepared by the field (``auto_now_add`` filled in), and each
    instance given its new primary key."""
    if not rows:
        return
    model = type(rows[0])
    if any(type(row) is not model or row.pk is not None for row in rows):
        raise ValueError(f"rows_insert takes new {model.__name__} rows only, none with a primary key")
    if connection.vendor != "postgresql":
        model._default_manager.bulk_create(rows)
        return
    columns = _columns(
        [f for f in model._meta.concrete_fields if isinstance(f, Field) and not f.primary_key and not f.generated]
    )
    payload = [
        {
            **{name: field.get_db_prep_save(field.pre_save(row, True), connection) for field, name in columns},
            "bulk_row_order": i,
        }
        for i, row in enumerate(rows)
    ]
    quote = connection.ops.quote_name
    names = ", ".join(quote(name) for _, name in columns)
    chosen = ", ".join(f"v.{quote(name)}" for _, name in columns)
    [(_, key)], table = _columns([model._meta.pk]), quote(model._meta.db_table)
    sql = (
        f"INSERT INTO {table} ({names}) SELECT {chosen} FROM jsonb_to_recordset(%s::jsonb) "
        f"AS v({_types(columns)}, bulk_row_order integer) ORDER BY v.bulk_row_order RETURNING {quote(key)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [_document(payload)])
        keys = [found for (found,) in cursor.fetchall()]
    for row, found in zip(rows, keys, strict=True):
        row.pk = found
        row._state.adding, row._state.db = False, connection.alias


def rows_update(rows: Sequence[Model], names: Sequence[str]) -> None:
    """Write the ``names`` fields of ``rows`` (saved instances of one model, as they are in
    memory), each value prepared by its field, in one statement."""
    if not rows:
        return
    model = type(rows[0])
    if connection.vendor != "postgresql":
        model._default_manager.bulk_update(rows, list(names))
        return
    fields: list[Field[Any, Any]] = []
    for name in names:
        field = model._meta.get_field(name)
        if not isinstance(field, Field) or not field.concrete or field.primary_key:
            raise ValueError(f"rows_update cannot write {model.__name__}.{name}")
        fields.append(field)
    columns = _columns([model._meta.pk, *fields])  # the key first
    payload = [
        {name: field.get_db_prep_save(getattr(row, field.attname), connection) for field, name in columns}
        for row in rows
    ]
    quote = connection.ops.quote_name
    table, key = quote(model._meta.db_table), quote(columns[0][1])
    sets = ", ".join(f"{quote(name)} = v.{quote(name)}" for _, name in columns[1:])
    sql = (
        f"UPDATE {table} SET {sets} FROM jsonb_to_recordset(%s::jsonb) AS v({_types(columns)}) "
        f"WHERE {table}.{key} = v.{key}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [_document(payload)])


def _columns(fields: Sequence[Any]) -> list[tuple[Field[Any, Any], str]]:
    """Each field with its column's name."""
    columns = []
    for field in fields:
        if not isinstance(field, Field) or not field.column:
            raise ValueError(f"{field!r} has no column of its own")
        columns.append((field, field.column))
    return columns


def _types(columns: Sequence[tuple[Field[Any, Any], str]]) -> str:
    """The record's column definitions: each column with its database type (a text longer than
    a ``varchar``'s length is refused as the record is read, never cut short)."""
    quote = connection.ops.quote_name
    return ", ".join(f"{quote(name)} {field.db_type(connection)}" for field, name in columns)


def _document(payload: list[dict[str, Any]]) -> str:
    return json.dumps(payload, default=_prepared, allow_nan=False, ensure_ascii=False)


def _prepared(value: object) -> object:
    """A prepared value JSON has no type for, as ``jsonb_to_recordset`` reads it back: a JSON
    field's document as it is, a date or time as ISO 8601 text (with its offset)."""
    if isinstance(value, Jsonb):
        return value.obj
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    raise TypeError(f"a prepared {type(value).__name__} cannot be written through jsonb_to_recordset")
