"""Large inserts with PostgreSQL's COPY, for the few places that store tens of thousands of rows at once.

``bulk_create`` builds one parameterised INSERT and adapts every value through the field's
``get_db_prep_save``; for a 1 MB runbook (about 16,000 checklist rows) that costs more than
parsing the file. COPY streams the rows in PostgreSQL's own format instead. Rows keep their
model instances: ids are drawn from the table's sequence first (``allocate_ids``), so a caller
can point children at their parents before anything is written, and the instances carry the
ids afterwards just as ``bulk_create`` leaves them.

Only plain columns are supported: the values are what the instances hold (after each field's
``pre_save``, so ``auto_now_add`` works), JSON fields as jsonb. No signals are sent, as with
``bulk_create``.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connections, models, router
from psycopg.types.json import Jsonb


def _connection(model):
    return connections[router.db_for_write(model)]


def allocate_ids(model: type[models.Model], objs: Sequence[models.Model]) -> None:
    """Give every instance without a primary key the next id of its table's sequence."""
    missing = [obj for obj in objs if obj.pk is None]
    if not missing:
        return
    meta = model._meta
    with _connection(model).cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [meta.db_table, meta.pk.column, len(missing)],
        )
        for obj, (value,) in zip(missing, cursor.fetchall(), strict=True):
            obj.pk = value


def copy_insert(model: type[models.Model], objs: Sequence[models.Model]) -> None:
    """Insert ``objs`` (ids allocated here if they have none) with one COPY."""
    if not objs:
        return
    allocate_ids(model, objs)
    connection = _connection(model)
    fields = model._meta.concrete_fields
    json_fields = {f.attname for f in fields if isinstance(f, models.JSONField)}
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    statement = f"COPY {connection.ops.quote_name(model._meta.db_table)} ({columns}) FROM STDIN"
    with connection.cursor() as cursor, cursor.copy(statement) as copy:
        for obj in objs:
            row = []
            for f in fields:
                value = f.pre_save(obj, add=True)
                row.append(Jsonb(value) if f.attname in json_fields and value is not None else value)
            copy.write_row(row)
    for obj in objs:
        obj._state.adding = False
        obj._state.db = connection.alias
