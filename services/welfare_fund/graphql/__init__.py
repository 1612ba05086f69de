"""Welfare fund GraphQL: queries, mutations and subscriptions."""

from services.welfare_fund.graphql.mutations import WelfareFundMutation
from services.welfare_fund.graphql.queries import WelfareFundQuery
from services.welfare_fund.graphql.subscriptions import WelfareFundSubscription

__all__ = ["WelfareFundMutation", "WelfareFundQuery", "WelfareFundSubscription"]
