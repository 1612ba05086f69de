"""The auditor's GraphQL: verify, heads, event history, entries by cause."""

from __future__ import annotations

import json

from sqlalchemy import event, text

from services.common.auth import Role
from services.common.idempotency import claim_id_for
from tests.e2e.conftest import GraphQLClient

POST = """
mutation($key: String!, $description: String!) {
  postJournalEntry(input: {idempotencyKey: $key, effectiveDate: "2025-03-04",
    description: $description, postings: [
      {account: "1000", side: DEBIT, amount: "12.20"},
      {account: "4100", side: CREDIT, amount: "12.20"}]}) {
    __typename ... on JournalEntry { id cause }
  }
}
"""
VERIFY = "{ verifyLedger { ok eventsChecked headHash headPosition firstBadPosition reason } }"


async def test_auditor_verifies_publishes_and_follows_history(
    client: GraphQLClient, client_as: object
) -> None:
    posted = (await client.data(POST, {"key": "e2e-1", "description": "Sale"}))["postJournalEntry"]
    entry_id = posted["id"]
    auditor = client.as_role(Role.AUDITOR)

    verified = (await auditor.data(VERIFY))["verifyLedger"]
    assert verified["ok"] is True
    assert verified["firstBadPosition"] is None
    head = (await auditor.data("{ auditHead { position hash } }"))["auditHead"]
    assert verified["headPosition"] == head["position"]
    assert verified["headHash"] == head["hash"]
    assert verified["eventsChecked"] == head["position"]  # SQLite/PostgreSQL: no gaps here

    published = (
        await auditor.data(
            'mutation { publishAuditHead(input: {idempotencyKey: "pub-1"}) { __typename '
            "... on PublishedAuditHead { position hash actor publishedAt } } }"
        )
    )["publishAuditHead"]
    assert published["__typename"] == "PublishedAuditHead"
    assert published["position"] == head["position"]
    assert published["hash"] == head["hash"]
    assert published["actor"].startswith("device:")
    heads = (await auditor.data("{ publishedAuditHeads { nodes { position hash } } }"))[
        "publishedAuditHeads"
    ]["nodes"]
    assert heads == [{"position": head["position"], "hash": head["hash"]}]

    history = (
        await auditor.data(
            "query($id: ID!) { eventHistory(aggregateId: $id) { nodes { position type version "
            "recordedAt effectiveDate actor causationId chainHash } pageInfo { hasNextPage } } }",
            {"id": entry_id},
        )
    )["eventHistory"]
    [event] = history["nodes"]
    assert event["type"] == "JournalEntry.Posted"
    assert event["version"] == 1
    assert event["effectiveDate"] == "2025-03-04"
    assert event["actor"].startswith("device:")
    assert event["causationId"] == posted["cause"]
    assert event["recordedAt"].endswith("+00:00")
    assert len(event["chainHash"]) == 64

    # From the cause back to its entries (exact id, and a source id after a ':').
    by_cause = (
        await auditor.data(
            "query($c: String!) { ledgerEntriesByCause(cause: $c) { nodes { id cause } } }",
            {"c": posted["cause"]},
        )
    )["ledgerEntriesByCause"]["nodes"]
    assert by_cause == [{"id": entry_id, "cause": posted["cause"]}]
    source = posted["cause"].split(":", 1)[1]  # "manual:<key>" -> "<key>"
    by_source = (
        await auditor.data(
            "query($c: String!) { ledgerEntriesByCause(cause: $c) { nodes { id } } }",
            {"c": source},
        )
    )["ledgerEntriesByCause"]["nodes"]
    assert by_source == [{"id": entry_id}]

    # Bad input is a typed error, not a crash.
    bad = await auditor.execute('{ eventHistory(aggregateId: "not-a-uuid") { nodes { type } } }')
    assert bad["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    missing = await auditor.execute(
        '{ eventHistory(aggregateId: "00000000-0000-0000-0000-000000000009") { nodes { type } } }'
    )
    assert missing["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    bad_head = await auditor.execute('{ verifyLedger(expectHead: "12:zz") { ok } }')
    assert bad_head["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"

    # Someone edits the stored entry: the next verification says where.
    runtime = client.runtime
    table, column = (
        (f'"{runtime.settings.database_schema}".coop_store_events', "notification_id")
        if runtime.settings.is_postgres
        else ("stored_events", "rowid")
    )
    with runtime.sync_engine.begin() as conn:
        position, state = conn.execute(
            text(f"SELECT {column}, state FROM {table} WHERE topic LIKE '%JournalEntry.Posted'")
        ).one()
        conn.execute(
            text(f"UPDATE {table} SET state = :s WHERE {column} = :p"),
            {"s": bytes(state).replace(b"1220", b"1320"), "p": position},
        )
    broken = (await auditor.data(VERIFY))["verifyLedger"]
    assert broken["ok"] is False
    assert broken["firstBadPosition"] == position


async def test_a_held_head_before_the_published_one_is_checked_with_from_published_head(
    client: GraphQLClient,
) -> None:
    for n in range(3):
        await client.data(POST, {"key": f"held-{n}", "description": "Sale"})
    auditor = client.as_role(Role.AUDITOR)
    held = (await auditor.data("{ auditHead { position hash } }"))["auditHead"]
    await client.data(POST, {"key": "held-later", "description": "Sale"})
    await auditor.data(
        'mutation { publishAuditHead(input: {idempotencyKey: "pub-2"}) { __typename } }'
    )
    query = (
        "query($h: String!) { verifyLedger(fromPublishedHead: true, expectHead: $h) "
        "{ ok firstBadPosition reason } }"
    )
    wrong = f"{held['position']}:{'0' * 64}"
    result = (await auditor.data(query, {"h": wrong}))["verifyLedger"]
    assert result["ok"] is False
    assert result["firstBadPosition"] == held["position"]
    genuine = f"{held['position']}:{held['hash']}"
    assert (await auditor.data(query, {"h": genuine}))["verifyLedger"]["ok"] is True


async def test_bad_arguments_name_their_field(client: GraphQLClient) -> None:
    auditor = client.as_role(Role.AUDITOR)
    bad_head = await auditor.execute('{ verifyLedger(expectHead: "nonsense") { ok } }')
    [error] = bad_head["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["field"] == "expectHead"
    reversed_range = await auditor.execute(
        '{ journal(from: "2025-12-31", to: "2025-01-01") { nodes { id } } }'
    )
    [error] = reversed_range["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["field"] == "to"
    one_day = await auditor.data(
        '{ journal(from: "2025-03-04", to: "2025-03-04") { nodes { id } } }'
    )
    assert one_day["journal"]["nodes"] == []


HISTORY = "query($id: ID!) { eventHistory(aggregateId: $id) { nodes { type position } } }"


async def test_the_claim_of_a_command_on_a_beneficiary_has_no_history(
    client: GraphQLClient,
) -> None:
    # Claim ids are uuid5 of the client's key: an auditor who guesses a key such as
    # "enrol-7" must not learn whether, or when, a command ran on a beneficiary.
    officer = client.as_role(Role.FUND_OFFICER)
    enrolled = await officer.data(
        "mutation($i: EnrollBeneficiaryInput!) { enrollBeneficiary(input: $i) "
        "{ __typename ... on Beneficiary { beneficiaryRef } } }",
        {"i": {"idempotencyKey": "enrol-7", "program": "INTERNSHIP", "enrolledOn": "2025-08-01"}},
    )
    ref = enrolled["enrollBeneficiary"]["beneficiaryRef"]
    attended = await officer.data(
        "mutation($i: RecordAttendanceInput!) { recordAttendance(input: $i) { __typename } }",
        {
            "i": {
                "idempotencyKey": "att-x2",
                "beneficiaryRef": ref,
                "month": "2025-08",
                "scheduledDays": 10,
                "attendedDays": 9,
            }
        },
    )
    assert attended["recordAttendance"]["__typename"] == "Beneficiary", attended
    await client.data(POST, {"key": "sale-7", "description": "Sale"})
    auditor = client.as_role(Role.AUDITOR)

    unknown = str(claim_id_for("never-used"))
    nothing = await auditor.execute(HISTORY, {"id": unknown})
    for key in ("enrol-7", "att-x2"):
        claim = str(claim_id_for(key))
        answer = await auditor.execute(HISTORY, {"id": claim})
        # Exactly as for an id with no events, but for the id it names.
        assert json.dumps(answer).replace(claim, unknown) == json.dumps(nothing), answer
        paged = await auditor.execute(
            'query($id: ID!) { eventHistory(aggregateId: $id, after: "0") '
            "{ nodes { type } pageInfo { hasNextPage endCursor } } }",
            {"id": claim},
        )
        assert paged == await auditor.execute(
            'query($id: ID!) { eventHistory(aggregateId: $id, after: "0") '
            "{ nodes { type } pageInfo { hasNextPage endCursor } } }",
            {"id": unknown},
        )
    assert nothing["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    # The claims of other commands stay in the history (the rule is the export's).
    sale_claim = (await auditor.data(HISTORY, {"id": str(claim_id_for("sale-7"))}))["eventHistory"]
    assert [n["type"] for n in sale_claim["nodes"]] == ["IdempotencyClaim.Claimed"]


async def _statements(client: GraphQLClient, query: str, variables: dict[str, object]) -> int:
    """How many SQL statements the read engine runs for one request."""
    engine = client.runtime.read_engine.sync_engine
    seen: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        await client.data(query, variables)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return len(seen)


async def test_entries_by_cause_read_a_page_in_the_same_few_statements_whatever_its_size(
    client: GraphQLClient,
) -> None:
    """Review pages #5: each entry of a page was read on its own, three statements an
    entry (302 for a page of 100); the page's entries and lines are now read at once."""
    donate = (
        "mutation($k: String!) { recordDonation(input: {idempotencyKey: $k, "
        'amount: "5.00"}) { __typename } }'
    )
    for n in range(30):
        await client.data(donate, {"k": f"d{n}"})
    by_cause = (
        'query($n: Int!) { ledgerEntriesByCause(cause: "donation", first: $n) '
        "{ nodes { id lines { account debit credit } } } }"
    )
    few = await _statements(client, by_cause, {"n": 3})
    many = await _statements(client, by_cause, {"n": 30})
    assert many == few, (few, many)
    page = await client.data(by_cause, {"n": 30})
    assert len(page["ledgerEntriesByCause"]["nodes"]) == 30
    assert all(len(node["lines"]) >= 2 for node in page["ledgerEntriesByCause"]["nodes"])
