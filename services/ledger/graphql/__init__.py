"""The ledger's part of the GraphQL schema: the journal, and funding beside it."""

from services.ledger.graphql.funding_mutations import FundingMutation
from services.ledger.graphql.funding_queries import FundingQuery
from services.ledger.graphql.mutations import LedgerMutation
from services.ledger.graphql.queries import LedgerQuery
from services.ledger.graphql.subscriptions import LedgerSubscription

__all__ = [
    "FundingMutation",
    "FundingQuery",
    "LedgerMutation",
    "LedgerQuery",
    "LedgerSubscription",
]
