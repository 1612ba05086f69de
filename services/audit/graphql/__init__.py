"""The audit's part of the GraphQL schema."""

from services.audit.graphql.mutations import AuditMutation
from services.audit.graphql.queries import AuditQuery

__all__ = ["AuditMutation", "AuditQuery"]
