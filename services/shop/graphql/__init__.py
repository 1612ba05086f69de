"""The shop's part of the GraphQL schema."""

from services.shop.graphql.mutations import ShopMutation
from services.shop.graphql.queries import ShopQuery
from services.shop.graphql.subscriptions import ShopSubscription

__all__ = ["ShopMutation", "ShopQuery", "ShopSubscription"]
