"""Published heads: (position, hash) pairs the cooperative hands to its auditors.

A head is itself an event in the store, so publishing is part of the history it
vouches for; its id derives from the position, so a head is published once.
"""

from __future__ import annotations

from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate

from services.audit.domain.chain import CHAIN_FORMAT

HEAD_NAMESPACE = uuid5(NAMESPACE_URL, "urn:coop:audit:published-head")


def head_id_for(position: int) -> UUID:
    return uuid5(HEAD_NAMESPACE, str(position))


class PublishedHead(Aggregate):
    class Published(Aggregate.Created):
        position: int
        head_hash: str  # hex SHA-256
        actor: str
        # The chain format the hash is in (services/audit/domain/chain.py); heads
        # published before the field was kept are format 1.
        chain_format: int = 1

    def __init__(self, position: int, head_hash: str, actor: str, chain_format: int = 1) -> None:
        self.position = position
        self.head_hash = head_hash
        self.actor = actor
        self.chain_format = chain_format

    @classmethod
    def publish(cls, *, position: int, head_hash: str, actor: str) -> PublishedHead:
        return cls._create(
            cls.Published,
            id=head_id_for(position),
            position=position,
            head_hash=head_hash,
            actor=actor,
            chain_format=CHAIN_FORMAT,
        )
