"""Every paged query's `after` cursor comes back from the client: a forged one (a
position past a BIGINT, a superscript digit, a negative position) is refused as bad
input naming `after`, on both stores, never an internal error."""

from __future__ import annotations

import base64
import json
from uuid import uuid4

import pytest

from services.common.auth import Role
from tests.e2e.conftest import GraphQLClient

HUGE = str(2**63)  # one past the BIGINT the positions are stored in
LONG = "9" * 5000  # past the 4,300 digits int() takes


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


def pending(position: int) -> str:
    key = ["2025-07-01", "2025-07-01T12:00:00+00:00", position]
    return b64(json.dumps({"long": key, "short": None}))


# (query with $after, the role that may read it, forged cursors as the query encodes
# its own: base64 of "<date>|<position>", "p<position>", "doc|<position>" or a JSON
# key; the welfare fund's and the audit's are the position's digits)
PAGED = [
    ("journal(after: $after)", Role.ADMIN, [b64(f"2025-01-01|{HUGE}"), b64("2025-01-01|²")]),
    (
        "grants(after: $after)",
        Role.ADMIN,
        [b64(f"p{HUGE}"), b64("p²"), b64("p-1"), b64(f"p{LONG}")],
    ),
    ("donations(after: $after)", Role.ADMIN, [b64(f"p{HUGE}")]),
    ("nonCashContributions(after: $after)", Role.ADMIN, [b64(f"p{HUGE}")]),
    ("contracts(after: $after)", Role.ADMIN, [b64(f"p{HUGE}")]),
    ("contractInvoices(after: $after)", Role.ADMIN, [b64(f"p{HUGE}")]),
    ("sales(after: $after)", Role.ADMIN, [b64(f"doc|{HUGE}"), b64("doc|-1")]),
    ("bookings(after: $after)", Role.ADMIN, [b64(f"2025-07-01|{HUGE}")]),
    ("alloggiatiPendingPage(after: $after)", Role.ADMIN, [pending(2**63), pending(-1)]),
    ("disbursements(after: $after)", Role.ADMIN, [HUGE, "²", "-1", LONG]),
    ("beneficiaries(after: $after)", Role.FUND_OFFICER, [HUGE, "²", LONG]),
    (f'eventHistory(aggregateId: "{uuid4()}", after: $after)', Role.ADMIN, [HUGE, "²", LONG]),
]


@pytest.mark.parametrize(
    ("field", "role", "forged"), PAGED, ids=[p[0].split("(")[0] for p in PAGED]
)
async def test_a_forged_cursor_is_bad_input_naming_after(
    app_client: GraphQLClient, field: str, role: Role, forged: list[str]
) -> None:
    reader = app_client.as_person(role)
    for after in forged:
        query = f"query($after: String) {{ {field} {{ __typename }} }}"
        body = await reader.execute(query, {"after": after})
        errors = body.get("errors")
        assert errors, (field, after, body)
        assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT", (field, after, errors)
        assert errors[0]["extensions"]["field"] == "after", errors
