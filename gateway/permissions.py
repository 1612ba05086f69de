"""Deny by default: every query and mutation names the roles allowed to call it.

    @strawberry.field(permission_classes=allow(Role.ADMIN, Role.AUDITOR))

No principal -> UNAUTHENTICATED; a principal without one of the roles -> FORBIDDEN.
A test walks the schema and fails for any root field without `allow(...)`.
"""

from __future__ import annotations

from typing import Any

from graphql import GraphQLError
from strawberry.permission import BasePermission
from strawberry.types import Info

from services.common.auth import Principal, Role


class Unauthenticated(GraphQLError):
    def __init__(self) -> None:
        super().__init__(
            "authentication required: send Authorization: Bearer <token> or X-Api-Key: <key>",
            extensions={"code": "UNAUTHENTICATED"},
        )


class RolePermission(BasePermission):
    """Base of the generated permission classes; `roles` is set per class."""

    roles: frozenset[Role] = frozenset()
    message = "your role may not do this"
    error_extensions = {"code": "FORBIDDEN"}

    async def has_permission(self, source: Any, info: Info[Any, Any], **kwargs: Any) -> bool:
        principal: Principal | None = await info.context.current_principal()
        if principal is None:
            raise Unauthenticated
        return principal.has_any(self.roles)


def allow(*roles: Role) -> list[type[BasePermission]]:
    allowed = frozenset(roles)
    name = "Allow_" + "_".join(sorted(r.value for r in allowed))
    permission = type(name, (RolePermission,), {"roles": allowed})
    return [permission]


def allowed_roles(permission_classes: list[type[BasePermission]]) -> frozenset[Role]:
    """The roles a field allows (for the role x operation matrix test)."""
    roles: set[Role] = set()
    for cls in permission_classes:
        if issubclass(cls, RolePermission):
            roles |= cls.roles
    return frozenset(roles)
