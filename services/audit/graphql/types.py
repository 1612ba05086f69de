"""GraphQL types of the audit."""

from __future__ import annotations

from datetime import UTC, date, datetime

import strawberry

from services.audit.application import HistoryEvent
from services.audit.domain import SnapshotFinding, VerifyResult
from services.audit.snapshots import MAX_SNAPSHOT_FINDINGS
from services.audit.store import ChainHead, PublishedHeadRow
from services.common.graphql import PageInfo


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)  # SQLite: UTC


@strawberry.type(name="SnapshotFinding")
class SnapshotFindingType:
    aggregate_id: strawberry.ID | None = strawberry.field(
        description="Null when withheld: an aggregate that is one beneficiary."
    )
    aggregate_type: str = strawberry.field(
        description='The aggregate\'s class, e.g. "WelfareFund".'
    )
    version: int = strawberry.field(description="The snapshot's version.")
    reason: str
    attributes: list[str] = strawberry.field(
        description="Names of the state's attributes that differ (never their values)."
    )
    withheld: str | None = strawberry.field(description='"beneficiary" when the id is withheld.')

    @classmethod
    def from_finding(cls, finding: SnapshotFinding) -> SnapshotFindingType:
        return cls(
            aggregate_id=None
            if finding.aggregate_id is None
            else strawberry.ID(str(finding.aggregate_id)),
            aggregate_type=finding.aggregate_type,
            version=finding.version,
            reason=finding.reason,
            attributes=list(finding.attributes),
            withheld=finding.withheld,
        )


@strawberry.type
class VerifyLedgerResult:
    ok: bool
    events_checked: int
    head_position: int = strawberry.field(description="The last position checked.")
    head_hash: str = strawberry.field(description="Recomputed chain hash there (hex).")
    first_bad_position: int | None
    reason: str | None
    log_head_position: int = strawberry.field(
        description="The event log's last position when checked: events after "
        "headPosition are not chained yet (the chain's projector is behind) and were not "
        "checked."
    )
    snapshots_checked: int = strawberry.field(
        description="Stored snapshots compared with the state their aggregate's events "
        "produce (snapshots are not chained, so they are checked apart)."
    )
    snapshots_failed: int = strawberry.field(
        description="Snapshots that differ from their events or could not be checked; "
        "any makes ok false."
    )
    snapshot_findings: list[SnapshotFindingType] = strawberry.field(
        description=f"The first {MAX_SNAPSHOT_FINDINGS} of them, each naming the aggregate "
        "and the version."
    )

    @classmethod
    def from_result(cls, result: VerifyResult) -> VerifyLedgerResult:
        return cls(
            ok=result.ok,
            events_checked=result.events_checked,
            head_position=result.head_position,
            head_hash=result.head_hash.hex(),
            first_bad_position=result.first_bad_position,
            reason=result.reason,
            log_head_position=result.log_head_position,
            snapshots_checked=result.snapshots_checked,
            snapshots_failed=result.snapshots_failed,
            snapshot_findings=[
                SnapshotFindingType.from_finding(f) for f in result.snapshot_findings
            ],
        )


@strawberry.type
class AuditHead:
    position: int
    hash: str

    @classmethod
    def from_head(cls, head: ChainHead) -> AuditHead:
        return cls(position=head.position, hash=head.hash.hex())


@strawberry.type
class PublishedAuditHead:
    position: int
    hash: str
    published_at: datetime
    actor: str
    chain_format: int = strawberry.field(
        description=(
            "The chain format the hash is in: 2 now, 1 for heads published before "
            "2026-11 (docs/audit.md); verification checks each in its own."
        )
    )

    @classmethod
    def from_row(cls, row: PublishedHeadRow) -> PublishedAuditHead:
        return cls(
            position=row.position,
            hash=row.hash,
            published_at=_aware(row.published_at),
            actor=row.actor,
            chain_format=row.chain_format,
        )


@strawberry.type
class PublishedAuditHeadConnection:
    nodes: list[PublishedAuditHead]
    page_info: PageInfo


@strawberry.type
class AuditEvent:
    position: int = strawberry.field(description="Position in the event log.")
    aggregate_id: strawberry.ID
    version: int
    type: str = strawberry.field(description='The event class, e.g. "JournalEntry.Posted".')
    topic: str
    recorded_at: datetime | None
    effective_date: date | None = strawberry.field(
        description="The date the event takes effect, for events that have one."
    )
    actor: str | None
    causation_id: str | None = strawberry.field(
        description="Why it happened (a ledger entry's cause), for events that carry one."
    )
    chain_hash: str | None = strawberry.field(description="Null until chained.")

    @classmethod
    def from_event(cls, event: HistoryEvent) -> AuditEvent:
        return cls(
            position=event.position,
            aggregate_id=strawberry.ID(str(event.aggregate_id)),
            version=event.version,
            type=event.type,
            topic=event.topic,
            recorded_at=None if event.recorded_at is None else _aware(event.recorded_at),
            effective_date=event.effective_date,
            actor=event.actor,
            causation_id=event.causation_id,
            chain_hash=None if event.chain_hash is None else event.chain_hash.hex(),
        )


@strawberry.type
class EventHistoryConnection:
    nodes: list[AuditEvent]
    page_info: PageInfo
