"""Idempotent command execution shared by every application service.

A command runs optimistically: it decides (in memory), then its aggregates and an
`IdempotencyClaim` for the client's key are saved in ONE atomic save. So the key is
claimed exactly when the command's effects are recorded, never one without the other.
If the save collides (the key was claimed before, or another command changed the
same aggregate first), nothing of this command is written and we find out why:

- the key's claim exists with the same request hash  -> return the original result
- the key's claim exists with another request hash   -> IdempotencyKeyReused
- no claim                                           -> LostRace (or the caller's own
  duplicate rule, e.g. a journal entry whose cause was already posted)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from services.common.auth import requester
from services.common.errors import (
    CoopError,
    IdempotencyKeyReused,
    LostRace,
    ValidationError,
    lost_race,
)
from services.common.eventstore import CoopApplication

IDEMPOTENCY_NAMESPACE = uuid5(NAMESPACE_URL, "urn:coop:idempotency-key")

R = TypeVar("R")


class IdempotencyClaim(Aggregate):
    """A client's idempotency key, bound to the request it first came with."""

    class Claimed(Aggregate.Created):
        operation: str
        request_hash: str
        result_ref: dict[str, str]

    def __init__(self, operation: str, request_hash: str, result_ref: dict[str, str]) -> None:
        self.operation = operation
        self.request_hash = request_hash
        self.result_ref = result_ref


def claim_id_for(key: str) -> UUID:
    return uuid5(IDEMPOTENCY_NAMESPACE, key)


def request_hash(operation: str, request: Mapping[str, Any]) -> str:
    canonical = json.dumps(
        {"operation": operation, "request": request},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


STATE_REF = "state"


def ref_with_state(ref: dict[str, str], state: Mapping[str, Any]) -> dict[str, str]:
    """A result reference that carries the result's own state, for a result a later
    command may replace (a configuration version set again for its date): a replay
    answers with what this request stored, not with what replaced it."""
    return {**ref, STATE_REF: json.dumps(state, sort_keys=True)}


def state_in_ref(ref: Mapping[str, str]) -> dict[str, Any] | None:
    """The state `ref_with_state` kept; None in references stored without one."""
    text = ref.get(STATE_REF)
    return None if text is None else dict(json.loads(text))


def check_idempotency_key(key: str, *, max_length: int) -> None:
    if not key or not key.strip():
        raise ValidationError("idempotencyKey", "must not be empty")
    if len(key) > max_length:
        raise ValidationError("idempotencyKey", f"must be at most {max_length} characters")


@dataclass(frozen=True)
class Decision(Generic[R]):
    """What a command decided: the aggregates to save and the result to return."""

    aggregates: tuple[Aggregate, ...]
    result: R
    result_ref: dict[str, str]


@dataclass(frozen=True)
class Outcome(Generic[R]):
    """A command's result and the notification position a reader must wait for."""

    result: R
    position: int
    replayed: bool


def execute_idempotent(
    app: CoopApplication,
    *,
    key: str,
    operation: str,
    request: Mapping[str, Any],
    decide: Callable[[], Decision[R]],
    load_result: Callable[[Mapping[str, str]], R],
    on_collision: Callable[[], Decision[R] | Outcome[R] | None] | None = None,
    earlier_requests: Callable[[], Sequence[Mapping[str, Any]]] | None = None,
) -> Outcome[R]:
    """`on_collision`: when the save collides with something other than this key's
    claim (another request made the same thing: one cause's entry, one position's
    published head), the existing result, or None (the request lost a race). As an
    Outcome, it is answered and nothing is stored: right where deciding again always
    finds the same result (one cause's entry). As a Decision with no aggregates, it
    becomes this key's answer for good: its claim is stored with it, so a retry
    answers the same even after the state moved on (a published head: the chain grew).

    `earlier_requests`: the same request as an earlier release fingerprinted it, for
    an operation whose fingerprint changed: a retry spanning the upgrade is still
    recognised (asked only when a claim's fingerprint differs)."""
    check_idempotency_key(key, max_length=app.settings.max_idempotency_key_length)
    # The fingerprint names a device by its name, not by the key it used (`requester`);
    # claims stored before it did named the key, as the request does.
    digest = request_hash(operation, _by_requester(request))

    def earlier_digests() -> set[str]:
        requests = [request, *(earlier_requests() if earlier_requests is not None else ())]
        return {
            request_hash(operation, fingerprinted)
            for earlier in requests
            for fingerprinted in (earlier, _by_requester(earlier))
        }

    claim_id = claim_id_for(key)

    def replayed() -> Outcome[R] | None:
        """This key's stored answer, if it has one (IdempotencyKeyReused if stored
        for another request)."""
        return _replay(app, claim_id, digest, key, load_result, earlier_digests)

    def claim(result_ref: dict[str, str]) -> IdempotencyClaim:
        return IdempotencyClaim._create(
            IdempotencyClaim.Claimed,
            id=claim_id,
            operation=operation,
            request_hash=digest,
            result_ref=result_ref,
        )

    try:
        decision = decide()
    except CoopError:
        # A retry of a command that succeeded before may now fail validation (the
        # state moved on): the client must still get the original answer.
        if (replay := replayed()) is not None:
            return replay
        raise
    try:
        recordings = app.save(*decision.aggregates, claim(decision.result_ref))
    except CoopError:
        # The save's own checks (PostgreSQL's guarded insert re-reads the chart of
        # accounts before it inserts) may refuse a retry whose first answer was
        # stored, by another process, before the state moved on: answer it first.
        if (replay := replayed()) is not None:
            return replay
        raise
    except IntegrityError:
        if (replay := replayed()) is not None:
            return replay
        existing = None if on_collision is None else on_collision()
        if existing is None:
            raise LostRace(lost_race(operation)) from None
        if isinstance(existing, Outcome):
            return existing
        assert not existing.aggregates, "an existing result saves nothing but the claim"
        try:
            recordings = app.save(claim(existing.result_ref))
        except IntegrityError:
            # This key's own claim, saved meanwhile by a double tap: its answer.
            if (replay := replayed()) is not None:
                return replay
            raise LostRace(lost_race(operation)) from None
        position = max((r.notification.id for r in recordings), default=0)
        return Outcome(result=existing.result, position=position, replayed=True)
    position = max((r.notification.id for r in recordings), default=0)
    return Outcome(result=decision.result, position=position, replayed=False)


def _by_requester(request: Mapping[str, Any]) -> Mapping[str, Any]:
    actor = request.get("actor")
    if isinstance(actor, str) and requester(actor) != actor:
        return {**request, "actor": requester(actor)}
    return request


def _replay(
    app: CoopApplication,
    claim_id: UUID,
    digest: str,
    key: str,
    load_result: Callable[[Mapping[str, str]], R],
    earlier_digests: Callable[[], set[str]],
) -> Outcome[R] | None:
    try:
        claim: IdempotencyClaim = app.repository.get(claim_id)
    except AggregateNotFoundError:
        return None
    if claim.request_hash != digest and claim.request_hash not in earlier_digests():
        raise IdempotencyKeyReused(key_hint(key))
    # The original write may not be projected yet: wait for the head, not for zero.
    head = app.recorder.max_notification_id() or 0
    return Outcome(result=load_result(claim.result_ref), position=head, replayed=True)


def key_hint(key: str) -> str:
    # Keys are client-chosen strings; show only a short prefix in messages and logs.
    return repr(key[:8] + ("..." if len(key) > 8 else ""))
