"""Copy a whole store from one database to another (SQLite to PostgreSQL, and back).

The destination must be empty. Every table of the schema is copied in foreign-key order, in
batches, inside one transaction on the destination, so a failed copy leaves no rows behind;
id sequences are then moved past the copied ids, and the row counts of both sides compared.
The scheduler's job table is not copied: `feedpub run` writes it again from `[schedule]`.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from ..errors import StoreError
from . import schema
from .dialect import create_engine, dialect_of, safe_url

BATCH = 1000


@dataclass(frozen=True)
class CopyReport:
    source: str  # URLs without passwords
    destination: str
    rows: dict[str, int]  # table -> rows copied (equal on both sides)


def _tables() -> list[sa.Table]:
    return [t for t in schema.metadata.sorted_tables if t is not schema.schema_version]


def _count(conn: sa.Connection, table: sa.Table) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar() or 0)


def _check_source(engine: sa.Engine, where: str) -> None:
    with engine.connect() as conn:
        version = schema.current_version(conn)
    if version != schema.SCHEMA_VERSION:
        raise StoreError(
            f"the source database {where} is at schema version {version}, not "
            f"{schema.SCHEMA_VERSION}: run `feedpub db upgrade` on it first")


def _check_destination(engine: sa.Engine, where: str) -> None:
    with engine.connect() as conn:
        version = schema.current_version(conn)
        if version not in (0, schema.SCHEMA_VERSION):
            raise StoreError(f"the destination database {where} already holds a feedpub "
                             f"store (schema version {version}); copy into an empty database")
        existing = set(sa.inspect(conn).get_table_names())
        for table in _tables():
            if table.name in existing and _count(conn, table):
                raise StoreError(
                    f"the destination database {where} is not empty (table {table.name} has "
                    "rows); copy into an empty database, or drop and recreate it first")


def copy_database(source_url: str, destination_url: str) -> CopyReport:
    """Copy every row of the store at `source_url` into the empty `destination_url`."""
    source_where, destination_where = safe_url(source_url), safe_url(destination_url)
    if source_url == destination_url:
        raise StoreError("the source and the destination are the same database")
    source, destination = create_engine(source_url), create_engine(destination_url)
    try:
        _check_source(source, source_where)
        _check_destination(destination, destination_where)
        schema.migrate(destination)
        copied: dict[str, int] = {}
        with source.connect() as src, destination.begin() as dst:
            for table in _tables():
                order = list(table.primary_key.columns) or list(table.columns)
                result = src.execution_options(stream_results=True).execute(
                    sa.select(table).order_by(*order))
                total = 0
                while rows := result.fetchmany(BATCH):
                    dst.execute(table.insert(), [dict(row._mapping) for row in rows])
                    total += len(rows)
                copied[table.name] = total
            for table in _tables():
                dialect_of(dst).reset_sequence(dst, table)
                if _count(dst, table) != copied[table.name]:
                    raise StoreError(f"table {table.name}: {copied[table.name]} rows read but "
                                     f"{_count(dst, table)} written; nothing was copied")
        with source.connect() as src:
            for table in _tables():
                if _count(src, table) != copied[table.name]:
                    raise StoreError(
                        f"table {table.name} changed in the source during the copy; stop "
                        "feedpub on the source and copy again (the destination now holds "
                        "rows: drop and recreate it first)")
    except sa.exc.SQLAlchemyError as exc:
        raise StoreError(f"copying {source_where} to {destination_where} failed: {exc} "
                         "(nothing was committed to the destination)") from exc
    finally:
        source.dispose()
        destination.dispose()
    return CopyReport(source_where, destination_where, copied)
