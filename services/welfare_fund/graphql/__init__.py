"""Welfare fund GraphQL: queries, mutations and subscriptions."""

from services.welfare_fund.graphql.mutations import WelfareFundMutation
from services.welfare_fund.graphql.queries import WelfareFundQuery
from services.welfare_fund.graphql.subscriptions import WelfareFundSubscription
from services.welfare_fund.graphql.types import PROGRAM_SCALAR

__all__ = ["PROGRAM_SCALAR", "WelfareFundMutation", "WelfareFundQuery", "WelfareFundSubscription"]
