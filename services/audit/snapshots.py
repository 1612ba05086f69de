"""Every stored snapshot against the state its aggregate's events produce.

The applications load a snapshotted aggregate (the fund's book, the chart of
accounts, the hotel's and the shop's configuration, tills, cash sessions) from its
latest snapshot and the events after it. The chain covers the events only, so a
snapshot is checked by rebuilding its aggregate from event 1 up to the snapshot's
version (never from an earlier snapshot, which could be the one changed) and
comparing the two states as the store holds them (JSON). One pass per aggregate
checks all its snapshots in order; nothing is decrypted beyond the library's own
framing, as for the events.

Cost: every event of a snapshotted aggregate up to its last snapshot is read,
decoded and applied once, and each snapshot's state is encoded once
(docs/audit.md, "Snapshots", for the figure).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import groupby
from operator import itemgetter
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Mapper, StoredEvent
from eventsourcing.utils import get_topic
from sqlalchemy import Connection

from services.audit.domain.snapshots import (
    EVENTS_DO_NOT_REBUILD,
    MAX_ATTRIBUTES_NAMED,
    SNAPSHOT_BEYOND_EVENTS,
    SNAPSHOT_DIFFERS,
    SNAPSHOT_OTHER_CLASS,
    SNAPSHOT_UNREADABLE,
    SnapshotFinding,
    class_name,
    differing_attributes,
)
from services.audit.store import (
    iter_aggregate_records,
    peek_state,
    read_snapshot,
    snapshot_keys,
)
from services.common.settings import Settings
from services.welfare_fund.domain import BENEFICIARY_WITHHELD, Beneficiary

BENEFICIARY_TOPIC = get_topic(Beneficiary)

# Findings kept for the answer; every one is counted. A snapshot taken from a changed
# one differs too, so one change can fail each later snapshot of its aggregate.
MAX_SNAPSHOT_FINDINGS = 100


@dataclass(frozen=True)
class SnapshotCheck:
    checked: int  # every stored snapshot, each compared or found uncheckable
    failed: int  # snapshots that did not match, or could not be checked
    findings: tuple[SnapshotFinding, ...]  # the first MAX_SNAPSHOT_FINDINGS of them
    events_replayed: int  # events read and applied to rebuild the aggregates


def check_snapshots(conn: Connection, settings: Settings, mapper: Mapper[Any]) -> SnapshotCheck:
    """Check every stored snapshot, in `conn`'s transaction (the same read-only
    snapshot of the database as the chain's check)."""
    checked = failed = replayed = 0
    findings: list[SnapshotFinding] = []
    for aggregate_id, keys in groupby(snapshot_keys(conn, settings), key=itemgetter(0)):
        versions = [version for _id, version in keys]
        outcome = _AggregateCheck(conn, settings, mapper, aggregate_id, versions)
        for finding in outcome.run():
            failed += 1
            if len(findings) < MAX_SNAPSHOT_FINDINGS:
                findings.append(finding)
        checked += len(versions)
        replayed += outcome.events_replayed
    return SnapshotCheck(checked, failed, tuple(findings), replayed)


class _AggregateCheck:
    """One aggregate's snapshots (`versions`, ascending) against one pass over its
    events."""

    def __init__(
        self,
        conn: Connection,
        settings: Settings,
        mapper: Mapper[Any],
        aggregate_id: UUID,
        versions: Sequence[int],
    ) -> None:
        self.conn = conn
        self.settings = settings
        self.mapper = mapper
        self.aggregate_id = aggregate_id
        self.versions = versions
        self.events_replayed = 0
        self.aggregate_topic = ""

    def run(self) -> Iterator[SnapshotFinding]:
        pending = list(reversed(self.versions))  # next one last
        aggregate: Any = None
        records = iter_aggregate_records(
            self.conn, self.settings, self.aggregate_id, until_version=self.versions[-1]
        )
        for record in records:
            try:
                event: Any = self.mapper.to_domain_event(
                    StoredEvent(
                        originator_id=self.aggregate_id,
                        originator_version=record.version,
                        topic=record.topic,
                        state=record.state,
                    )
                )
                aggregate = event.mutate(aggregate)
            # Whatever an event's own code raises (a topic no longer importable, a
            # field it no longer has, a version out of sequence): the aggregate cannot
            # be rebuilt here, which is a finding, not a failed verification run.
            except Exception:
                break
            self.events_replayed += 1
            self.aggregate_topic = get_topic(type(aggregate))
            while pending and pending[-1] == aggregate.version:
                finding = self._compare(aggregate, pending.pop())
                if finding is not None:
                    yield finding
        else:
            # Every event up to the last snapshot applied: any snapshot left has a
            # version the aggregate never reached.
            for version in reversed(pending):
                yield self._finding(version, SNAPSHOT_BEYOND_EVENTS)
            return
        for version in reversed(pending):
            yield self._finding(version, EVENTS_DO_NOT_REBUILD)

    def _compare(self, aggregate: Any, version: int) -> SnapshotFinding | None:
        stored = read_snapshot(self.conn, self.settings, self.aggregate_id, version)
        if stored is None:
            return None  # listed in this same snapshot of the database: not reached
        row_topic, state = stored
        body = peek_state(self.mapper, state)
        if body is None or not isinstance(body.get("state"), dict):
            return self._finding(version, SNAPSHOT_UNREADABLE)
        try:
            # As the application takes it (Application.take_snapshot), encoded as
            # the store would hold it: JSON values compare alike on both sides.
            expected = type(aggregate).Snapshot.take(aggregate)
            rebuilt = json.loads(self.mapper.transcoder.encode(expected.state))
        except Exception:  # a state this process cannot encode: not checkable here
            return self._finding(version, EVENTS_DO_NOT_REBUILD)
        if row_topic != get_topic(type(expected)) or body.get("topic") != expected.topic:
            return self._finding(version, SNAPSHOT_OTHER_CLASS)
        differing = differing_attributes(body["state"], rebuilt)
        if differing:
            return self._finding(version, SNAPSHOT_DIFFERS, tuple(differing[:MAX_ATTRIBUTES_NAMED]))
        return None

    def _finding(
        self, version: int, reason: str, attributes: tuple[str, ...] = ()
    ) -> SnapshotFinding:
        topic = self.aggregate_topic or self._stored_topic(version)
        withheld = BENEFICIARY_WITHHELD if topic == BENEFICIARY_TOPIC else None
        return SnapshotFinding(
            aggregate_id=None if withheld else self.aggregate_id,
            aggregate_type=class_name(topic) if topic else "unknown",
            version=version,
            reason=reason,
            attributes=attributes,
            withheld=withheld,
        )

    def _stored_topic(self, version: int) -> str:
        """The aggregate's class as its snapshot names it, when no event rebuilt it."""
        stored = read_snapshot(self.conn, self.settings, self.aggregate_id, version)
        body = None if stored is None else peek_state(self.mapper, stored[1])
        topic = None if body is None else body.get("topic")
        return topic if isinstance(topic, str) else ""
