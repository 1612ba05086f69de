"""Audit application service: publish heads (write), verify and read history (read-only)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import JSONTranscoder
from sqlalchemy import Connection, Engine, select

from services.audit.domain import (
    CHAIN_FORMAT,
    GENESIS_HASH,
    NOT_THROUGH_EXPECTED,
    SNAPSHOTS_FAILED,
    PublishedHead,
    StoredRecord,
    VerifyResult,
    head_id_for,
    verify,
)
from services.audit.projections.tables import audit_chain
from services.audit.snapshots import check_snapshots
from services.audit.store import (
    ChainHead,
    PublishedHeadRow,
    chain_hash_at,
    chain_head,
    claims_for_a_beneficiary,
    create_snapshot_engine,
    effective_date,
    events_table,
    head_position,
    heads_to_meet,
    iter_chain,
    iter_records,
    peek_state,
    published_heads,
    recorded_at,
    text_field,
)
from services.common.errors import Conflict, ValidationError
from services.common.eventstore import CoopApplication
from services.common.idempotency import Decision, Outcome, execute_idempotent
from services.common.settings import Settings
from services.hotel.application import SNAPSHOT_TRANSCODINGS as HOTEL_TRANSCODINGS
from services.ledger.application import AccountAsDict
from services.welfare_fund.domain.privacy import BENEFICIARY_EVENT_TOPIC_PREFIX

# A beneficiary's events are hers: their dates alone (enrolled, attended each month,
# stipends committed) are a timeline of a woman the fund protects. Not for auditors or
# admins, who read everything else; fund officers have their own views.
_BENEFICIARY_EVENTS = BENEFICIARY_EVENT_TOPIC_PREFIX + "%"

ProgressCallback = Callable[[int, int], None]  # (position reached, head)


@dataclass(frozen=True)
class HistoryEvent:
    position: int
    aggregate_id: UUID
    version: int
    topic: str
    recorded_at: datetime | None
    effective_date: date | None
    actor: str | None
    causation_id: str | None
    chain_hash: bytes | None

    @property
    def type(self) -> str:
        """The event's class path within its module, e.g. "JournalEntry.Posted"."""
        return self.topic.rpartition(":")[2]


class AuditApplication(CoopApplication):
    def __init__(
        self,
        settings: Settings,
        *,
        create_table: bool = True,
        share_store_with: CoopApplication | None = None,
    ) -> None:
        super().__init__(settings, create_table=create_table, share_store_with=share_store_with)
        self._read_engine: Engine | None = None

    @property
    def read_engine(self) -> Engine:
        """Read-only snapshot engine (created on first use, disposed in close())."""
        if self._read_engine is None:
            self._read_engine = create_snapshot_engine(self.settings)
        return self._read_engine

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        # Verification encodes every snapshotted aggregate's state as its own
        # application stores it: the chart of accounts holds Account values, the hotel's
        # configuration HotelPolicy and Room values. A context
        # that registers a transcoding of its own registers it here too, or each of
        # its snapshots is reported as one that cannot be checked.
        super().register_transcodings(transcoder)
        transcoder.register(AccountAsDict())
        for transcoding in HOTEL_TRANSCODINGS:
            transcoder.register(transcoding)

    def close(self) -> None:
        if self._read_engine is not None:
            self._read_engine.dispose()
            self._read_engine = None
        super().close()

    # -- publishing ------------------------------------------------------------

    def publish_head(self, *, key: str, actor: str) -> Outcome[PublishedHead]:
        """Record the chain's current head as a published head (once per position)."""

        def decide() -> Decision[PublishedHead]:
            with self.read_engine.connect() as conn:
                head = _current_head(conn)
            published = PublishedHead.publish(
                position=head.position, head_hash=head.hash.hex(), actor=actor
            )
            return Decision((published,), published, {"head_id": str(published.id)})

        def already_published() -> Decision[PublishedHead] | None:
            with self.read_engine.connect() as conn:
                head = _current_head(conn)
            try:
                existing: PublishedHead = self.repository.get(head_id_for(head.position))
            except AggregateNotFoundError:
                return None
            return Decision((), existing, {"head_id": str(existing.id)})

        return execute_idempotent(
            self,
            key=key,
            operation="publishAuditHead",
            # The head is decided by the server at first execution; a retry with the
            # same key returns that head even after the chain has grown.
            request={"actor": actor},
            decide=decide,
            load_result=self._load_head,
            on_collision=already_published,
        )

    def _load_head(self, ref: Mapping[str, str]) -> PublishedHead:
        head: PublishedHead = self.repository.get(UUID(ref["head_id"]))
        return head

    # -- verification ------------------------------------------------------------

    def verify(
        self,
        *,
        from_published_head: bool = False,
        expect: ChainHead | None = None,
        progress: ProgressCallback | None = None,
    ) -> VerifyResult:
        """Recompute the chain from event 0 (or from a published head) and compare.

        The recomputation must agree with the stored chain row by row, pass through
        every published head after its start, and pass through `expect` (a head the
        caller holds outside this database, which is what makes a rewritten chain
        detectable). `from_published_head` starts at the latest published head; with
        `expect`, at the latest published head before `expect` (event 0 if none is), so
        the held head is always recomputed: starting at or after it could only trust
        it, and the published heads are a table an insider can rewrite.

        Heads in chain format 1 (published, or held, from before format 2) are checked
        in their own format, which a run from event 0 recomputes alongside; a run
        from a published head starts only from a head in the current format.

        Every stored snapshot is then compared with its aggregate rebuilt from its
        events (whatever the start: snapshots are outside the chain); one that
        differs fails the verification, with a finding naming it.
        """
        with self.read_engine.connect() as conn:
            result = self._verify_chain(conn, from_published_head, expect, progress)
            # In the same read-only snapshot: the snapshots checked are those of the
            # events just chained.
            snapshots = check_snapshots(conn, self.settings, self.mapper)
        return replace(
            result,
            ok=result.ok and snapshots.failed == 0,
            reason=result.reason or (SNAPSHOTS_FAILED if snapshots.failed else None),
            snapshots_checked=snapshots.checked,
            snapshots_failed=snapshots.failed,
            snapshot_findings=snapshots.findings,
        )

    def _verify_chain(
        self,
        conn: Connection,
        from_published_head: bool,
        expect: ChainHead | None,
        progress: ProgressCallback | None,
    ) -> VerifyResult:
        heads = published_heads(conn)
        start = ChainHead(0, GENESIS_HASH)
        if from_published_head:
            start = _starting_head(heads, expect)
            if start.position and chain_hash_at(conn, start.position) != start.hash:
                return VerifyResult(
                    False,
                    0,
                    start.position,
                    start.hash,
                    start.position,
                    "the chain does not pass through the published head",
                    start_position=start.position,
                )
        # Published heads up to the start are what a run from a published head
        # takes on trust (the start itself was just compared with the chain).
        expected: dict[int, list[bytes]] = {}
        v1_positions = [0]
        for published in heads_to_meet(conn, self.settings, after=start.position):
            expected.setdefault(published.position, []).append(published.hash)
            if published.chain_format == 1:
                v1_positions.append(published.position)
        if expect is not None:
            expected.setdefault(expect.position, []).append(expect.hash)
        head = head_position(conn, self.settings)

        def run(v1_until: int) -> VerifyResult:
            records = iter_records(conn, self.settings, after=start.position)
            if progress is not None:
                records = _reporting(records, head, progress)
            return verify(
                records,
                iter_chain(conn, after=start.position),
                start_position=start.position,
                start_hash=start.hash,
                expected=expected,
                v1_until=v1_until,
            )

        result = run(max(v1_positions))
        if (
            expect is not None
            and not result.ok
            and result.first_bad_position == expect.position
            and result.reason == NOT_THROUGH_EXPECTED
            and start.position == 0
            and expect.position > max(v1_positions)
        ):
            # A head someone kept may predate format 2 (its format is not known
            # as a published head's is): it is met in either. Format 1 is then
            # recomputed in a second pass, which a current-format head, the
            # usual case, never costs.
            result = run(expect.position)
        return replace(result, log_head_position=head)

    # -- history -----------------------------------------------------------------

    def history(self, aggregate_id: UUID, *, after_version: int, first: int) -> list[HistoryEvent]:
        """An aggregate's events in version order (a page of `first` after a version).

        A beneficiary's own events and the idempotency claim of a command on her are
        left out, as the export withholds them: her aggregate, and such a claim's (a
        claim is one event), read exactly as an id with no events."""
        events, position = events_table(self.settings)
        # SQLite stores ids as 32 hex digits (the library writes UUID.hex).
        key: object = aggregate_id if self.settings.is_postgres else aggregate_id.hex
        with self.read_engine.connect() as conn:
            rows = conn.execute(
                select(
                    position,
                    events.c.originator_version,
                    events.c.topic,
                    events.c.state,
                    audit_chain.c.hash,
                )
                .select_from(events.outerjoin(audit_chain, audit_chain.c.position == position))
                .where(events.c.originator_id == key)
                .where(events.c.topic.not_like(_BENEFICIARY_EVENTS))
                .where(events.c.originator_version > after_version)
                .order_by(events.c.originator_version)
                .limit(first)
            ).all()
        out: list[HistoryEvent] = []
        for notification_id, version, topic, stored, digest in rows:
            state = peek_state(self.mapper, bytes(stored))
            if claims_for_a_beneficiary(str(topic), state):
                continue
            out.append(
                HistoryEvent(
                    position=int(notification_id),
                    aggregate_id=aggregate_id,
                    version=int(version),
                    topic=str(topic),
                    recorded_at=recorded_at(state),
                    effective_date=effective_date(state),
                    actor=text_field(state, "actor", "approver"),
                    causation_id=text_field(state, "cause_id", "causation_id"),
                    chain_hash=None if digest is None else bytes(digest),
                )
            )
        return out


def _current_head(conn: Connection) -> ChainHead:
    head = chain_head(conn)
    if head is None:
        raise Conflict("the chain is empty: nothing to publish yet")
    return head


def _starting_head(heads: Sequence[PublishedHeadRow], expect: ChainHead | None) -> ChainHead:
    """The latest published head in the current chain format, or with `expect` the
    latest before it (`heads` in position order); event 0 (the genesis hash) when
    there is none."""
    usable = [
        h
        for h in heads
        if h.chain_format == CHAIN_FORMAT and (expect is None or h.position < expect.position)
    ]
    if not usable:
        return ChainHead(0, GENESIS_HASH)
    return ChainHead(usable[-1].position, bytes.fromhex(usable[-1].hash))


def _reporting(
    records: Iterator[StoredRecord], head: int, progress: ProgressCallback, every: int = 10_000
) -> Iterator[StoredRecord]:
    for count, record in enumerate(records, start=1):
        yield record
        if count % every == 0:
            progress(record.position, head)
    progress(head, head)


def parse_head(text: str, *, field: str = "expect") -> ChainHead:
    """`POSITION:HEX` as printed by `coop audit head`; `field` names the input that
    carried it in the error (the CLI's `expect`, GraphQL's `expectHead`)."""
    position, _, digest = text.partition(":")
    try:
        parsed = ChainHead(int(position), bytes.fromhex(digest))
    except ValueError:
        raise ValidationError(field, "a head is POSITION:HASH, e.g. 1234:9f86d0...") from None
    if parsed.position < 1 or len(parsed.hash) != 32:
        raise ValidationError(field, "a head is POSITION:HASH with a 64-digit hex hash")
    return parsed
