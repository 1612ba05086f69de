"""Bulk inserts: rows bound ahead of time (a rebuild's workers) are stored exactly as
rows inserted directly, whatever the text holds."""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Engine,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    Uuid,
    cast,
    insert,
    select,
)

from services.common import bulk
from services.common.bulk import bind_rows, insert_bound, insert_mappings, insert_rows, upsert_rows
from services.common.database import create_sync_engine
from services.common.settings import Settings

metadata = MetaData()


def sample_table(name: str) -> Table:
    return Table(
        name,
        metadata,
        Column("position", BigInteger, primary_key=True, autoincrement=False),
        Column("line_no", Integer, nullable=False),
        Column("entry_id", Uuid, nullable=True),
        Column("day", Date, nullable=True),
        Column("recorded_at", DateTime(timezone=True), nullable=True),
        Column("description", String(200), nullable=True),
        Column("is_open", Boolean, nullable=True),
        Column("digest", LargeBinary, nullable=True),
    )


reference = sample_table("bulk_reference")
direct = sample_table("bulk_direct")
bound = sample_table("bulk_bound")

AWKWARD_TEXTS = [
    "plain",
    "tab\there",
    "two\nlines",
    "carriage\rreturn",
    "back\\slash",
    r"\N",  # COPY's NULL marker, as text
    "\\.",  # COPY's old end-of-data marker
    "Caffè «Val Camonica» €",
    "",
]


def sample_rows() -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    for index, text in enumerate(AWKWARD_TEXTS):
        rows.append(
            (
                index + 1,
                index,
                UUID(int=index + 1),
                date(2025, 1, 1 + index),
                datetime(2025, 1, 1, 8, index, 30, 123456, tzinfo=UTC),
                text,
                index % 2 == 0,
                bytes([index, 0, 255, 92]),  # 92 is a backslash
            )
        )
    rows.append((100, 0, None, None, None, None, None, None))
    return rows


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    eng = create_sync_engine(settings)
    metadata.create_all(eng)
    yield eng
    metadata.drop_all(eng)
    eng.dispose()


def stored(engine: Engine, table: Table) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(select(table).order_by(table.c.position))]


def stored_text(engine: Engine, table: Table) -> list[tuple[Any, ...]]:
    """Every value as the database holds it, cast to text (bytes as bytes): what any
    reader would see, whichever driver or parser it uses."""
    columns = [
        column if isinstance(column.type, LargeBinary) else cast(column, Text)
        for column in table.columns
    ]
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(select(*columns).order_by(table.c.position))]


@pytest.fixture(params=["few", "many"])
def few_or_many(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """A live page's few rows are bound as they are (one unnested INSERT on
    PostgreSQL), a replay's many in COPY's text format: both must store the same.
    "many" sends even these tests' few rows the replay's way."""
    if request.param == "many":
        monkeypatch.setattr(bulk, "UNNEST_MAX_ROWS", 0)
    return str(request.param)


FEW_OR_MANY = pytest.mark.usefixtures("few_or_many")


@FEW_OR_MANY
def test_bound_rows_are_stored_exactly_as_sqlalchemy_stores_them(engine: Engine) -> None:
    rows = sample_rows()
    # As a rebuild's worker process sends them.
    prepared = pickle.loads(pickle.dumps(bind_rows(engine.dialect, bound, rows)))
    assert prepared.count == len(rows)
    with engine.begin() as conn:
        # The reference: SQLAlchemy's own insert, bind processors and all.
        keys = reference.c.keys()
        conn.execute(insert(reference), [dict(zip(keys, row, strict=True)) for row in rows])
        insert_rows(conn, direct, rows)
        insert_bound(conn, bound, prepared)
    assert stored_text(engine, bound) == stored_text(engine, direct)
    expected = stored_text(engine, reference)
    if engine.dialect.name == "sqlite":
        # Known, and as before: bulk rows keep sqlite3's own text for a datetime (with
        # its zone), where SQLAlchemy drops the zone. Both read back alike.
        at = bound.c.keys().index("recorded_at")
        for index, row in enumerate(rows):
            if row[at] is not None:
                texts = list(expected[index])
                texts[at] = row[at].isoformat(" ")
                expected[index] = tuple(texts)
    assert stored_text(engine, bound) == expected
    # And they read back as what was written (timestamps aside: SQLite returns them
    # without their zone).
    assert [(r[0], r[2], r[3], r[5], r[6], r[7]) for r in stored(engine, bound)] == [
        (r[0], r[2], r[3], r[5], r[6], r[7]) for r in rows
    ]


def test_no_rows_bind_to_nothing_and_insert_nothing(engine: Engine) -> None:
    with engine.begin() as conn:
        insert_bound(conn, bound, bind_rows(engine.dialect, bound, []))
    assert stored(engine, bound) == []


# Client encodings are PostgreSQL's; SQLite stores datetimes as text, zone or not.
ON_POSTGRES_ONLY = pytest.mark.parametrize(
    "backend", [pytest.param("postgres", marks=pytest.mark.postgres)]
)


@ON_POSTGRES_ONLY
@FEW_OR_MANY
def test_bound_text_follows_the_connections_client_encoding(engine: Engine) -> None:
    text = "Caffè già pronto"  # every character has a LATIN1 form
    row = (1, 0, None, None, None, text, None, None)
    prepared = bind_rows(engine.dialect, bound, [row])
    with engine.begin() as conn:
        conn.exec_driver_sql("SET LOCAL client_encoding = 'LATIN1'")
        insert_bound(conn, bound, prepared)
    assert [r[5] for r in stored(engine, bound)] == [text]


@ON_POSTGRES_ONLY
@FEW_OR_MANY
def test_a_datetime_without_the_columns_zone_is_refused(engine: Engine) -> None:
    naive = (1, 0, None, None, datetime(2025, 1, 1, 8, 0), "x", None, None)
    with pytest.raises(TypeError, match="recorded_at: a naive datetime"):
        bind_rows(engine.dialect, bound, [naive])


def test_few_rows_and_many_rows_are_stored_alike(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A live page's rows (one unnested INSERT on PostgreSQL) and a replay's (COPY)."""
    rows = sample_rows()
    with engine.begin() as conn:
        insert_rows(conn, direct, rows)
        monkeypatch.setattr(bulk, "UNNEST_MAX_ROWS", 0)
        insert_rows(conn, bound, rows)
    assert stored_text(engine, direct) == stored_text(engine, bound)


def test_mappings_are_stored_as_rows_with_missing_columns_null(engine: Engine) -> None:
    rows = sample_rows()
    keys = direct.c.keys()
    mappings = [{k: v for k, v in zip(keys, row, strict=True) if v is not None} for row in rows]
    with engine.begin() as conn:
        keys_reference = reference.c.keys()
        conn.execute(
            insert(reference), [dict(zip(keys_reference, row, strict=True)) for row in rows]
        )
        insert_mappings(conn, direct, mappings)
    assert stored_text(engine, direct) == stored_text(engine, reference)


def test_upserts_replace_or_accumulate_the_other_columns(engine: Engine) -> None:
    first = [
        (1, 10, None, None, None, "one", True, None),
        (2, 20, None, None, None, "two", None, None),
    ]
    with engine.begin() as conn:
        upsert_rows(conn, direct, first)
        upsert_rows(conn, direct, [(2, 5, None, None, None, "deux", None, None)])
        upsert_rows(conn, direct, [(3, 7, None, None, None, "three", None, None)])
    assert [(r[0], r[1], r[5]) for r in stored(engine, direct)] == [
        (1, 10, "one"),
        (2, 5, "deux"),
        (3, 7, "three"),
    ]
    totals = Table(
        "bulk_totals",
        metadata,
        Column("account_code", String(64), primary_key=True),
        Column("debit_cents", BigInteger, nullable=False),
        Column("credit_cents", BigInteger, nullable=False),
    )
    totals.create(engine)
    try:
        with engine.begin() as conn:
            upsert_rows(conn, totals, [("A", 100, 0), ("B", 0, 250)], accumulate=True)
            upsert_rows(conn, totals, [("A", 5, 7), ("C", 1, 1)], accumulate=True)
        with engine.connect() as conn:
            assert sorted(conn.execute(select(totals))) == [
                ("A", 105, 7),
                ("B", 0, 250),
                ("C", 1, 1),
            ]
    finally:
        totals.drop(engine)
        metadata.remove(totals)


@ON_POSTGRES_ONLY  # SQLite does not enforce VARCHAR lengths
@FEW_OR_MANY
def test_a_text_longer_than_its_column_is_refused_not_cut(engine: Engine) -> None:
    row = (1, 0, None, None, None, "x" * 201, None, None)  # description is String(200)
    with pytest.raises(Exception, match="value too long"), engine.begin() as conn:
        insert_bound(conn, bound, bind_rows(engine.dialect, bound, [row]))
    with pytest.raises(Exception, match="value too long"), engine.begin() as conn:
        insert_rows(conn, direct, [row])
    assert stored(engine, bound) == stored(engine, direct) == []


@ON_POSTGRES_ONLY
@FEW_OR_MANY
def test_a_datetime_in_a_date_column_is_stored_as_its_own_date(engine: Engine) -> None:
    # Half past midnight in Rome is still the day before in UTC.
    at = datetime(2025, 1, 2, 0, 30, tzinfo=ZoneInfo("Europe/Rome"))
    row = (1, 0, None, at, None, None, None, None)
    with engine.begin() as conn:
        conn.exec_driver_sql("SET LOCAL TIME ZONE 'UTC'")
        insert_bound(conn, bound, bind_rows(engine.dialect, bound, [row]))
        insert_rows(conn, direct, [row])
    assert [r[3] for r in stored(engine, bound)] == [date(2025, 1, 2)]
    assert [r[3] for r in stored(engine, direct)] == [date(2025, 1, 2)]
