"""Snapshot findings: a stored snapshot against the state its events produce (pure).

Snapshots are not events: they are not in the notification log, so the hash chain
does not cover them, yet an application loads an aggregate from its latest snapshot
and only the events after it. A snapshot edited in the database (a policy's share)
would change every later decision while the chain still verified. So verification
rebuilds each snapshotted aggregate from its events and compares (docs/audit.md,
"Snapshots").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

SNAPSHOT_DIFFERS = "the stored snapshot differs from the state its events produce"
SNAPSHOT_UNREADABLE = "the stored snapshot does not decode"
SNAPSHOT_BEYOND_EVENTS = "the stored snapshot's version is not one the aggregate's events reach"
SNAPSHOT_OTHER_CLASS = "the stored snapshot is of another class than its aggregate"
EVENTS_DO_NOT_REBUILD = (
    "the aggregate's events do not rebuild it (an event does not decode or apply), "
    "so its snapshot cannot be checked"
)
SNAPSHOTS_FAILED = "a stored snapshot differs from what its events produce"

# Attribute names listed in a finding, at most: names only (never values), enough to
# point at what was changed; a longer list says nothing more.
MAX_ATTRIBUTES_NAMED = 10
_ABSENT = object()


@dataclass(frozen=True)
class SnapshotFinding:
    """One stored snapshot that cannot be trusted. Names the aggregate (its id and
    class), the version and the attributes that differ: no values, which could be
    anything someone wrote into the row. The id of an aggregate that is one
    beneficiary is withheld (`withheld`), as her events are; none is snapshotted
    today."""

    aggregate_id: UUID | None
    aggregate_type: str  # the class within its module, e.g. "WelfareFund"
    version: int
    reason: str
    attributes: tuple[str, ...] = ()
    withheld: str | None = None


def differing_attributes(stored: Mapping[str, Any], rebuilt: Mapping[str, Any]) -> list[str]:
    """The top-level attributes whose values differ between two snapshot states (JSON
    values, as stored), one missing on either side included: a snapshot without an
    attribute loads as an aggregate without it, which code written for older
    snapshots reads as "not kept" (the fund's dated availability), not as empty."""
    names = sorted(set(stored) | set(rebuilt))
    return [n for n in names if stored.get(n, _ABSENT) != rebuilt.get(n, _ABSENT)]


def class_name(topic: str) -> str:
    """The class path within its module ("WelfareFund") of a topic."""
    return topic.rpartition(":")[2]
