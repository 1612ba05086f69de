"""Replay: rebuild every registered read model into scratch storage and diff it with live.

Safe while the system is live:
- live tables are only read, in one read-only snapshot transaction (see store.py);
- that snapshot fixes each projection's position, and the replay stops there, so the
  live rows and the replayed rows describe the same prefix of the log;
- the scratch is a new schema (PostgreSQL) or a new database file (SQLite), dropped
  afterwards unless kept.
Every projection the runtime registers is covered: the replay asks the runner for its
list, and compares each of their tables row by row, by primary key.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from eventsourcing.persistence import Mapper, Notification
from sqlalchemy import (
    Column,
    Connection,
    Engine,
    String,
    Table,
    create_engine,
    event,
    insert,
    select,
    text,
)
from sqlalchemy.pool import NullPool

from services.audit.projections.tables import audit_chain
from services.audit.store import iter_records, peek_state, recorded_at
from services.common.database import metadata, projection_tracking
from services.common.errors import CoopError, ValidationError
from services.common.projections import (
    DomainEvent,
    PreparedProjection,
    Projection,
    RangePreparers,
    RawProjection,
    apply_page,
    collector_paused,
    default_rebuild_workers,
    page_for,
    secondary_indexes,
)
from services.common.settings import Settings
from services.ledger.domain.donations import DONOR_WITHHELD
from services.welfare_fund.domain import BENEFICIARY_WITHHELD, holds_beneficiary_rows

ProgressCallback = Callable[[int, int], None]
REPLAY_PAGE_SIZE = 20_000  # events per scratch transaction: fewer, larger set-based writes
WORKER_READ_PAGE_SIZE = 5_000  # events per read of a worker process
DIFF_FETCH_ROWS = 5_000


@dataclass(frozen=True)
class RowDifference:
    table: str
    key: dict[str, Any]
    kind: str  # "missing in replay" | "missing in live" | "differs"
    columns: tuple[str, ...]
    live: dict[str, Any] | None
    replay: dict[str, Any] | None
    # "beneficiary" when the row is about one beneficiary: then neither its key nor its
    # values are given (an auditor reads this report), only the table, the kind of
    # difference and the names of the columns that differ.
    withheld: str | None = None
    # How many consecutive rows this difference stands for: in the chain one changed
    # event changes every later hash, so a run of chain rows that differ alike is one
    # difference (`key` is its first row, `last_key` its last, `live`/`replay` the
    # first row's values). 1 for every other difference.
    rows: int = 1
    last_key: dict[str, Any] | None = None


@dataclass
class ReplayReport:
    until: date | None
    positions: dict[str, int]
    events_read: int = 0
    rows_compared: int = 0
    row_counts: dict[str, int] = field(default_factory=dict)
    # Rows that differ, every one (a run of chain rows counts each of its rows);
    # `differences` lists at most `max_differences` of them, a run as one.
    difference_count: int = 0
    differences: list[RowDifference] = field(default_factory=list)
    scratch: str = ""
    kept: bool = False
    # With `until`: the events read that were recorded by its end (the others are
    # left out), and when the first one left out was recorded. A store loaded or
    # migrated after the fact has none by an earlier date: its state then is empty.
    events_recorded_by_until: int = 0
    first_left_out_at: datetime | None = None

    @property
    def ok(self) -> bool:
        return self.difference_count == 0


class Scratch:
    """Where the replay writes: a new schema or database file, never a live table."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        token = uuid.uuid4().hex[:10]
        if settings.is_postgres:
            self.schema = f"audit_replay_{token}"
            self.location = f"schema {self.schema}"
            admin = create_engine(settings.sync_url, poolclass=NullPool)
            with admin.begin() as conn:
                conn.execute(text(f'CREATE SCHEMA "{self.schema}"'))
            admin.dispose()
            self.engine = create_engine(
                settings.sync_url,
                poolclass=NullPool,
                # The scratch is disposable: no need to wait for the WAL flush.
                connect_args={"options": f"-csearch_path={self.schema} -csynchronous_commit=off"},
                execution_options={"schema_translate_map": {None: self.schema}},
            )
        else:
            live = settings.sqlite_path
            self.path = live.with_name(f"{live.stem}.replay-{token}.db")
            self.location = f"file {self.path}"
            self.engine = create_engine(
                f"sqlite+pysqlite:///{self.path}",
                poolclass=NullPool,
                connect_args={"isolation_level": None},
            )

            @event.listens_for(self.engine, "connect")
            def _on_connect(dbapi_connection: Any, _record: Any) -> None:
                dbapi_connection.execute("PRAGMA journal_mode=OFF")
                dbapi_connection.execute("PRAGMA synchronous=OFF")

            @event.listens_for(self.engine, "begin")
            def _on_begin(connection: Any) -> None:
                connection.exec_driver_sql("BEGIN")

    def create(self, tables: Sequence[Table]) -> None:
        metadata.create_all(self.engine, tables=[projection_tracking, *tables])
        if self.settings.is_postgres:
            # Disposable: no write-ahead log for its rows (a crash loses the scratch,
            # which a replay drops anyway). Most of a large replay's writes were WAL.
            with self.engine.begin() as conn:
                for table in [projection_tracking, *tables]:
                    conn.execute(text(f'ALTER TABLE "{self.schema}"."{table.name}" SET UNLOGGED'))

    def drop(self) -> None:
        self.engine.dispose()
        if self.settings.is_postgres:
            admin = create_engine(self.settings.sync_url, poolclass=NullPool)
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE'))
            admin.dispose()
        else:
            Path(self.path).unlink(missing_ok=True)


class UnreadableEvent(CoopError):
    """A stored event the replay cannot read: it stops there, naming the position
    (`coop audit verify` tells whether the stored bytes were changed)."""

    def __init__(self, position: int, cause: str) -> None:
        # The cause is the exception's class only: its text can quote the stored bytes.
        super().__init__(
            f"replay stopped at position {position}: the stored event does not decode "
            f"({cause}); run `coop audit verify`"
        )
        self.position = position


def cutoff_for(until: date, settings: Settings) -> datetime:
    """The first instant after `until` in the cooperative's time zone."""
    try:
        day_after = until + timedelta(days=1)
    except OverflowError:  # 9999-12-31: the calendar has no day after it
        last = date.max - timedelta(days=1)
        raise ValidationError("until", f"the last day a replay can end is {last}") from None
    return datetime.combine(day_after, time(0), tzinfo=settings.zone)


def replay(
    *,
    settings: Settings,
    snapshot_engine: Engine,
    mapper: Mapper[Any],
    projections: Sequence[Projection],
    until: date | None = None,
    keep: bool = False,
    max_differences: int = 1000,
    progress: ProgressCallback | None = None,
    workers: int | None = None,
) -> ReplayReport:
    """Rebuild `projections` into scratch; diff with live unless `until` is given.

    `workers`: processes that read and prepare pages while this one writes (see
    `_rebuild`); 0 for a serial replay; by default as a rebuild has them
    (`default_rebuild_workers`).

    The scratch is dropped afterwards, unless `keep` or `until` asks for it and the
    replay succeeded (the report names it): a failed replay never leaves one behind,
    whose name nobody would have been told. An event that does not decode stops the
    replay with `UnreadableEvent`."""
    cutoff = cutoff_for(until, settings) if until is not None else None  # before any scratch
    scratch = Scratch(settings)
    kept = False
    try:
        with snapshot_engine.connect() as live:
            tracked = dict(
                live.execute(
                    select(projection_tracking.c.projection, projection_tracking.c.position)
                ).all()
            )
            positions = {p.name: int(tracked.get(p.name, 0)) for p in projections}
            report = ReplayReport(until=until, positions=positions, scratch=scratch.location)
            scratch.create([t for p in projections for t in p.tables])
            # Secondary indexes are built once at the end, and only for a scratch that
            # stays to be queried: the diff reads by primary key. On PostgreSQL the
            # insert-only tables are loaded without their primary key too, which is
            # built once after the load (at 1M events: 0.8 s to build, against 6 s of
            # keeping 3M random UUID keys in order while loading).
            indexes = secondary_indexes(projections)
            keyed_after = (
                [t for p in projections for t in p.insert_only_tables]
                if settings.is_postgres
                else []
            )
            with scratch.engine.begin() as conn:
                for _table, index in indexes:
                    index.drop(conn)
                for table in keyed_after:
                    name = conn.execute(
                        text(
                            "SELECT conname FROM pg_constraint "
                            "WHERE conrelid = CAST(:table AS regclass) AND contype = 'p'"
                        ),
                        {"table": f'"{table.name}"'},
                    ).scalar_one()
                    conn.execute(text(f'ALTER TABLE "{table.name}" DROP CONSTRAINT "{name}"'))
            stream = _rebuild(
                live,
                scratch.engine,
                settings,
                mapper,
                projections,
                positions,
                cutoff,
                progress,
                default_rebuild_workers() if workers is None else workers,
            )
            report.events_read = stream.read
            report.events_recorded_by_until = stream.kept
            if until is not None:
                with scratch.engine.begin() as conn:
                    for projection in projections:
                        projection.erase_as_live_has(live, conn)
            if stream.first_left_out is not None:
                report.first_left_out_at = recorded_at(
                    peek_state(mapper, stream.first_left_out.state)
                )
            with scratch.engine.begin() as conn:
                for table in keyed_after:
                    # Plain SQL: SQLAlchemy's AddConstraint would mark the metadata's
                    # key as "added separately" and later CREATE TABLEs would omit it.
                    key = ", ".join(f'"{c.name}"' for c in table.primary_key.columns)
                    conn.execute(text(f'ALTER TABLE "{table.name}" ADD PRIMARY KEY ({key})'))
            if keep or until is not None:
                with scratch.engine.begin() as conn:
                    for _table, index in indexes:
                        index.create(conn)
            tables = [table for projection in projections for table in projection.tables]
            with scratch.engine.connect() as built:
                if until is None:
                    identical = _identical_row_counts(live, built, tables)
                    for table in tables:
                        same_rows = identical[table.name]
                        if same_rows is not None:
                            report.rows_compared += same_rows
                        else:
                            _diff_table(live, built, table, report, max_differences)
                for table in tables:
                    report.row_counts[table.name] = _count(built, table)
        report.kept = kept = keep or until is not None
        return report
    finally:
        if kept:
            scratch.engine.dispose()
        else:
            scratch.drop()


def _notifications(
    live: Connection, settings: Settings, until_position: int
) -> Iterator[Notification]:
    for record in iter_records(live, settings, until=until_position):
        yield Notification(
            id=record.position,
            originator_id=record.aggregate_id,
            originator_version=record.version,
            topic=record.topic,
            state=record.state,
        )


@dataclass(frozen=True)
class RecordedBefore:
    """Whether a notification was recorded before `cutoff` (a replay as of a date)."""

    mapper: Mapper[Any]
    cutoff: datetime

    def __call__(self, notification: Notification) -> bool:
        at = recorded_at(peek_state(self.mapper, notification.state))
        if at is None:
            # Left out, it would make the state as of the date silently wrong.
            raise UnreadableEvent(notification.id, "no recorded time can be read")
        return at < self.cutoff


def _apply_page(
    conn: Connection,
    page: Sequence[Notification],
    projections: Sequence[Projection],
    positions: dict[str, int],
    mapper: Mapper[Any],
    prepared_rows: dict[str, Any] | None = None,
) -> None:
    """Apply `page` (in log order) to `projections`, each up to its live position; a
    projection in `prepared_rows` writes those rows (a worker prepared them) instead."""
    decoded: dict[int, DomainEvent] = {}
    for projection in projections:
        if prepared_rows is not None and projection.name in prepared_rows:
            assert isinstance(projection, PreparedProjection)
            projection.write(conn, prepared_rows[projection.name])
            continue
        target = positions[projection.name]
        batch = [n for n in page if n.id <= target] if page and page[-1].id > target else page
        _decode(projection, batch, mapper, decoded)
        events = page_for(projection, batch, mapper, decoded)
        if events:
            apply_page(conn, projection, events)


def _decode(
    projection: Projection,
    batch: Sequence[Notification],
    mapper: Mapper[Any],
    decoded: dict[int, DomainEvent],
) -> None:
    """Decode into `decoded` what `page_for` will take from it, naming the position of
    an event that does not decode (the library's error names neither it nor the row)."""
    if isinstance(projection, RawProjection):
        return  # the chain reads the stored bytes undecoded
    for notification in batch:
        if notification.topic in projection.topics and notification.id not in decoded:
            try:
                decoded[notification.id] = mapper.to_domain_event(notification)
            # Whatever the library raises (cipher, JSON, topic, constructor): the
            # stored bytes do not make an event.
            except Exception as exc:
                raise UnreadableEvent(notification.id, type(exc).__name__) from exc


class _Stream:
    """The snapshot's notifications in log order, those `keep` accepts (all without
    it), taken a page at a time; `read` counts every notification read, `kept` those
    accepted, and `first_left_out` is the first one `keep` refused."""

    def __init__(
        self, notifications: Iterator[Notification], keep: Callable[[Notification], bool] | None
    ) -> None:
        self._notifications = notifications
        self.keep = keep
        self.read = 0
        self.kept = 0
        self.first_left_out: Notification | None = None
        self._next: Notification | None = None  # read past the last page taken

    def through(self, high: int) -> list[Notification]:
        """The accepted notifications up to position `high`, inclusive."""
        page: list[Notification] = []
        while (notification := self._pull()) is not None:
            if notification.id > high:
                self._next = notification
                break
            if self._accepts(notification):
                page.append(notification)
        return page

    def rest(self) -> Iterator[Notification]:
        while (notification := self._pull()) is not None:
            if self._accepts(notification):
                yield notification

    def _accepts(self, notification: Notification) -> bool:
        if self.keep is None or self.keep(notification):
            self.kept += 1
            return True
        if self.first_left_out is None:
            self.first_left_out = notification
        return False

    def _pull(self) -> Notification | None:
        if self._next is not None:
            held, self._next = self._next, None
            return held
        read = next(self._notifications, None)
        if read is not None:
            self.read += 1
        return read


def _rebuild(
    live: Connection,
    scratch: Engine,
    settings: Settings,
    mapper: Mapper[Any],
    projections: Sequence[Projection],
    positions: dict[str, int],
    cutoff: datetime | None,
    progress: ProgressCallback | None,
    workers: int,
) -> _Stream:
    """Replay the log up to the live positions into `scratch`; return the stream it
    read (how many events it read, how many it kept).

    Pages of REPLAY_PAGE_SIZE events, each in one scratch transaction. On PostgreSQL
    with `workers` > 0, pages are ranges of positions, and worker processes read,
    decode and prepare them for the projections that can (`PreparedProjection`: the
    ledger, most of the work) while this process writes them, applies the others and
    hashes the chain from its own read of the snapshot. The workers read the store
    itself: events up to the snapshot's positions never change. Not on SQLite: its
    workers would fork while this process holds the snapshot's read transaction on
    the file.
    """
    end = max(positions.values(), default=0)
    keep = RecordedBefore(mapper, cutoff) if cutoff is not None else None
    stream = _Stream(_notifications(live, settings, end), keep)
    prepared = [p for p in projections if isinstance(p, PreparedProjection)]
    ranges = (
        RangePreparers.ranges(0, end, REPLAY_PAGE_SIZE)
        if workers > 0 and prepared and settings.is_postgres
        else []
    )
    if ranges:
        preparers = RangePreparers(
            settings,
            mapper,
            prepared,
            scratch.dialect,
            WORKER_READ_PAGE_SIZE,
            label="audit replay",
            keep=keep,
            stops={p.name: positions[p.name] for p in prepared},
        )
        # Forked at the first range asked for, inside `collector_paused`. A worker's
        # failure ends the ranges early; the serial loop below goes on from there.
        with collector_paused(), closing(preparers.run(ranges, workers)) as prepared_ranges:
            for _low, high, _count, rows in prepared_ranges:
                with scratch.begin() as conn:
                    _apply_page(conn, stream.through(high), projections, positions, mapper, rows)
                if progress is not None:
                    progress(high, end)

    def flush(page: list[Notification]) -> None:
        with collector_paused(), scratch.begin() as conn:
            _apply_page(conn, page, projections, positions, mapper)
        if progress is not None:
            progress(page[-1].id, end)

    page: list[Notification] = []
    for notification in stream.rest():
        page.append(notification)
        if len(page) >= REPLAY_PAGE_SIZE:
            flush(page)
            page = []
    if page:
        flush(page)
    with scratch.begin() as conn:
        conn.execute(
            insert(projection_tracking),
            [{"projection": name, "position": pos} for name, pos in positions.items()],
        )
    if progress is not None:
        progress(end, end)
    return stream


def _count(conn: Connection, table: Table) -> int:
    from sqlalchemy import func

    return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def _order_column(conn: Connection, column: Column[Any]) -> Any:
    # Rows are merged in Python by key: the database must order strings the way
    # Python compares them (code points), which is PostgreSQL's "C" collation and
    # SQLite's default BINARY one.
    if conn.dialect.name == "postgresql" and isinstance(column.type, String):
        return column.collate("C")
    return column


DIGEST_CHUNK_ROWS = 10_000


def _identical_row_counts(
    live: Connection, built: Connection, tables: Sequence[Table]
) -> dict[str, int | None]:
    """Per table, the row count if both sides hold exactly the same rows, else None
    (then the row-by-row diff says what differs).

    PostgreSQL hashes each side in chunks of rows in primary-key order, inside the
    server (SHA-256 of the rows' text, one result row per 10,000 rows): nothing is
    fetched row by row, and the two sides are hashed at the same time (the scratch's
    in a second thread; each connection is used by one thread). SQLite compares
    driver tuples a chunk at a time. The same column types on both sides give the
    same text, so equal digests are equal rows; any difference at all sends the table
    to the row diff. A table without a primary key always goes to the row diff.
    """
    keyed = [table for table in tables if table.primary_key.columns]
    counts: dict[str, int | None] = {table.name: None for table in tables}
    if live.dialect.name == "postgresql":

        def digests(conn: Connection) -> list[list[Any]]:
            return [list(conn.exec_driver_sql(_digest_sql(t)).all()) for t in keyed]

        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="replay-digest") as pool:
            built_pending = pool.submit(digests, built)
            live_digests = digests(live)
            built_digests = built_pending.result()
        for table, mine, theirs in zip(keyed, live_digests, built_digests, strict=True):
            if mine == theirs:
                counts[table.name] = sum(int(count) for _digest, count in mine)
        return counts
    for table in keyed:
        counts[table.name] = _count_if_same_tuples(live, built, table)
    return counts


def _count_if_same_tuples(live: Connection, built: Connection, table: Table) -> int | None:
    query = _ordered_select(live, table, list(table.primary_key.columns))
    sql = str(query.compile(dialect=live.dialect))
    live_rows = live.connection.driver_connection.execute(sql)  # type: ignore[union-attr]
    built_rows = built.connection.driver_connection.execute(sql)  # type: ignore[union-attr]
    count = 0
    while True:
        live_chunk = live_rows.fetchmany(DIFF_FETCH_ROWS)
        if live_chunk != built_rows.fetchmany(DIFF_FETCH_ROWS):
            return None
        if not live_chunk:
            return count
        count += len(live_chunk)


def _digest_sql(table: Table) -> str:
    order = ", ".join(
        f'"{c.name}"' + (' COLLATE "C"' if isinstance(c.type, String) else "")
        for c in table.primary_key.columns
    )
    return (
        "SELECT sha256(convert_to(string_agg(r.line, E'\\n' ORDER BY r.n), 'UTF8')), count(*) "
        f"FROM (SELECT t::text AS line, row_number() OVER (ORDER BY {order}) AS n "
        f'FROM "{table.name}" t) r '
        f"GROUP BY (r.n - 1) / {DIGEST_CHUNK_ROWS} ORDER BY (r.n - 1) / {DIGEST_CHUNK_ROWS}"
    )


def _ordered_select(conn: Connection, table: Table, keys: Sequence[Column[Any]]) -> Any:
    return select(table).order_by(*(_order_column(conn, c) for c in keys))


def _stream(conn: Connection, table: Table, keys: Sequence[Column[Any]]) -> Iterator[Any]:
    """The table's rows as tuples in column order, sorted by `keys`."""
    query = _ordered_select(conn, table, keys)
    result = conn.execution_options(yield_per=DIFF_FETCH_ROWS).execute(query)
    for partition in result.partitions():
        yield from map(tuple, partition)


def _diff_table(
    live: Connection, built: Connection, table: Table, report: ReplayReport, limit: int
) -> None:
    keys = list(table.primary_key.columns)
    names = [c.name for c in table.columns]
    withheld = (
        BENEFICIARY_WITHHELD
        if holds_beneficiary_rows(names)
        # A donor's name and a reversal's reason are for admins only (docs/funding.md).
        else DONOR_WITHHELD
        if "donor" in names
        else None
    )
    # In the chain, one changed event changes the hash of every event after it: the
    # rows that differ alike one after another are one difference (a run), so that
    # the listed differences are not all the chain's.
    runs = table.name == audit_chain.name
    run = _Run()

    def record(kind: str, key: dict[str, Any], lrow: Any, rrow: Any, cols: Sequence[str]) -> None:
        report.difference_count += 1
        if runs and run.extends(kind, cols):
            run.rows += 1
            run.last_key = key
            return
        run.close(report)
        if len(report.differences) >= limit:
            return
        if runs:
            run.open(len(report.differences), kind, cols, key)
        if withheld is not None:
            report.differences.append(
                RowDifference(table.name, {}, kind, tuple(cols), None, None, withheld=withheld)
            )
        else:
            report.differences.append(
                RowDifference(
                    table.name,
                    key,
                    kind,
                    tuple(cols),
                    None if lrow is None else dict(zip(names, lrow, strict=True)),
                    None if rrow is None else dict(zip(names, rrow, strict=True)),
                )
            )

    if not keys:
        # No primary key: compare as multisets of whole rows.
        live_rows = Counter(_stream(live, table, []))
        built_rows = Counter(_stream(built, table, []))
        report.rows_compared += sum(live_rows.values())
        for row, count in (live_rows - built_rows).items():
            for _ in range(count):
                record("missing in replay", dict(zip(names, row, strict=True)), row, None, names)
        for row, count in (built_rows - live_rows).items():
            for _ in range(count):
                record("missing in live", dict(zip(names, row, strict=True)), None, row, names)
        return

    key_names = [c.name for c in keys]
    key_indexes = [names.index(k) for k in key_names]

    def key_of(row: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple([row[i] for i in key_indexes])

    live_iter = _stream(live, table, keys)
    built_iter = _stream(built, table, keys)
    lrow = next(live_iter, None)
    rrow = next(built_iter, None)
    compared = 0
    while lrow is not None and rrow is not None:
        # Most rows are equal: one tuple comparison in C, keys only when they differ.
        if lrow == rrow:
            run.close(report)
            compared += 1
            lrow = next(live_iter, None)
            rrow = next(built_iter, None)
            continue
        lkey, rkey = key_of(lrow), key_of(rrow)
        if lkey < rkey:
            record("missing in replay", dict(zip(key_names, lkey, strict=True)), lrow, None, [])
            compared += 1
            lrow = next(live_iter, None)
        elif rkey < lkey:
            record("missing in live", dict(zip(key_names, rkey, strict=True)), None, rrow, [])
            rrow = next(built_iter, None)
        else:
            changed = [n for n, lv, rv in zip(names, lrow, rrow, strict=True) if lv != rv]
            record("differs", dict(zip(key_names, lkey, strict=True)), lrow, rrow, changed)
            compared += 1
            lrow = next(live_iter, None)
            rrow = next(built_iter, None)
    while lrow is not None:
        record("missing in replay", dict(zip(key_names, key_of(lrow), strict=True)), lrow, None, [])
        compared += 1
        lrow = next(live_iter, None)
    while rrow is not None:
        record("missing in live", dict(zip(key_names, key_of(rrow), strict=True)), None, rrow, [])
        rrow = next(built_iter, None)
    run.close(report)
    report.rows_compared += compared


class _Run:
    """The run of chain rows that differ alike being listed as one difference."""

    def __init__(self) -> None:
        self.index: int | None = None  # of its difference in the report; None: no run
        self.kind = ""
        self.columns: tuple[str, ...] = ()
        self.rows = 0
        self.last_key: dict[str, Any] = {}

    def open(self, index: int, kind: str, columns: Sequence[str], key: dict[str, Any]) -> None:
        self.index, self.kind, self.columns = index, kind, tuple(columns)
        self.rows, self.last_key = 1, key

    def extends(self, kind: str, columns: Sequence[str]) -> bool:
        return self.index is not None and kind == self.kind and tuple(columns) == self.columns

    def close(self, report: ReplayReport) -> None:
        """Write the run's extent into its difference (once, not at every row: a
        chain changed early in a million events is a million rows)."""
        if self.index is None:
            return
        if self.rows > 1:
            first = report.differences[self.index]
            report.differences[self.index] = replace(first, rows=self.rows, last_key=self.last_key)
        self.index = None
