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
# its own: base64 of "<list>|<position>" or "<list>|<date>|<position>" (the list's name,
# services/common/cursors.py), or a JSON key; and the formats of earlier releases)
def tagged(listing: str, *texts: str) -> list[str]:
    return [b64(f"{listing}|{text}") for text in texts]


PAGED = [
    ("journal(after: $after)", Role.ADMIN,
     [*tagged("journal", f"2025-01-01|{HUGE}", "2025-01-01|²"), b64(f"2025-01-01|{HUGE}")]),
    ("grants(after: $after)", Role.ADMIN, tagged("grants", HUGE, "²", "-1", LONG)),
    ("donations(after: $after)", Role.ADMIN, [*tagged("donations", HUGE), b64(f"p{HUGE}")]),
    ("nonCashContributions(after: $after)", Role.ADMIN, tagged("nonCashContributions", HUGE)),
    ("contracts(after: $after)", Role.ADMIN, tagged("contracts", HUGE)),
    ("contractInvoices(after: $after)", Role.ADMIN, tagged("contractInvoices", HUGE)),
    ("sales(after: $after)", Role.ADMIN, [*tagged("sales", HUGE, "-1"), b64(f"doc|{HUGE}")]),
    ("bookings(after: $after)", Role.ADMIN, tagged("bookings", f"2025-07-01|{HUGE}")),
    ("alloggiatiPendingPage(after: $after)", Role.ADMIN, [pending(2**63), pending(-1)]),
    ('guestDataErasable(endedBefore: "2025-12-31", after: $after)', Role.ADMIN,
     [*tagged("guestDataErasable", f"2025-07-01|{HUGE}", "2025-07-01|²", "07/01/2025|1"),
      *tagged("bookings", "2025-07-01|1")]),
    ("disbursements(after: $after)", Role.ADMIN,
     [*tagged("disbursements", HUGE, "²", "-1", LONG), HUGE]),
    ("beneficiaries(after: $after)", Role.FUND_OFFICER, tagged("beneficiaries", HUGE, "²", LONG)),
    (f'eventHistory(aggregateId: "{uuid4()}", after: $after)', Role.ADMIN,
     [*tagged("eventHistory", HUGE, "²", LONG), "1"]),
]  # fmt: skip


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


DONATE = (
    "mutation($k: String!) { recordDonation(input: {idempotencyKey: $k, amount: "
    '"5.00"}) { __typename ... on Donation { id } } }'
)
GRANT = (
    'mutation($k: String!) { awardGrant(input: {idempotencyKey: $k, funder: "Regione", '
    'purpose: "p", amount: "100.00", restricted: false, tranches: [{amount: "100.00", '
    'condition: "c"}]}) { __typename ... on Grant { id } } }'
)


async def test_one_list_s_cursor_is_refused_by_another(app_client: GraphQLClient) -> None:
    """Review pages #1: grants, donations and the other funding lists shared one cursor
    format, so a grants cursor given to donations was taken as a position and the page
    skipped the donations recorded before the grant, without a word. (The journal and
    bookings shared another, the welfare and audit lists bare digits.)"""
    admin = app_client.as_person(Role.ADMIN)
    await admin.data(DONATE, {"k": "d1"})
    assert (await admin.data(GRANT, {"k": "g1"}))["awardGrant"]["__typename"] == "Grant"
    await admin.data(DONATE, {"k": "d2"})
    pages = await admin.data(
        "{ grants(first: 1) { pageInfo { endCursor } } "
        "journal(first: 1) { pageInfo { endCursor } } "
        "donations(first: 1) { pageInfo { endCursor } } }"
    )
    grants_cursor = pages["grants"]["pageInfo"]["endCursor"]
    journal_cursor = pages["journal"]["pageInfo"]["endCursor"]
    for field, cursor in (
        ("donations", grants_cursor),
        ("bookings", journal_cursor),
        ("disbursements", grants_cursor),
        ("grants", pages["donations"]["pageInfo"]["endCursor"]),
    ):
        body = await admin.execute(
            f"query($a: String) {{ {field}(first: 10, after: $a) {{ __typename }} }}",
            {"a": cursor},
        )
        errors = body.get("errors")
        assert errors, (field, body)
        assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT", (field, errors)
    # Its own list takes it: the donation after the first.
    own = await admin.data(
        "query($a: String) { donations(first: 10, after: $a) { nodes { id } } }",
        {"a": pages["donations"]["pageInfo"]["endCursor"]},
    )
    assert len(own["donations"]["nodes"]) == 1
