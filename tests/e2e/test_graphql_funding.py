"""Grants, donations and reception contracts through GraphQL, as the admin and auditors use them."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from services.common.auth import Role
from tests.e2e.conftest import GraphQLClient
from tests.fatturapa import validate_fatturapa

ERRORS = """
    ... on ValidationError { field message }
    ... on Conflict { message }
    ... on NotFound { message }
    ... on IdempotencyKeyReused { message }
"""

GRANT_FIELDS = """
    id restricted awarded received recognised outstanding advances
    tranches { number amount condition expectedDate receivedOn conditionMetOn status }
"""

AWARD = f"""
mutation($input: AwardGrantInput!) {{
  awardGrant(input: $input) {{ __typename ... on Grant {{ {GRANT_FIELDS} }} {ERRORS} }}
}}
"""
RECEIVE = f"""
mutation($input: GrantTrancheInput!) {{
  receiveGrantTranche(input: $input) {{ __typename ... on Grant {{ {GRANT_FIELDS} }} {ERRORS} }}
}}
"""
MEET = f"""
mutation($input: GrantTrancheInput!) {{
  meetGrantCondition(input: $input) {{ __typename ... on Grant {{ {GRANT_FIELDS} }} {ERRORS} }}
}}
"""
REGISTER = f"""
mutation($input: RegisterContractInput!) {{
  registerContract(input: $input) {{
    __typename ... on Contract {{ id cig capacity vatRate dailyRate }} {ERRORS}
  }}
}}
"""
PRESENCE = f"""
mutation($input: RecordPresenceInput!) {{
  recordPresence(input: $input) {{
    __typename ... on PresenceRecord {{ date personsPresent revision }} {ERRORS}
  }}
}}
"""
INVOICE_FIELDS = """
    id number month presenceDays net vatRate vat passThroughTotal total payable paid outstanding
    cig splitPayment passThrough { description quantity unitAmount amount vatNature }
"""
INVOICE = f"""
mutation($input: InvoiceContractInput!) {{
  invoiceContract(input: $input) {{
    __typename ... on ContractInvoice {{ {INVOICE_FIELDS} xml }} {ERRORS}
  }}
}}
"""
PAY = f"""
mutation($input: RecordContractPaymentInput!) {{
  recordContractPayment(input: $input) {{
    __typename ... on ContractInvoice {{ paid outstanding }} {ERRORS}
  }}
}}
"""
TRIAL = """
query($asOf: DateTime) {
  trialBalance(asOf: $asOf) { balanced totalDebit totalCredit lines { account debit credit } }
}
"""
PROFILE = """
mutation {
  setInvoicingProfile(input: {
    idempotencyKey: "profile-1", name: "K-Pax Cooperativa Sociale Onlus",
    vatNumber: "03012345678", taxRegime: "RF01", iban: "IT60X0542811101000000123456",
    address: {street: "Via Mazzini 12", postcode: "25043", municipality: "Breno", province: "BS"}
  }) { __typename ... on InvoicingProfile { name } }
}
"""


def end_of(day: str) -> str:
    return f"{day}T23:59:59+02:00"


async def trial(client: GraphQLClient, day: str) -> dict[str, tuple[str, str]]:
    """Non-zero balances on `day`; asserts the trial balance is balanced."""
    result = (await client.data(TRIAL, {"asOf": end_of(day)}))["trialBalance"]
    assert result["balanced"] is True
    assert result["totalDebit"] == result["totalCredit"]
    return {line["account"]: (line["debit"], line["credit"]) for line in result["lines"]}


def contract_input(key: str = "contract-1", **overrides: Any) -> dict[str, Any]:
    value: dict[str, Any] = {
        "idempotencyKey": key,
        "authority": "Prefettura di Brescia",
        "authorityTaxCode": "80012345678",
        "authorityOfficeCode": "UFA7KD",
        "authorityAddress": {
            "street": "Piazza Paolo VI 16",
            "postcode": "25121",
            "municipality": "Brescia",
            "province": "BS",
        },
        "cig": "8A1234567B",
        "dailyRate": "32.31",
        "vatRate": "5",
        "capacity": 20,
        "startDate": "2025-01-01",
        "agreementReference": "Conv. 2025/117",
        "passThroughItems": [{"description": "Pocket money", "amountPerPersonDay": "2.50"}],
    }
    value.update(overrides)
    return value


async def register(client: GraphQLClient, **overrides: Any) -> str:
    await client.data(PROFILE)
    result = (await client.data(REGISTER, {"input": contract_input(**overrides)}))[
        "registerContract"
    ]
    assert result["__typename"] == "Contract", result
    return str(result["id"])


async def presence(
    client: GraphQLClient, contract_id: str, day: str, persons: int, key: str | None = None
) -> dict[str, Any]:
    value = {
        "idempotencyKey": key or f"presence:{contract_id}:{day}:{persons}",
        "contractId": contract_id,
        "date": day,
        "personsPresent": persons,
    }
    result: dict[str, Any] = (await client.data(PRESENCE, {"input": value}))["recordPresence"]
    return result


async def test_fourteen_residents_over_thirty_days_with_two_corrections_invoice_the_hand_amount(
    client: GraphQLClient,
) -> None:
    contract_id = await register(client)
    for day in range(1, 31):
        # Two days are first typed wrong and then corrected by a superseding record.
        first_count = {9: 15, 22: 12}.get(day, 14)
        recorded = await presence(client, contract_id, f"2025-04-{day:02d}", first_count)
        assert recorded["__typename"] == "PresenceRecord"
        assert recorded["revision"] == 1
    for day in (9, 22):
        corrected = await presence(client, contract_id, f"2025-04-{day:02d}", 14)
        assert corrected == {
            "__typename": "PresenceRecord",
            "date": f"2025-04-{day:02d}",
            "personsPresent": 14,
            "revision": 2,
        }

    register_view = (
        await client.data(
            'query($id: ID!) { presenceRegister(contractId: $id, month: "2025-04") '
            "{ presenceDays corrections days { date personsPresent revision } } }",
            {"id": contract_id},
        )
    )["presenceRegister"]
    assert register_view["presenceDays"] == 420
    assert register_view["corrections"] == 2
    assert len(register_view["days"]) == 30

    invoice_input = {
        "idempotencyKey": "invoice-2025-04",
        "contractId": contract_id,
        "month": "2025-04",
        "issueDate": "2025-05-02",
    }
    invoice = (await client.data(INVOICE, {"input": invoice_input}))["invoiceContract"]
    assert invoice["__typename"] == "ContractInvoice", invoice
    # By hand: 14 persons x 30 days = 420 presence days.
    #   420 x 32.31 = 13,570.20 net; VAT 5% = 678.51; pocket money 420 x 2.50 = 1,050.00.
    #   Total 15,298.71; with split payment the Prefecture pays us 14,620.20.
    assert {k: invoice[k] for k in ("presenceDays", "net", "vat", "passThroughTotal")} == {
        "presenceDays": 420,
        "net": "13570.20",
        "vat": "678.51",
        "passThroughTotal": "1050.00",
    }
    assert invoice["total"] == "15298.71"
    assert invoice["payable"] == invoice["outstanding"] == "14620.20"
    assert invoice["number"] == "PA-2025-0001"
    assert invoice["passThrough"] == [
        {
            "description": "Pocket money",
            "quantity": 420,
            "unitAmount": "2.50",
            "amount": "1050.00",
            "vatNature": "N1",
        }
    ]
    xml = invoice["xml"]
    assert "<CodiceCIG>8A1234567B</CodiceCIG>" in xml
    assert "<EsigibilitaIVA>S</EsigibilitaIVA>" in xml
    assert "<ImportoTotaleDocumento>15298.71</ImportoTotaleDocumento>" in xml
    validate_fatturapa(xml)

    # The ledger: receivable of what will be paid, revenue, pass-through owed to residents;
    # the VAT was closed against the receivable (split payment).
    assert await trial(client, "2025-05-02") == {
        "1110": ("14620.20", "0.00"),
        "2500": ("0.00", "1050.00"),
        "4300": ("0.00", "13570.20"),
    }

    # Retrying returns the same invoice; invoicing the month again is refused, and so
    # is a correction of an invoiced month.
    again = (await client.data(INVOICE, {"input": invoice_input}))["invoiceContract"]
    assert again == invoice
    head = client.head()
    twice = (
        await client.data(INVOICE, {"input": {**invoice_input, "idempotencyKey": "invoice-again"}})
    )["invoiceContract"]
    assert twice["__typename"] == "Conflict"
    late = await presence(client, contract_id, "2025-04-15", 13)
    assert late["__typename"] == "Conflict"
    assert client.head() == head

    paid = (
        await client.data(
            PAY,
            {
                "input": {
                    "idempotencyKey": "pay-2025-04",
                    "invoiceId": invoice["id"],
                    "amount": "14620.20",
                    "date": "2025-06-16",
                }
            },
        )
    )["recordContractPayment"]
    assert paid == {"__typename": "ContractInvoice", "paid": "14620.20", "outstanding": "0.00"}
    assert await trial(client, "2025-06-16") == {
        "1010": ("14620.20", "0.00"),
        "2500": ("0.00", "1050.00"),
        "4300": ("0.00", "13570.20"),
    }
    report = (
        await client.data(
            "query { contracts { nodes { cig presenceDays invoiced payable paid outstanding } } }"
        )
    )["contracts"]["nodes"]
    assert report == [
        {
            "cig": "8A1234567B",
            "presenceDays": 420,
            "invoiced": "15298.71",
            "payable": "14620.20",
            "paid": "14620.20",
            "outstanding": "0.00",
        }
    ]


async def test_invoice_numbers_follow_their_issue_dates(client: GraphQLClient) -> None:
    """May invoiced on 1 July takes number 1; June, over on 30 June, can then not be
    invoiced on that earlier date: number 2 would precede number 1's date."""
    contract_id = await register(client)
    for first_of_month in ("2025-05-01", "2025-06-01"):
        recorded = await presence(client, contract_id, first_of_month, 14)
        assert recorded["__typename"] == "PresenceRecord"

    async def invoice_month(month: str, issued: str) -> dict[str, Any]:
        value = {
            "idempotencyKey": f"invoice-{month}",
            "contractId": contract_id,
            "month": month,
            "issueDate": issued,
        }
        result: dict[str, Any] = (await client.data(INVOICE, {"input": value}))["invoiceContract"]
        return result

    assert (await invoice_month("2025-05", "2025-07-01"))["number"] == "PA-2025-0001"
    head = client.head()
    backwards = await invoice_month("2025-06", "2025-06-30")
    assert (backwards["__typename"], backwards["field"]) == ("ValidationError", "issueDate")
    assert "2025-07-01" in backwards["message"]
    assert client.head() == head
    assert (await invoice_month("2025-06", "2025-07-01"))["number"] == "PA-2025-0002"


async def test_two_tranche_restricted_grant_becomes_revenue_exactly_when_conditions_are_met(
    client: GraphQLClient,
) -> None:
    async def balance(code: str, day: str) -> str:
        result = await client.data(
            "query($code: String!, $asOf: DateTime) "
            "{ accountBalance(code: $code, asOf: $asOf) { balance } }",
            {"code": code, "asOf": end_of(day)},
        )
        return str(result["accountBalance"]["balance"])

    awarded = (
        await client.data(
            AWARD,
            {
                "input": {
                    "idempotencyKey": "grant-cariplo-2025",
                    "funder": "Fondazione Cariplo",
                    "purpose": "Internships for women at risk of social exclusion",
                    "amount": "30000.00",
                    "restricted": True,
                    "awardedOn": "2025-01-10",
                    "tranches": [
                        {
                            "amount": "12000.00",
                            "condition": "Agreement signed and project started",
                            "expectedDate": "2025-02-01",
                        },
                        {
                            "amount": "18000.00",
                            "condition": "Final report approved",
                            "expectedDate": "2025-07-15",
                        },
                    ],
                }
            },
        )
    )["awardGrant"]
    assert awarded["__typename"] == "Grant", awarded
    grant_id = awarded["id"]
    assert awarded["outstanding"] == "30000.00"
    assert [t["status"] for t in awarded["tranches"]] == ["PENDING", "PENDING"]
    assert await trial(client, "2025-01-10") == {}  # a conditional promise posts nothing

    async def step(query: str, key: str, tranche: int, day: str) -> dict[str, Any]:
        field = "receiveGrantTranche" if query is RECEIVE else "meetGrantCondition"
        value = {"idempotencyKey": key, "grantId": grant_id, "tranche": tranche, "date": day}
        result: dict[str, Any] = (await client.data(query, {"input": value}))[field]
        assert result["__typename"] == "Grant", result
        return result

    # Tranche 1 arrives before its condition: a refundable advance, not revenue.
    grant = await step(RECEIVE, "g-t1-received", 1, "2025-02-03")
    assert (grant["advances"], grant["recognised"]) == ("12000.00", "0.00")
    assert await trial(client, "2025-02-03") == {
        "1010": ("12000.00", "0.00"),
        "2300": ("0.00", "12000.00"),
    }

    grant = await step(MEET, "g-t1-met", 1, "2025-03-01")
    assert (grant["advances"], grant["recognised"]) == ("0.00", "12000.00")
    assert await balance("4210", "2025-02-28") == "0.00"  # not a day before
    assert await balance("4210", "2025-03-01") == "12000.00"
    assert await trial(client, "2025-03-01") == {
        "1010": ("12000.00", "0.00"),
        "4210": ("0.00", "12000.00"),
    }

    # Tranche 2's condition is met before the money comes: revenue against a receivable.
    grant = await step(MEET, "g-t2-met", 2, "2025-06-30")
    assert grant["tranches"][1]["status"] == "RECEIVABLE"
    assert await balance("4210", "2025-06-29") == "12000.00"
    assert await trial(client, "2025-06-30") == {
        "1010": ("12000.00", "0.00"),
        "1120": ("18000.00", "0.00"),
        "4210": ("0.00", "30000.00"),
    }

    grant = await step(RECEIVE, "g-t2-received", 2, "2025-07-15")
    assert {k: grant[k] for k in ("received", "recognised", "outstanding", "advances")} == {
        "received": "30000.00",
        "recognised": "30000.00",
        "outstanding": "0.00",
        "advances": "0.00",
    }
    assert await trial(client, "2025-07-15") == {
        "1010": ("30000.00", "0.00"),
        "4210": ("0.00", "30000.00"),
    }
    # Unrestricted grant revenue never moved: the welfare fund's base stays clean.
    assert await balance("4200", "2025-12-31") == "0.00"

    head = client.head()
    twice = await client.data(
        RECEIVE,
        {
            "input": {
                "idempotencyKey": "g-t2-received-again",
                "grantId": grant_id,
                "tranche": 2,
                "date": "2025-07-16",
            }
        },
    )
    assert twice["receiveGrantTranche"]["__typename"] == "Conflict"
    assert "already received" in twice["receiveGrantTranche"]["message"]
    assert client.head() == head

    # An auditor goes from the grant's id to its entries (the id stands mid-cause).
    by_grant = (
        await client.data(
            "query($c: String!) { ledgerEntriesByCause(cause: $c) { cause } }", {"c": grant_id}
        )
    )["ledgerEntriesByCause"]
    causes = {entry["cause"] for entry in by_grant}
    assert f"funding:grant:{grant_id}:tranche:1:received" in causes
    assert f"funding:grant:{grant_id}:tranche:2:received" in causes


def _future() -> str:
    return (date.today() + timedelta(days=3)).isoformat()


@pytest.mark.parametrize(
    ("case", "field"),
    [
        ("tranches do not sum to the award", "tranches"),
        ("negative presence count", "personsPresent"),
        ("presence over capacity", "personsPresent"),
        ("presence for a future date", "date"),
        ("invoice for a month with no presence", "month"),
        ("CIG of the wrong format", "cig"),
        ("CIG with lower-case letters", "cig"),
        ("month not YYYY-MM", "month"),
        ("restricted donation without purpose", "purpose"),
    ],
)
async def test_bad_input_gets_a_typed_error_naming_the_field_and_stores_nothing(
    client: GraphQLClient, case: str, field: str
) -> None:
    contract_id = await register(client)
    await presence(client, contract_id, "2025-03-03", 10)
    head = client.head()
    if case == "tranches do not sum to the award":
        result = (
            await client.data(
                AWARD,
                {
                    "input": {
                        "idempotencyKey": "bad-grant",
                        "funder": "Regione Lombardia",
                        "purpose": "Housing",
                        "amount": "10000.00",
                        "tranches": [
                            {"amount": "5000.00", "condition": "start"},
                            {"amount": "4999.99", "condition": "end"},
                        ],
                    }
                },
            )
        )["awardGrant"]
    elif case == "negative presence count":
        result = await presence(client, contract_id, "2025-03-04", -1)
    elif case == "presence over capacity":
        result = await presence(client, contract_id, "2025-03-04", 21)
    elif case == "presence for a future date":
        result = await presence(client, contract_id, _future(), 5)
    elif case == "invoice for a month with no presence":
        result = (
            await client.data(
                INVOICE,
                {
                    "input": {
                        "idempotencyKey": "bad-invoice",
                        "contractId": contract_id,
                        "month": "2025-02",
                        "issueDate": "2025-03-01",
                    }
                },
            )
        )["invoiceContract"]
    elif case.startswith("CIG"):
        cig = "8A1234567" if case == "CIG of the wrong format" else "8a1234567b"
        result = (await client.data(REGISTER, {"input": contract_input("bad-contract", cig=cig)}))[
            "registerContract"
        ]
    elif case == "month not YYYY-MM":
        result = (
            await client.data(
                INVOICE,
                {
                    "input": {
                        "idempotencyKey": "bad-m",
                        "contractId": contract_id,
                        "month": "2025-3",
                    }
                },
            )
        )["invoiceContract"]
    else:
        result = (
            await client.data(
                "mutation($input: RecordDonationInput!) { recordDonation(input: $input) "
                f"{{ __typename {ERRORS} }} }}",
                {"input": {"idempotencyKey": "bad-d", "amount": "50.00", "restricted": True}},
            )
        )["recordDonation"]
    assert result["__typename"] == "ValidationError", result
    assert result["field"] == field
    assert client.head() == head


async def test_donations_non_cash_and_the_public_grants_publication_report(
    client: GraphQLClient,
) -> None:
    donation = await client.data(
        'mutation { recordDonation(input: {idempotencyKey: "d-1", amount: "250.00", '
        'donor: "Maria Rossi", method: CASH, date: "2025-03-08"}) '
        "{ __typename ... on Donation { id amount restricted method donor } } }"
    )
    assert donation["recordDonation"]["donor"] == "Maria Rossi"
    await client.data(
        'mutation { recordDonation(input: {idempotencyKey: "d-2", amount: "1000.00", '
        'restricted: true, purpose: "Housing deposits", date: "2025-04-01"}) { __typename } }'
    )
    in_kind = await client.data(
        'mutation { recordInKindDonation(input: {idempotencyKey: "k-1", '
        'description: "Winter coats (40)", fairValue: "600.00", date: "2025-11-05"}) '
        "{ __typename ... on NonCashContribution { fairValue kind } } }"
    )
    assert in_kind["recordInKindDonation"] == {
        "__typename": "NonCashContribution",
        "fairValue": "600.00",
        "kind": "IN_KIND",
    }
    hours = await client.data(
        'mutation { recordVolunteerHours(input: {idempotencyKey: "v-1", activity: "Shop shift", '
        'minutes: 200, hourlyFairValue: "15.00", date: "2025-11-06"}) '
        "{ __typename ... on NonCashContribution { fairValue minutes } } }"
    )
    assert hours["recordVolunteerHours"]["fairValue"] == "50.00"

    # Money donations are posted; goods and time are reported only.
    assert await trial(client, "2025-12-31") == {
        "1000": ("250.00", "0.00"),
        "1010": ("1000.00", "0.00"),
        "4400": ("0.00", "250.00"),
        "4410": ("0.00", "1000.00"),
    }
    journal = await client.data('query { journal(account: "4400") { nodes { description } } }')
    assert "Maria" not in str(journal)  # donor names stay out of the ledger
    report = (
        await client.data(
            'query { nonCashContributions(from: "2025-01-01", to: "2025-12-31") '
            "{ inKindFairValue volunteerMinutes volunteerFairValue } }"
        )
    )["nonCashContributions"]
    assert report == {
        "inKindFairValue": "600.00",
        "volunteerMinutes": 200,
        "volunteerFairValue": "50.00",
    }

    for key, funder, amount, public in (
        ("g-region", "Regione Lombardia", "8000.00", True),
        ("g-town", "Comune di Breno", "2500.00", True),
        ("g-foundation", "Fondazione Cariplo", "50000.00", False),
    ):
        grant = (
            await client.data(
                AWARD,
                {
                    "input": {
                        "idempotencyKey": key,
                        "funder": funder,
                        "purpose": "Work integration",
                        "amount": amount,
                        "publicFunder": public,
                        "awardedOn": "2025-01-15",
                        "tranches": [{"amount": amount, "condition": "Project started"}],
                    }
                },
            )
        )["awardGrant"]
        await client.data(
            RECEIVE,
            {
                "input": {
                    "idempotencyKey": f"{key}-r",
                    "grantId": grant["id"],
                    "tranche": 1,
                    "date": "2025-05-20",
                }
            },
        )
    published = (
        await client.data(
            "query { publicGrantsReport(year: 2025) "
            "{ total dutyApplies publishBy receipts { payer amount receivedOn purpose } } }"
        )
    )["publicGrantsReport"]
    assert published["total"] == "10500.00"
    assert published["dutyApplies"] is True
    assert published["publishBy"] == "2026-06-30"
    assert sorted(r["payer"] for r in published["receipts"]) == [
        "Comune di Breno",
        "Regione Lombardia",
    ]
    nothing = (await client.data("query { publicGrantsReport(year: 2024) { dutyApplies } }"))[
        "publicGrantsReport"
    ]
    assert nothing["dutyApplies"] is False


async def test_auditors_read_funding_but_neither_write_nor_see_donors(
    client: GraphQLClient, client_as: Any
) -> None:
    await client.data(
        'mutation { recordDonation(input: {idempotencyKey: "d-1", amount: "20.00", '
        'donor: "Giulia Bianchi", date: "2025-03-08"}) { __typename } }'
    )
    auditor = client_as(Role.AUDITOR)
    read = await auditor.execute("query { donations { nodes { amount donor } } }")
    assert read["data"]["donations"]["nodes"] == [{"amount": "20.00", "donor": None}]
    assert read["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert "Giulia" not in str(read)
    write = await auditor.execute(
        'mutation { recordDonation(input: {idempotencyKey: "d-2", amount: "20.00"}) '
        "{ __typename } }"
    )
    assert write["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    front_desk = client_as(Role.FRONT_DESK)
    denied = await front_desk.execute("query { grants { nodes { id } } }")
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_pro_rata_cut_and_closing_post_and_report_and_survive_a_rebuild(
    client: GraphQLClient,
) -> None:
    grant = (
        await client.data(
            AWARD,
            {
                "input": {
                    "idempotencyKey": "grant-region",
                    "funder": "Regione Lombardia",
                    "purpose": "Semi-autonomy housing",
                    "amount": "20000.00",
                    "awardedOn": "2025-01-10",
                    "publicFunder": True,
                    "tranches": [
                        {"amount": "10000.00", "condition": "Start"},
                        {"amount": "10000.00", "condition": "Cost report"},
                    ],
                }
            },
        )
    )["awardGrant"]
    grant_id = grant["id"]
    for query, key, tranche, day in (
        (RECEIVE, "r1", 1, "2025-02-01"),
        (MEET, "m1", 1, "2025-02-01"),
        (MEET, "m2", 2, "2025-09-30"),
    ):
        value = {"idempotencyKey": key, "grantId": grant_id, "tranche": tranche, "date": day}
        await client.data(query, {"input": value})
    reduce = (
        "mutation($input: ReduceGrantInput!) { reduceGrant(input: $input) "
        f"{{ __typename ... on Grant {{ {GRANT_FIELDS} }} {ERRORS} }} }}"
    )
    # Costs came in at 30,000 of a 40,000 budget: the award is cut to 15,000.
    reduced = (
        await client.data(
            reduce,
            {
                "input": {
                    "idempotencyKey": "cut",
                    "grantId": grant_id,
                    "budgetedCosts": "40000.00",
                    "reportedCosts": "30000.00",
                    "date": "2025-10-15",
                }
            },
        )
    )["reduceGrant"]
    assert (reduced["awarded"], reduced["recognised"], reduced["outstanding"]) == (
        "15000.00",
        "15000.00",
        "5000.00",
    )
    assert await trial(client, "2025-10-15") == {
        "1010": ("10000.00", "0.00"),
        "1120": ("5000.00", "0.00"),
        "4200": ("0.00", "15000.00"),
    }
    close = (
        "mutation($input: CloseGrantInput!) { closeGrant(input: $input) "
        f"{{ __typename ... on Grant {{ {GRANT_FIELDS} }} {ERRORS} }} }}"
    )
    closed = (
        await client.data(
            close, {"input": {"idempotencyKey": "close", "grantId": grant_id, "date": "2025-12-20"}}
        )
    )["closeGrant"]
    assert closed["tranches"][1]["status"] == "CANCELLED"
    assert (closed["awarded"], closed["recognised"], closed["outstanding"]) == (
        "10000.00",
        "10000.00",
        "0.00",
    )
    assert await trial(client, "2025-12-20") == {
        "1010": ("10000.00", "0.00"),
        "4200": ("0.00", "10000.00"),
    }
    after_close = (
        await client.data(
            RECEIVE,
            {"input": {"idempotencyKey": "late", "grantId": grant_id, "tranche": 2}},
        )
    )["receiveGrantTranche"]
    assert after_close["__typename"] == "Conflict"

    report = "query { grants { nodes { " + GRANT_FIELDS + " } totals { awarded received } } }"
    before = await client.data(report)
    await client.runtime.run_sync(client.runtime.projector.rebuild)
    assert await client.data(report) == before
