"""Many-row inserts for projections, through the driver inside SQLAlchemy's transaction.

A page of a replay writes hundreds of thousands of rows. Handing them to SQLAlchemy as
dicts costs more than the database's own work (per-row parameter processing), and on
PostgreSQL psycopg's `executemany` still sends one INSERT per row. Here rows are plain
tuples in the table's column order:
- PostgreSQL: one binary `COPY ... FROM STDIN` per call, typed with the columns' own
  PostgreSQL types;
- SQLite: sqlite3 `executemany`, each value first passed through the column type's own
  SQLAlchemy bind processor, so the stored text (UUID hex, ISO dates) is what an ORM
  insert would have stored and every query reads it back the same way.
The rows join the caller's transaction: the page and its tracking position still
commit together.

`bind_columns` does the per-value Python work ahead of time, without a connection, so a
replay's worker processes can do it (services/common/projections.py, parallel rebuild)
and `insert_rows(..., bound=True)` is left with the driver's own work.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Date, DateTime, Dialect, Table


def insert_rows(
    conn: Connection, table: Table, rows: Sequence[tuple[Any, ...]], *, bound: bool = False
) -> None:
    """Insert `rows` (tuples of every column of `table`, in order) in `conn`'s transaction.

    `bound`: the rows came from `bind_rows` for this connection's dialect."""
    if not rows:
        return
    column_list = _column_list(table)
    dbapi_connection: Any = conn.connection.driver_connection
    if conn.dialect.name == "postgresql":
        # Unqualified: the connection's search_path (or the audit scratch schema) decides.
        # Binary: psycopg packs ints, dates and UUIDs without formatting them as text.
        statement = f'COPY "{table.name}" ({column_list}) FROM STDIN (FORMAT BINARY)'
        with dbapi_connection.cursor() as cursor, cursor.copy(statement) as copy:
            copy.set_types(_postgres_type_names(conn, table))
            for row in rows:
                copy.write_row(row)
        return
    _sqlite_executemany(
        conn,
        f'INSERT INTO "{table.name}" ({column_list}) {_sqlite_values(table)}',
        rows if bound else list(zip(*bind_columns(conn.dialect, table, rows), strict=True)),
    )


def upsert_rows(conn: Connection, table: Table, rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert `rows` (every column, in order); a row whose primary key exists replaces
    that row's other columns. One statement on PostgreSQL (the rows as arrays, unnested),
    one executemany on SQLite."""
    if not rows:
        return
    column_list = _column_list(table)
    keys = ", ".join(f'"{c.name}"' for c in table.primary_key.columns)
    replaced = ", ".join(
        f'"{c.name}" = excluded."{c.name}"' for c in table.columns if not c.primary_key
    )
    on_conflict = f"ON CONFLICT ({keys}) DO UPDATE SET {replaced}"
    if conn.dialect.name == "postgresql":
        # %b: the arrays travel in binary (measured: text arrays cost 2.4x more, quoting
        # every element).
        arrays = ", ".join(
            f"%b::{column.type.compile(dialect=conn.dialect)}[]" for column in table.columns
        )
        statement = (
            f'INSERT INTO "{table.name}" ({column_list}) '
            f"SELECT * FROM unnest({arrays}) {on_conflict}"
        )
        dbapi_connection: Any = conn.connection.driver_connection
        with dbapi_connection.cursor() as cursor:
            cursor.execute(statement, [list(values) for values in zip(*rows, strict=True)])
        return
    _sqlite_executemany(
        conn,
        f'INSERT INTO "{table.name}" ({column_list}) {_sqlite_values(table)} {on_conflict}',
        list(zip(*bind_columns(conn.dialect, table, rows), strict=True)),
    )


def _postgres_type_names(conn: Connection, table: Table) -> list[str]:
    # "VARCHAR(64)" -> "varchar", "TIMESTAMP WITH TIME ZONE" -> "timestamp with time zone":
    # names psycopg's type registry knows.
    return [
        column.type.compile(dialect=conn.dialect).split("(")[0].strip().lower()
        for column in table.columns
    ]


def _column_list(table: Table) -> str:
    return ", ".join(f'"{column.name}"' for column in table.columns)


def _sqlite_values(table: Table) -> str:
    return f"VALUES ({', '.join('?' for _ in table.columns)})"


Columns = list[Sequence[Any]]


def bind_columns(dialect: Dialect, table: Table, rows: Sequence[tuple[Any, ...]]) -> Columns:
    """`rows` as columns, each value as `insert_rows` hands it to the driver of `dialect`:
    on SQLite passed through its column type's bind processor (UUIDs as hex), dates and
    times as the ISO text sqlite3's default adapters would store; on PostgreSQL as they
    are (COPY packs the Python values itself). A few columns pickle in a fraction of
    the time of many rows: a rebuild's worker processes send them (`insert_columns`).
    """
    values_by_column: Columns = list(zip(*rows, strict=True)) or [() for _ in table.columns]
    if dialect.name != "sqlite" or not rows:
        return values_by_column
    # Column by column: zip and map run in C, so only the processors' own calls
    # cost Python time (bind processors accept None, as SQLAlchemy passes it too).
    for index, column in enumerate(table.columns):
        process = column.type.bind_processor(dialect)
        if process is not None:
            values_by_column[index] = list(map(process, values_by_column[index]))
        elif type(column.type) is Date:
            values_by_column[index] = _dates_as_text(values_by_column[index])
        elif type(column.type) is DateTime:
            values_by_column[index] = list(map(_datetime_as_text, values_by_column[index]))
    return values_by_column


def insert_columns(conn: Connection, table: Table, columns: Columns) -> None:
    """Insert the rows `bind_columns` returned for this connection's dialect."""
    insert_rows(conn, table, list(zip(*columns, strict=True)), bound=True)


def _sqlite_executemany(conn: Connection, statement: str, rows: Sequence[tuple[Any, ...]]) -> None:
    dbapi_connection: Any = conn.connection.driver_connection
    cursor = dbapi_connection.cursor()
    try:
        cursor.executemany(statement, rows)
    finally:
        cursor.close()


def _dates_as_text(values: Sequence[Any]) -> list[Any]:
    """What sqlite3's default adapter stores for a date (`isoformat()`), computed once
    per distinct day: a page's hundreds of thousands of values hold a few hundred."""
    texts = {v: v.isoformat() if type(v) is date else v for v in set(values)}
    return list(map(texts.__getitem__, values))


def _datetime_as_text(value: Any) -> Any:
    """What sqlite3's default adapter stores for a datetime."""
    return value.isoformat(" ") if isinstance(value, datetime) else value
