"""Who is asking: roles and the authenticated principal. Pure Python.

Authentication (tokens, API keys) lives in the gateway; contexts only see this.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class PrincipalKind(StrEnum):
    PERSON = "person"  # signed in with a password: one human
    DEVICE = "device"  # an API key: whoever stands at the till or the desk


class Role(StrEnum):
    FRONT_DESK = "frontDesk"
    VOLUNTEER = "volunteer"
    FUND_OFFICER = "fundOfficer"
    AUDITOR = "auditor"
    ADMIN = "admin"


@dataclass(frozen=True)
class Principal:
    """A person (bearer token) or a device (API key) with its roles.

    `till_id` scopes a till's key (and a volunteer's session) to one till.
    """

    subject: str
    kind: PrincipalKind
    roles: frozenset[Role]
    till_id: str | None = None

    @property
    def actor(self) -> str:
        """How the audit trail names this principal, e.g. "person:maria"."""
        return f"{self.kind}:{self.subject}"

    def has_any(self, roles: frozenset[Role]) -> bool:
        return bool(self.roles & roles)


def is_person_actor(actor: str) -> bool:
    """Whether the audit trail's `actor` (as `Principal.actor` names it) is a person
    signed in, not a device's key that whoever stands at it may use."""
    return actor.startswith(f"{PrincipalKind.PERSON.value}:")
