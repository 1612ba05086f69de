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
commit together. A live page (a few sales) is too small for COPY's two round trips:
up to `UNNEST_MAX_ROWS` rows go as one INSERT of unnested binary arrays instead.

`bind_rows` does the per-value Python work ahead of time, without a connection, so a
replay's worker processes can do it (services/common/projections.py, parallel rebuild)
and `insert_bound` is left with one driver call: the rows in COPY's text format on
PostgreSQL (a live page's few rows as they are, for the one INSERT above), the bound
values on SQLite.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Date,
    DateTime,
    Dialect,
    Integer,
    LargeBinary,
    String,
    Table,
    Uuid,
    insert,
)

# A live projector step writes a few rows per table: one statement (one round trip)
# instead of a COPY (statement, then data). A replay's pages are thousands of rows,
# where COPY is the faster path. The bound is a round figure between the two, not
# tuned.
UNNEST_MAX_ROWS = 64


def insert_rows(conn: Connection, table: Table, rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert `rows` (tuples of every column of `table`, in order) in `conn`'s transaction."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        if len(rows) <= UNNEST_MAX_ROWS:
            _insert_unnested(conn, table, rows, "")
            return
        column_list = _column_list(table)
        dbapi_connection: Any = conn.connection.driver_connection
        # Unqualified: the connection's search_path (or the audit scratch schema) decides.
        # Binary: psycopg packs ints, dates and UUIDs without formatting them as text.
        statement = f'COPY "{table.name}" ({column_list}) FROM STDIN (FORMAT BINARY)'
        with dbapi_connection.cursor() as cursor, cursor.copy(statement) as copy:
            copy.set_types(_postgres_type_names(conn, table))
            for row in rows:
                copy.write_row(row)
        return
    insert_bound(conn, table, bind_rows(conn.dialect, table, rows))


def insert_mappings(conn: Connection, table: Table, mappings: Sequence[Mapping[str, Any]]) -> None:
    """Insert rows given as column name -> value (a missing column is NULL): through
    `insert_rows` on PostgreSQL, SQLAlchemy's own executemany on SQLite (values stored
    exactly as every other SQLAlchemy insert stores them)."""
    if not mappings:
        return
    names = [column.name for column in table.columns]
    if conn.dialect.name == "postgresql":
        insert_rows(conn, table, [tuple(map(mapping.get, names)) for mapping in mappings])
        return
    conn.execute(insert(table), [{name: m.get(name) for name in names} for m in mappings])


@dataclass(frozen=True)
class BoundRows:
    """Rows of one table ready for one driver call (`bind_rows`, then `insert_bound`).

    Small to pickle (a rebuild's workers send them): one string, or a few columns,
    instead of many row tuples."""

    count: int
    copy_text: str = ""  # PostgreSQL, many rows: the rows in COPY's text format
    rows: Sequence[tuple[Any, ...]] = ()  # PostgreSQL, up to UNNEST_MAX_ROWS: as given
    columns: Sequence[Sequence[Any]] = ()  # SQLite: the bound values, column by column


def bind_rows(dialect: Dialect, table: Table, rows: Sequence[tuple[Any, ...]]) -> BoundRows:
    """`rows` (tuples of every column of `table`, in order) ready for `dialect`'s driver,
    stored as `insert_rows` would store them."""
    if not rows:
        return BoundRows(0)
    if dialect.name == "postgresql":
        if len(rows) <= UNNEST_MAX_ROWS:  # a live page: one INSERT, as `insert_rows`
            for column, values in zip(table.columns, zip(*rows, strict=True), strict=True):
                if isinstance(column.type, DateTime):
                    _check_zones(column, values)
            return BoundRows(len(rows), rows=tuple(rows))
        text_columns = [
            _copy_text_column(column, values)
            for column, values in zip(table.columns, zip(*rows, strict=True), strict=True)
        ]
        lines = map("\t".join, zip(*text_columns, strict=True))
        return BoundRows(len(rows), copy_text="\n".join(lines) + "\n")
    return BoundRows(len(rows), columns=_sqlite_columns(dialect, table, rows))


def insert_bound(conn: Connection, table: Table, bound: BoundRows) -> None:
    """Insert rows `bind_rows` made for this connection's dialect, in its transaction."""
    if not bound.count:
        return
    if conn.dialect.name == "postgresql":
        if bound.rows:
            _insert_unnested(conn, table, bound.rows, "")
            return
        dbapi_connection: Any = conn.connection.driver_connection
        statement = f'COPY "{table.name}" ({_column_list(table)}) FROM STDIN'
        with dbapi_connection.cursor() as cursor, cursor.copy(statement) as copy:
            # As str: psycopg encodes it in the connection's client encoding.
            copy.write(bound.copy_text)
        return
    _sqlite_executemany(
        conn,
        f'INSERT INTO "{table.name}" ({_column_list(table)}) {_sqlite_values(table)}',
        list(zip(*bound.columns, strict=True)),
    )


def upsert_rows(
    conn: Connection,
    table: Table,
    rows: Sequence[tuple[Any, ...]],
    *,
    accumulate: bool = False,
) -> None:
    """Insert `rows` (every column, in order); a row whose primary key exists replaces
    that row's other columns, or with `accumulate` adds to them (running totals). One
    statement on PostgreSQL (the rows as arrays, unnested), one executemany on SQLite."""
    if not rows:
        return
    keys = ", ".join(f'"{c.name}"' for c in table.primary_key.columns)
    others = [f'"{c.name}"' for c in table.columns if not c.primary_key]
    if accumulate:
        updates = (f'{name} = "{table.name}".{name} + excluded.{name}' for name in others)
    else:
        updates = (f"{name} = excluded.{name}" for name in others)
    on_conflict = f"ON CONFLICT ({keys}) DO UPDATE SET {', '.join(updates)}"
    if conn.dialect.name == "postgresql":
        _insert_unnested(conn, table, rows, on_conflict)
        return
    _sqlite_executemany(
        conn,
        f'INSERT INTO "{table.name}" ({_column_list(table)}) {_sqlite_values(table)} {on_conflict}',
        list(zip(*_sqlite_columns(conn.dialect, table, rows), strict=True)),
    )


def _insert_unnested(
    conn: Connection, table: Table, rows: Sequence[tuple[Any, ...]], on_conflict: str
) -> None:
    """PostgreSQL: one INSERT of the rows as one array per column, unnested."""
    columns = [list(values) for values in zip(*rows, strict=True)]
    for index, column in enumerate(table.columns):
        if isinstance(column.type, Date):
            # As COPY stores it: a datetime in a date column is its own date, not
            # the date the server's cast would give in the session's time zone.
            values = columns[index]
            columns[index] = [v.date() if isinstance(v, datetime) else v for v in values]
    dbapi_connection: Any = conn.connection.driver_connection
    with dbapi_connection.cursor() as cursor:
        cursor.execute(_unnest_statement(table, conn.dialect, on_conflict), columns)


@lru_cache(maxsize=256)
def _unnest_statement(table: Table, dialect: Dialect, on_conflict: str) -> str:
    # %b: the arrays travel in binary (measured: text arrays cost 2.4x more, quoting
    # every element). The same text every time, so psycopg prepares it. Each array is
    # cast to its column's type without a length: an explicit cast to VARCHAR(n)
    # would silently cut a longer value, where the insert's own conversion refuses
    # it, as COPY and SQLAlchemy's insert do.
    arrays = ", ".join(
        f"%b::{column.type.compile(dialect=dialect).split('(')[0].strip()}[]"
        for column in table.columns
    )
    return (
        f'INSERT INTO "{table.name}" ({_column_list(table)}) '
        f"SELECT * FROM unnest({arrays}) {on_conflict}"
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


def _sqlite_columns(
    dialect: Dialect, table: Table, rows: Sequence[tuple[Any, ...]]
) -> list[Sequence[Any]]:
    """`rows` as columns, each value passed through its column type's bind processor
    (UUIDs as hex), dates and times as the ISO text sqlite3's default adapters store."""
    values_by_column: list[Sequence[Any]] = list(zip(*rows, strict=True))
    # Column by column: zip and map run in C, so only the processors' own calls
    # cost Python time (bind processors accept None, as SQLAlchemy passes it too).
    for index, column in enumerate(table.columns):
        if isinstance(column.type, LargeBinary):
            # sqlite3 stores bytes as the BLOB its processor's memoryview would be,
            # and bytes pickle (a rebuild's workers send these columns).
            continue
        process = column.type.bind_processor(dialect)
        if process is not None:
            values_by_column[index] = list(map(process, values_by_column[index]))
        elif type(column.type) is Date:
            values_by_column[index] = _dates_as_text(values_by_column[index])
        elif type(column.type) is DateTime:
            values_by_column[index] = list(map(_datetime_as_text, values_by_column[index]))
    return values_by_column


# COPY's text format: a tab between columns, a newline after each row, \N for NULL,
# and these four characters escaped inside values.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_text_column(column: Column[Any], values: Sequence[Any]) -> Sequence[str]:
    """One column's values in COPY's text format, as PostgreSQL parses them for its type.

    A replay's columns hold hundreds of thousands of values, so each type takes the
    path that keeps the work in C: `str` through `map`, escaping only a column that
    needs it, dates formatted once per distinct day."""
    column_type = column.type
    if isinstance(column_type, String):
        if None in values:
            return [r"\N" if v is None else _escaped(v) for v in values]
        joined = "\0".join(values)
        if any(special in joined for special in "\\\t\n\r"):
            return list(map(_escaped, values))
        return values
    if isinstance(column_type, Date):
        # As binary COPY stores them: a datetime in a date column is its date.
        days = [v.date() if isinstance(v, datetime) else v for v in values]
        return [r"\N" if v is None else v for v in _dates_as_text(days)]
    if isinstance(column_type, LargeBinary):
        return [r"\N" if v is None else _bytea_text(v) for v in values]
    if isinstance(column_type, DateTime):
        _check_zones(column, values)
    if isinstance(column_type, Integer | Uuid | DateTime | Boolean):
        # str() of an int, a UUID, a datetime ("2025-01-01 08:00:00+00:00") or a bool
        # is what PostgreSQL's input functions read; only None needs replacing.
        texts = list(map(str, values))
        return [r"\N" if t == "None" else t for t in texts] if column.nullable else texts
    raise TypeError(f"{column.name}: no COPY text form for {column_type!r}; use insert_rows")


def _check_zones(column: Column[Any], values: Sequence[Any]) -> None:
    """Binary COPY refuses an aware datetime for a column without a time zone and a
    naive one for a column with one; text would silently drop or assume the zone."""
    with_zone = bool(getattr(column.type, "timezone", False))
    for value in values:
        if value is not None and (value.tzinfo is not None) != with_zone:
            raise TypeError(
                f"{column.name}: a {'naive' if with_zone else 'zone-aware'} datetime for a "
                f"column {'with' if with_zone else 'without'} a time zone"
            )


def _escaped(value: str) -> str:
    return value.translate(_COPY_ESCAPES)


def _bytea_text(value: bytes) -> str:
    return "\\\\x" + value.hex()  # \x<hex>, its backslash escaped for COPY


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
