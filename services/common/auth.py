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


# A device's subject is its key's name and the key's id: "device:till-1#k3f9...".
DEVICE_KEY_SEPARATOR = "#"


def device_subject(name: str, key_id: str) -> str:
    return f"{name}{DEVICE_KEY_SEPARATOR}{key_id}"


def requester(actor: str) -> str:
    """Who sent a request, as its idempotency fingerprint names them: a person, or a
    device by its key's name whatever key it used. A till whose key was rotated between
    a sale and its retry is the same till asking again, not another client reusing the
    idempotency key; the audit trail (`actor`) still names the key each request used."""
    kind, _, subject = actor.partition(":")
    if kind == PrincipalKind.DEVICE.value and DEVICE_KEY_SEPARATOR in subject:
        return actor.rpartition(DEVICE_KEY_SEPARATOR)[0]
    return actor


def is_person_actor(actor: str) -> bool:
    """Whether the audit trail's `actor` (as `Principal.actor` names it) is a person
    signed in, not a device's key that whoever stands at it may use."""
    return actor.startswith(f"{PrincipalKind.PERSON.value}:")
