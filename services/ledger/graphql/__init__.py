"""The ledger's part of the GraphQL schema."""

from services.ledger.graphql.mutations import LedgerMutation
from services.ledger.graphql.queries import LedgerQuery
from services.ledger.graphql.subscriptions import LedgerSubscription

__all__ = ["LedgerMutation", "LedgerQuery", "LedgerSubscription"]
