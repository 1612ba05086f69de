"""Grants, donations and reception contracts through GraphQL, as the admin and auditors use them."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from typing import Any

import pytest

from services.audit.replay import replay
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
    stampDuty cig splitPayment passThrough { description quantity unitAmount amount vatNature }
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
        "authorityTaxCode": "80012345676",
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
    # 1,050.00 outside VAT (N1) is over 77.47: 2.00 of stamp duty, the cooperative's cost
    # (neither in the total nor in what the Prefecture pays).
    assert invoice["stampDuty"] == "2.00"
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
    assert "<DatiBollo>" in xml
    assert "<BolloVirtuale>SI</BolloVirtuale>" in xml
    assert "<ImportoBollo>2.00</ImportoBollo>" in xml
    validate_fatturapa(xml)

    # The ledger: receivable of what will be paid, revenue, pass-through owed to residents;
    # the VAT was closed against the receivable (split payment); the stamp duty is an
    # expense owed to the State.
    assert await trial(client, "2025-05-02") == {
        "1110": ("14620.20", "0.00"),
        "2110": ("0.00", "2.00"),
        "2500": ("0.00", "1050.00"),
        "4300": ("0.00", "13570.20"),
        "5500": ("2.00", "0.00"),
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
        "2110": ("0.00", "2.00"),
        "2500": ("0.00", "1050.00"),
        "4300": ("0.00", "13570.20"),
        "5500": ("2.00", "0.00"),
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
    """May invoiced on 5 July takes number 1; June, over since 30 June, can then not be
    invoiced on 2 July: number 2 would precede number 1's date."""
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

    assert (await invoice_month("2025-05", "2025-07-05"))["number"] == "PA-2025-0001"
    head = client.head()
    backwards = await invoice_month("2025-06", "2025-07-02")
    assert (backwards["__typename"], backwards["field"]) == ("ValidationError", "issueDate")
    assert "number 1 is dated 2025-07-05" in backwards["message"]
    assert client.head() == head
    assert (await invoice_month("2025-06", "2025-07-05"))["number"] == "PA-2025-0002"


CONTINUE_NUMBERING = """
mutation($input: ContinueInvoiceNumberingInput!) { continueInvoiceNumbering(input: $input) {
  __typename
  ... on InvoiceNumbering { year lastNumber lastIssuedOn nextInvoiceNumber }
  ... on ValidationError { field message }
  ... on Conflict { message }
} }
"""


async def test_a_cooperative_going_live_mid_year_continues_its_invoice_numbers(
    client: GraphQLClient,
) -> None:
    """Onboarding review: the first invoice here was always PA-<year>-0001, though the
    cooperative had numbered 57 invoices of the year elsewhere: a repeated number,
    which the SdI refuses."""

    async def carry_on(key: str, last_number: int, last_issued_on: str) -> dict[str, Any]:
        value = {
            "idempotencyKey": key,
            "year": 2025,
            "lastNumber": last_number,
            "lastIssuedOn": last_issued_on,
        }
        result = await client.data(CONTINUE_NUMBERING, {"input": value})
        answer: dict[str, Any] = result["continueInvoiceNumbering"]
        return answer

    head = client.head()
    for last_number, last_issued_on, field in (
        (0, "2025-06-20", "lastNumber"),
        (57, "2024-12-31", "lastIssuedOn"),  # another year's register
        (57, "2999-01-01", "lastIssuedOn"),
    ):
        refused = await carry_on(f"bad-{last_number}-{last_issued_on}", last_number, last_issued_on)
        assert (refused["__typename"], refused["field"]) == ("ValidationError", field), refused
    assert client.head() == head
    carried = await carry_on("carry-on", 57, "2025-06-20")
    assert carried == {
        "__typename": "InvoiceNumbering",
        "year": 2025,
        "lastNumber": 57,
        "lastIssuedOn": "2025-06-20",
        "nextInvoiceNumber": "PA-2025-0058",
    }
    assert await carry_on("carry-on", 57, "2025-06-20") == carried  # a retry: same answer

    contract_id = await register(client)
    assert (await presence(client, contract_id, "2025-06-01", 14))["__typename"] == "PresenceRecord"
    value = {"idempotencyKey": "inv", "contractId": contract_id, "month": "2025-06",
             "issueDate": "2025-07-01"}  # fmt: skip
    invoice = (await client.data(INVOICE, {"input": value}))["invoiceContract"]
    assert invoice["number"] == "PA-2025-0058", invoice
    # Once a number was given here, the year's numbering is this system's.
    late = await carry_on("carry-on-again", 60, "2025-06-30")
    assert late["__typename"] == "Conflict", late
    assert "PA-2025-0058" in late["message"]


async def test_stamp_duty_is_owed_over_77_47_outside_vat_and_not_at_it(
    client: GraphQLClient,
) -> None:
    """One person present one day: the pocket money (N1) is all the invoice has outside
    VAT. 77.47 is not over the threshold; 77.48 is: BolloVirtuale, 2.00, posted."""

    async def invoice_for(pocket_money: str, cig: str) -> dict[str, Any]:
        contract_id = await register(
            client,
            key=f"contract-{cig}",
            cig=cig,
            passThroughItems=[{"description": "Pocket money", "amountPerPersonDay": pocket_money}],
        )
        recorded = await presence(client, contract_id, "2025-03-03", 1)
        assert recorded["__typename"] == "PresenceRecord"
        value = {
            "idempotencyKey": f"invoice-{cig}",
            "contractId": contract_id,
            "month": "2025-03",
            "issueDate": "2025-04-01",
        }
        result: dict[str, Any] = (await client.data(INVOICE, {"input": value}))["invoiceContract"]
        assert result["__typename"] == "ContractInvoice", result
        validate_fatturapa(result["xml"])
        return result

    at = await invoice_for("77.47", "BOLLO07747")
    assert at["stampDuty"] == "0.00"
    assert "DatiBollo" not in at["xml"]
    assert await trial(client, "2025-04-01") == {
        "1110": ("109.78", "0.00"),  # 32.31 + 77.47 (the VAT 1.62 went to the Treasury)
        "2500": ("0.00", "77.47"),
        "4300": ("0.00", "32.31"),
    }

    over = await invoice_for("77.48", "BOLLO07748")
    assert over["stampDuty"] == "2.00"
    # Where the schema puts it: after Numero, before ImportoTotaleDocumento.
    assert (
        "<Numero>PA-2025-0002</Numero>\n        <DatiBollo>\n"
        "          <BolloVirtuale>SI</BolloVirtuale>\n"
        "          <ImportoBollo>2.00</ImportoBollo>\n        </DatiBollo>\n"
        "        <ImportoTotaleDocumento>111.41</ImportoTotaleDocumento>"
    ) in over["xml"]
    # The body pays the same as without the duty: the cooperative bears it.
    assert (over["total"], over["payable"]) == ("111.41", "109.79")
    assert await trial(client, "2025-04-01") == {
        "1110": ("219.57", "0.00"),
        "2110": ("0.00", "2.00"),
        "2500": ("0.00", "154.95"),
        "4300": ("0.00", "64.62"),
        "5500": ("2.00", "0.00"),
    }
    # The read model answers the same as the command did.
    listed = (await client.data("query { contractInvoices { nodes { number stampDuty xml } } }"))[
        "contractInvoices"
    ]["nodes"]
    assert [(n["number"], n["stampDuty"]) for n in listed] == [
        ("PA-2025-0001", "0.00"),
        ("PA-2025-0002", "2.00"),
    ]
    assert listed[1]["xml"] == over["xml"]


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
            "query($c: String!) { ledgerEntriesByCause(cause: $c) { nodes { cause } } }",
            {"c": grant_id},
        )
    )["ledgerEntriesByCause"]["nodes"]
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


# -- correcting a donation recorded wrong: reverseDonation ---------------------------

DONATION_FIELDS = "id date amount restricted method entryId reversedOn reversalEntryId"
RECORD_DONATION = f"""
mutation($input: RecordDonationInput!) {{
  recordDonation(input: $input) {{ __typename ... on Donation {{ {DONATION_FIELDS} }} {ERRORS} }}
}}
"""
REVERSE_DONATION = f"""
mutation($input: ReverseDonationInput!) {{
  reverseDonation(input: $input) {{
    __typename
    ... on Donation {{ {DONATION_FIELDS} reversalReason }}
    ... on NonCashContribution {{ id fairValue reversedOn reversalReason }}
    {ERRORS}
  }}
}}
"""
DONATIONS_REPORT = f"""
query($from: Date, $to: Date) {{
  donations(from: $from, to: $to) {{
    nodes {{ {DONATION_FIELDS} }}
    totals {{ received reversed net unrestricted restricted cash bank }}
  }}
}}
"""
FUND_BALANCE = "query { fundBalance { accrued byStream { stream base accrued } } }"
DONATION_POLICY = """
mutation($input: SetRedistributionPolicyInput!) {
  setRedistributionPolicy(input: $input) { __typename }
}
"""


async def donate(client: GraphQLClient, key: str, amount: str, day: str, **more: Any) -> Any:
    value = {"idempotencyKey": key, "amount": amount, "date": day, "method": "BANK", **more}
    result = (await client.data(RECORD_DONATION, {"input": value}))["recordDonation"]
    assert result["__typename"] == "Donation", result
    return result


async def reverse_donation(
    client: GraphQLClient, key: str, donation_id: str, day: str, reason: str = "Typed 1000.00"
) -> Any:
    value = {
        "idempotencyKey": key,
        "donationId": donation_id,
        "effectiveDate": day,
        "reason": reason,
    }
    return (await client.data(REVERSE_DONATION, {"input": value}))["reverseDonation"]


def topics_since(client: GraphQLClient, position: int) -> list[str]:
    """The events recorded after `position`, by class name, sorted."""
    notifications = client.runtime.ledger.recorder.select_notifications(position + 1, 100)
    return sorted(n.topic.rsplit(":", 1)[-1] for n in notifications)


async def balance_of(client: GraphQLClient, code: str, day: str) -> str:
    result = await client.data(
        "query($code: String!, $asOf: DateTime) "
        "{ accountBalance(code: $code, asOf: $asOf) { balance } }",
        {"code": code, "asOf": end_of(day)},
    )
    return str(result["accountBalance"]["balance"])


async def donation_policy(officer: GraphQLClient, key: str, day: str, percent: str) -> None:
    value = {
        "idempotencyKey": key,
        "effectiveFrom": day,
        "shares": [{"stream": "DONATION", "percent": percent}],
    }
    result = (await officer.data(DONATION_POLICY, {"input": value}))["setRedistributionPolicy"]
    assert result["__typename"] == "RedistributionPolicy", result


async def test_a_wrong_donation_reversed_and_recorded_again_leaves_report_ledger_and_fund_agreeing(
    client: GraphQLClient, client_as: Any
) -> None:
    officer = client_as(Role.FUND_OFFICER)
    await donation_policy(officer, "donations-10", "2025-01-01", "10")

    # 100.00 from Maria Rossi, typed as 1,000.00: the fund accrues 10% of it.
    wrong = await donate(client, "d-wrong", "1000.00", "2025-05-10", donor="Maria Rossi")
    assert (await officer.data(FUND_BALANCE))["fundBalance"]["accrued"] == "100.00"
    # The rate changes before the mistake is found (allowed: nothing dated since).
    await donation_policy(officer, "donations-12", "2025-06-01", "12")

    # The ledger refuses to reverse funding's entry by hand, as before...
    by_hand = await client.data(
        "mutation($i: ReverseJournalEntryInput!) { reverseJournalEntry(input: $i) "
        "{ __typename ... on Conflict { message } } }",
        {
            "i": {
                "idempotencyKey": "by-hand",
                "entryId": wrong["entryId"],
                "effectiveDate": "2025-06-05",
                "description": "wrong amount",
            }
        },
    )
    assert by_hand["reverseJournalEntry"]["__typename"] == "Conflict"
    # ...and funding reverses it, with the ledger's own reversal, in one save.
    head = client.head()
    reversed_ = await reverse_donation(
        client, "d-wrong-fix", wrong["id"], "2025-06-05", "Maria gave 100.00, typed 1000.00"
    )
    assert reversed_["__typename"] == "Donation", reversed_
    assert reversed_["reversedOn"] == "2025-06-05"
    assert reversed_["reversalReason"] == "Maria gave 100.00, typed 1000.00"
    # In one save: the donation's event, the original entry's, the reversal, the claim;
    # then the welfare fund takes the accrual back (its own entry and record).
    assert topics_since(client, head) == [
        "Donation.Reversed",
        "IdempotencyClaim.Claimed",
        "JournalEntry.Posted",
        "JournalEntry.Posted",
        "JournalEntry.Reversed",
        "WelfareFund.AccrualsRecorded",
    ]

    # The right donation, and two more in June: cash unrestricted at 12%, cash restricted.
    right = await donate(client, "d-right", "100.00", "2025-05-10", donor="Maria Rossi")
    await donate(client, "d-june", "30.00", "2025-06-10", method="CASH")
    await donate(
        client,
        "d-june-r",
        "50.00",
        "2025-06-10",
        method="CASH",
        restricted=True,
        purpose="Housing deposits",
    )

    # By hand. Ledger, 2025: bank 100.00 (1000 - 1000 + 100), cash 30 + 50 = 80.00;
    #   4400 = 1000 - 1000 + 100 + 30 = 130.00; 4410 = 50.00 (restricted: share 0%).
    # Fund: the reversal takes back what the 1000.00 accrued (100.00, at its own 10%,
    #   not 120.00 at June's 12%); the right 100.00 accrues 10.00 (May: 10%);
    #   the June 30.00 accrues 3.60 (12%). Accrued 13.60 = 5000 = 2400.
    year = {"from": "2025-01-01", "to": "2025-12-31"}
    report = (await client.data(DONATIONS_REPORT, year))["donations"]
    assert report["totals"] == {
        "received": "1180.00",
        "reversed": "1000.00",
        "net": "180.00",
        "unrestricted": "130.00",
        "restricted": "50.00",
        "cash": "80.00",
        "bank": "100.00",
    }
    assert await trial(client, "2025-12-31") == {
        "1000": ("80.00", "0.00"),
        "1010": ("100.00", "0.00"),
        "2400": ("0.00", "13.60"),
        "4400": ("0.00", "130.00"),
        "4410": ("0.00", "50.00"),
        "5000": ("13.60", "0.00"),
    }
    assert await balance_of(client, "4400", "2025-12-31") == report["totals"]["unrestricted"]
    assert await balance_of(client, "4410", "2025-12-31") == report["totals"]["restricted"]
    fund = (await officer.data(FUND_BALANCE))["fundBalance"]
    assert fund["accrued"] == "13.60"
    donations_stream = {s["stream"]: s for s in fund["byStream"]}["DONATION"]
    assert (donations_stream["base"], donations_stream["accrued"]) == ("130.00", "13.60")

    # Any period agrees with the ledger: up to May the mistake still counts (it was
    # reversed in June), and June takes it off.
    may = (await client.data(DONATIONS_REPORT, {"to": "2025-05-31"}))["donations"]["totals"]
    assert (may["received"], may["reversed"], may["net"]) == ("1100.00", "0.00", "1100.00")
    assert await balance_of(client, "4400", "2025-05-31") == "1100.00"
    june = (await client.data(DONATIONS_REPORT, {"from": "2025-06-01", "to": "2025-06-30"}))[
        "donations"
    ]["totals"]
    assert (june["received"], june["reversed"], june["net"]) == ("80.00", "1000.00", "-920.00")

    # The report shows the wrong donation as reversed, with the reversal's entry; the
    # ledger links that entry to the donation's; no name and no reason in the ledger.
    nodes = {n["id"]: n for n in report["nodes"]}
    assert nodes[wrong["id"]]["reversedOn"] == "2025-06-05"
    assert nodes[right["id"]]["reversedOn"] is None
    journal = (
        await client.data(
            'query { journal(account: "4400") { nodes { id description effectiveDate '
            "reversesEntryId reversedByEntryId } } }"
        )
    )["journal"]["nodes"]
    reversal = next(e for e in journal if e["reversesEntryId"] == wrong["entryId"])
    assert reversal["id"] == nodes[wrong["id"]]["reversalEntryId"]
    assert reversal["effectiveDate"] == "2025-06-05"
    assert (
        next(e for e in journal if e["id"] == wrong["entryId"])["reversedByEntryId"]
        == (reversal["id"])
    )
    assert "Maria" not in str(journal)
    assert "typed" not in str(journal)
    assert wrong["id"][:8] in reversal["description"]

    # Read models rebuilt from event 0 say the same; the audit replay finds no difference.
    before = await client.data(DONATIONS_REPORT, year)
    await client.runtime.run_sync(client.runtime.projector.rebuild)
    assert await client.data(DONATIONS_REPORT, year) == before
    runtime = client.runtime
    audit = await runtime.run_sync(
        lambda: replay(
            settings=runtime.settings,
            snapshot_engine=runtime.audit.read_engine,
            mapper=runtime.audit.mapper,
            projections=runtime.projector.projections,
        )
    )
    assert audit.ok, audit.differences
    assert audit.row_counts["funding_donations"] == 4


async def test_a_donation_is_reversed_once_even_by_two_admins_at_once(
    client: GraphQLClient,
) -> None:
    d = await donate(client, "d-1", "250.00", "2025-03-08")
    head = client.head()
    first, second = await asyncio.gather(
        reverse_donation(client, "fix-a", d["id"], "2025-03-09"),
        reverse_donation(client, "fix-b", d["id"], "2025-03-09"),
    )
    assert sorted([first["__typename"], second["__typename"]]) == ["Conflict", "Donation"]
    written = client.head()
    # One reversal: the donation's event, the original's, the reversal entry, the claim,
    # and the welfare fund's accrual of it. (Positions may skip: on PostgreSQL the
    # loser's rolled-back insert used up a sequence number.)
    assert topics_since(client, head) == [
        "Donation.Reversed",
        "IdempotencyClaim.Claimed",
        "JournalEntry.Posted",
        "JournalEntry.Reversed",
        "WelfareFund.AccrualsRecorded",
    ]
    third = await reverse_donation(client, "fix-c", d["id"], "2025-03-10")
    assert third["__typename"] == "Conflict"
    assert "already reversed" in third["message"]
    assert client.head() == written
    journal = (await client.data('query { journal(account: "4400") { nodes { id } } }'))["journal"][
        "nodes"
    ]
    assert len(journal) == 2  # the donation and its one reversal
    totals = (await client.data(DONATIONS_REPORT))["donations"]["totals"]
    assert (totals["received"], totals["reversed"], totals["net"]) == (
        "250.00",
        "250.00",
        "0.00",
    )
    assert await balance_of(client, "4400", "2025-12-31") == "0.00"


@pytest.mark.parametrize(
    ("case", "typename", "field"),
    [
        ("future date", "ValidationError", "effectiveDate"),
        ("before the donation", "ValidationError", "effectiveDate"),
        ("unknown id", "NotFound", None),
        ("not an id", "ValidationError", "donationId"),
        ("empty reason", "ValidationError", "reason"),
        ("reason too long", "ValidationError", "reason"),
    ],
)
async def test_a_bad_reversal_gets_a_typed_error_and_changes_nothing(
    client: GraphQLClient, case: str, typename: str, field: str | None
) -> None:
    d = await donate(client, "d-1", "1000.00", "2025-05-10")
    day, donation_id, reason = "2025-06-05", d["id"], "Typed 1000.00"
    if case == "future date":
        day = _future()
    elif case == "before the donation":
        day = "2025-05-09"
    elif case == "unknown id":
        donation_id = "00000000-0000-0000-0000-000000000001"
    elif case == "not an id":
        donation_id = "d-1"
    elif case == "empty reason":
        reason = "  "
    else:
        reason = "x" * 501
    report = await client.data(DONATIONS_REPORT)
    head = client.head()
    result = await reverse_donation(client, "bad-fix", donation_id, day, reason)
    assert result["__typename"] == typename, result
    if field is not None:
        assert result["field"] == field
    assert client.head() == head
    assert await client.data(DONATIONS_REPORT) == report
    # The key was not used up: the right request goes through with it.
    fixed = await reverse_donation(client, "bad-fix", d["id"], "2025-06-05")
    assert fixed["__typename"] == "Donation"


async def test_a_reversal_retried_answers_the_same_and_a_reused_key_is_refused(
    client: GraphQLClient, client_as: Any
) -> None:
    d = await donate(client, "d-1", "1000.00", "2025-05-10", donor="Giulia Bianchi")
    first = await reverse_donation(client, "fix", d["id"], "2025-06-05")
    head = client.head()
    again = await reverse_donation(client, "fix", d["id"], "2025-06-05")
    assert again == first
    assert client.head() == head
    other = await reverse_donation(client, "fix", d["id"], "2025-06-06")
    assert other["__typename"] == "IdempotencyKeyReused"
    assert client.head() == head
    # Auditors see that and when it was reversed; the reason, like the donor, is not theirs.
    auditor = client_as(Role.AUDITOR)
    read = await auditor.execute(
        "query { donations { nodes { reversedOn reversalEntryId reversalReason } } }"
    )
    node = read["data"]["donations"]["nodes"][0]
    assert node["reversedOn"] == "2025-06-05"
    assert node["reversalEntryId"] == first["reversalEntryId"]
    assert node["reversalReason"] is None
    assert read["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    denied = await auditor.execute(
        REVERSE_DONATION,
        {
            "input": {
                "idempotencyKey": "auditor-fix",
                "donationId": d["id"],
                "effectiveDate": "2025-06-05",
                "reason": "x",
            }
        },
    )
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert client.head() == head


async def test_goods_in_kind_valued_wrong_are_reversed_and_leave_the_report(
    client: GraphQLClient,
) -> None:
    wrong = await client.data(
        'mutation { recordInKindDonation(input: {idempotencyKey: "k-1", '
        'description: "Winter coats (40)", fairValue: "6000.00", date: "2025-11-05"}) '
        "{ ... on NonCashContribution { id } } }"
    )
    goods_id = wrong["recordInKindDonation"]["id"]
    head = client.head()
    reversed_ = await reverse_donation(
        client, "k-1-fix", goods_id, "2025-11-06", "Valued 6000.00, not 600.00"
    )
    assert reversed_ == {
        "__typename": "NonCashContribution",
        "id": goods_id,
        "fairValue": "6000.00",
        "reversedOn": "2025-11-06",
        "reversalReason": "Valued 6000.00, not 600.00",
    }
    assert client.head() == head + 2  # the record's event and the claim: nothing posted
    await client.data(
        'mutation { recordInKindDonation(input: {idempotencyKey: "k-2", '
        'description: "Winter coats (40)", fairValue: "600.00", date: "2025-11-05"}) '
        "{ __typename } }"
    )
    report = (
        await client.data(
            'query { nonCashContributions(from: "2025-01-01", to: "2025-12-31") '
            "{ inKindFairValue nodes { id reversedOn } } }"
        )
    )["nonCashContributions"]
    assert report["inKindFairValue"] == "600.00"
    assert {n["id"]: n["reversedOn"] for n in report["nodes"]}[goods_id] == "2025-11-06"
    assert await trial(client, "2025-12-31") == {}
    again = await reverse_donation(client, "k-1-fix-2", goods_id, "2025-11-07")
    assert again["__typename"] == "Conflict"


# -- correcting a contract payment recorded wrong: reverseContractPayment ------------

PAYMENT_FIELDS = "number date amount entryId reversedOn reversalEntryId"
INVOICE_WITH_PAYMENTS = f"id number payable paid outstanding payments {{ {PAYMENT_FIELDS} }}"
PAY_WITH_PAYMENTS = f"""
mutation($input: RecordContractPaymentInput!) {{
  recordContractPayment(input: $input) {{
    __typename ... on ContractInvoice {{ {INVOICE_WITH_PAYMENTS} }} {ERRORS}
  }}
}}
"""
REVERSE_PAYMENT = f"""
mutation($input: ReverseContractPaymentInput!) {{
  reverseContractPayment(input: $input) {{
    __typename
    ... on ContractInvoice {{
      {INVOICE_WITH_PAYMENTS} payments {{ number reversalReason }}
    }}
    {ERRORS}
  }}
}}
"""
UNKNOWN_ID = "00000000-0000-0000-0000-000000000001"
CONTRACTS_REPORT = "query { contracts { nodes { invoiced payable paid outstanding } } }"
POLICY = """
mutation($input: SetRedistributionPolicyInput!) {
  setRedistributionPolicy(input: $input) { __typename }
}
"""


async def fund_policy(officer: GraphQLClient, key: str, stream: str, percent: str) -> None:
    value = {
        "idempotencyKey": key,
        "effectiveFrom": "2025-01-01",
        "shares": [{"stream": stream, "percent": percent}],
    }
    result = (await officer.data(POLICY, {"input": value}))["setRedistributionPolicy"]
    assert result["__typename"] == "RedistributionPolicy", result


async def march_invoice(client: GraphQLClient) -> dict[str, Any]:
    """4 days x 20 persons in March 2025, invoiced on 1 April."""
    contract_id = await register(client)
    for day in (3, 4, 5, 6):
        assert (await presence(client, contract_id, f"2025-03-0{day}", 20))["revision"] == 1
    value = {
        "idempotencyKey": "invoice-2025-03",
        "contractId": contract_id,
        "month": "2025-03",
        "issueDate": "2025-04-01",
    }
    invoice: dict[str, Any] = (await client.data(INVOICE, {"input": value}))["invoiceContract"]
    assert invoice["__typename"] == "ContractInvoice", invoice
    return invoice


async def pay_invoice(
    client: GraphQLClient, key: str, invoice_id: str, amount: str, day: str
) -> dict[str, Any]:
    value = {"idempotencyKey": key, "invoiceId": invoice_id, "amount": amount, "date": day}
    result: dict[str, Any] = (await client.data(PAY_WITH_PAYMENTS, {"input": value}))[
        "recordContractPayment"
    ]
    return result


async def reverse_payment(
    client: GraphQLClient,
    key: str,
    invoice_id: str,
    number: int = 1,
    day: str = "2025-05-02",
    reason: str = "Typed 2739.69 for 2379.69",
) -> dict[str, Any]:
    value = {
        "idempotencyKey": key,
        "invoiceId": invoice_id,
        "paymentNumber": number,
        "effectiveDate": day,
        "reason": reason,
    }
    result: dict[str, Any] = (await client.data(REVERSE_PAYMENT, {"input": value}))[
        "reverseContractPayment"
    ]
    return result


async def test_a_payment_typed_wrong_is_reversed_and_paid_right_and_contract_ledger_fund_agree(
    client: GraphQLClient, client_as: Any
) -> None:
    officer = client_as(Role.FUND_OFFICER)
    await fund_policy(officer, "contracts-10", "CONTRACT", "10")
    invoice = await march_invoice(client)
    # By hand: 80 presence days x 32.31 = 2,584.80 net; VAT 5% = 129.24; pocket money
    # 80 x 2.50 = 200.00; total 2,914.04; split payment: the Prefecture pays 2,784.80.
    # The fund accrues 10% of the contract revenue: 258.48.
    assert (invoice["total"], invoice["payable"]) == ("2914.04", "2784.80")

    # The Prefecture pays 2,379.69 on 2 May; the clerk types 2,739.69.
    wrong = await pay_invoice(client, "pay-1", invoice["id"], "2739.69", "2025-05-02")
    assert (wrong["paid"], wrong["outstanding"]) == ("2739.69", "45.11")
    assert wrong["payments"][0]["number"] == 1
    # Neither the ledger's reversal nor a negative payment can correct it...
    by_hand = await client.data(
        "mutation($i: ReverseJournalEntryInput!) { reverseJournalEntry(input: $i) { __typename } }",
        {
            "i": {
                "idempotencyKey": "by-hand",
                "entryId": wrong["payments"][0]["entryId"],
                "effectiveDate": "2025-05-02",
                "description": "wrong amount",
            }
        },
    )
    assert by_hand["reverseJournalEntry"]["__typename"] == "Conflict"
    negative = await pay_invoice(client, "pay-minus", invoice["id"], "-360.00", "2025-05-02")
    assert (negative["__typename"], negative["field"]) == ("ValidationError", "amount")

    # ...reverseContractPayment does, dated the payment's own day.
    head = client.head()
    reversed_ = await reverse_payment(client, "pay-1-fix", invoice["id"])
    assert reversed_["__typename"] == "ContractInvoice", reversed_
    # The outstanding amount goes back up by exactly the payment: 45.11 + 2,739.69.
    assert (reversed_["paid"], reversed_["outstanding"]) == ("0.00", "2784.80")
    payment = reversed_["payments"][0]
    assert (payment["amount"], payment["reversedOn"]) == ("2739.69", "2025-05-02")
    assert payment["reversalReason"] == "Typed 2739.69 for 2379.69"
    # One save: the invoice's event, the original entry's, the reversal, the claim.
    assert topics_since(client, head) == [
        "ContractInvoice.PaymentReversed",
        "IdempotencyClaim.Claimed",
        "JournalEntry.Posted",
        "JournalEntry.Reversed",
    ]

    right = await pay_invoice(client, "pay-2", invoice["id"], "2379.69", "2025-05-02")
    assert (right["paid"], right["outstanding"]) == ("2379.69", "405.11")
    assert [(p["number"], p["amount"], p["reversedOn"]) for p in right["payments"]] == [
        (1, "2739.69", "2025-05-02"),
        (2, "2379.69", None),
    ]

    # By hand, 31 May: bank 2,379.69; receivable 2,784.80 - 2,379.69 = 405.11; the
    # invoice's revenue, pocket money owed, its stamp duty (200.00 of pocket money is
    # over 77.47) and the fund's 10% as before.
    expected = {
        "1010": ("2379.69", "0.00"),
        "1110": ("405.11", "0.00"),
        "2110": ("0.00", "2.00"),
        "2400": ("0.00", "258.48"),
        "2500": ("0.00", "200.00"),
        "4300": ("0.00", "2584.80"),
        "5000": ("258.48", "0.00"),
        "5500": ("2.00", "0.00"),
    }
    assert await trial(client, "2025-05-02") == expected
    assert await trial(client, "2025-05-31") == expected
    assert (await client.data(CONTRACTS_REPORT))["contracts"]["nodes"] == [
        {"invoiced": "2914.04", "payable": "2784.80", "paid": "2379.69", "outstanding": "405.11"}
    ]
    assert await balance_of(client, "1110", "2025-05-31") == "405.11"
    assert await balance_of(client, "1010", "2025-05-31") == "2379.69"
    fund = (await officer.data(FUND_BALANCE))["fundBalance"]
    assert fund["accrued"] == "258.48"  # a payment is no income: nothing to take back

    # The ledger links the reversal to the payment's entry; no reason in the ledger.
    journal = (
        await client.data(
            'query { journal(account: "1110") { nodes { id description effectiveDate '
            "reversesEntryId reversedByEntryId } } }"
        )
    )["journal"]["nodes"]
    reversal = next(e for e in journal if e["reversesEntryId"] == payment["entryId"])
    assert reversal["id"] == payment["reversalEntryId"]
    assert (
        next(e for e in journal if e["id"] == payment["entryId"])["reversedByEntryId"]
        == (reversal["id"])
    )
    assert "Typed" not in str(journal)
    assert invoice["number"] in reversal["description"]

    # A second reversal is refused; the retry answers the first result; bad input,
    # unknown ids and a reused key change nothing.
    written = client.head()
    again = await reverse_payment(client, "pay-1-fix-again", invoice["id"])
    assert again["__typename"] == "Conflict"
    assert "already reversed on 2025-05-02" in again["message"]
    retry = await reverse_payment(client, "pay-1-fix", invoice["id"])
    assert retry["__typename"] == "ContractInvoice"
    assert retry["payments"][0]["reversedOn"] == "2025-05-02"
    reused = await reverse_payment(client, "pay-1-fix", invoice["id"], reason="Other")
    assert reused["__typename"] == "IdempotencyKeyReused"
    for key, invoice_id, number, day, typename, field in (
        ("future", invoice["id"], 2, _future(), "ValidationError", "effectiveDate"),
        ("early", invoice["id"], 2, "2025-05-01", "ValidationError", "effectiveDate"),
        ("no-payment", invoice["id"], 3, "2025-05-02", "NotFound", None),
        ("no-invoice", UNKNOWN_ID, 1, "2025-05-02", "NotFound", None),
        ("bad-id", "PA-2025-0001", 1, "2025-05-02", "ValidationError", "invoiceId"),
    ):
        bad = await reverse_payment(client, key, invoice_id, number, day)
        assert bad["__typename"] == typename, (key, bad)
        assert bad.get("field") == field, (key, bad)
    empty = await reverse_payment(client, "empty", invoice["id"], 2, reason=" ")
    assert (empty["__typename"], empty["field"]) == ("ValidationError", "reason")
    assert client.head() == written

    # Auditors see the payments, not the reason (free text), and cannot reverse.
    auditor = client_as(Role.AUDITOR)
    read = await auditor.execute(
        "query($id: ID!) { contractInvoice(id: $id) { payments { number reversedOn "
        "reversalReason } } }",
        {"id": invoice["id"]},
    )
    assert read["data"]["contractInvoice"]["payments"][0]["reversedOn"] == "2025-05-02"
    assert read["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert "Typed" not in str(read)
    denied = await auditor.execute(
        REVERSE_PAYMENT,
        {
            "input": {
                "idempotencyKey": "auditor-fix",
                "invoiceId": invoice["id"],
                "paymentNumber": 2,
                "effectiveDate": "2025-05-02",
                "reason": "x",
            }
        },
    )
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert client.head() == written

    # Read models rebuilt from event 0 say the same; the audit replay finds no difference.
    invoices = f"query {{ contractInvoices {{ nodes {{ {INVOICE_WITH_PAYMENTS} }} }} }}"
    before = (await client.data(invoices), await client.data(CONTRACTS_REPORT))
    await client.runtime.run_sync(client.runtime.projector.rebuild)
    assert (await client.data(invoices), await client.data(CONTRACTS_REPORT)) == before
    runtime = client.runtime
    audit = await runtime.run_sync(
        lambda: replay(
            settings=runtime.settings,
            snapshot_engine=runtime.audit.read_engine,
            mapper=runtime.audit.mapper,
            projections=runtime.projector.projections,
        )
    )
    assert audit.ok, audit.differences
    assert audit.row_counts["funding_invoice_payments"] == 2


async def test_a_payment_is_reversed_once_even_by_two_admins_at_once(
    client: GraphQLClient,
) -> None:
    invoice = await march_invoice(client)
    await pay_invoice(client, "pay-1", invoice["id"], "2739.69", "2025-05-02")
    head = client.head()
    first, second = await asyncio.gather(
        reverse_payment(client, "fix-a", invoice["id"]),
        reverse_payment(client, "fix-b", invoice["id"]),
    )
    assert sorted([first["__typename"], second["__typename"]]) == ["Conflict", "ContractInvoice"]
    assert topics_since(client, head) == [
        "ContractInvoice.PaymentReversed",
        "IdempotencyClaim.Claimed",
        "JournalEntry.Posted",
        "JournalEntry.Reversed",
    ]
    assert await trial(client, "2025-05-31") == {
        "1110": ("2784.80", "0.00"),
        "2110": ("0.00", "2.00"),
        "2500": ("0.00", "200.00"),
        "4300": ("0.00", "2584.80"),
        "5500": ("2.00", "0.00"),
    }


# -- correcting a tranche received wrong: reverseGrantTrancheReceipt -----------------

RECEIPT_FIELDS = "receipt receivedOn amount entryId reversedOn reversalEntryId"
GRANT_WITH_RECEIPTS = f"""
    id awarded received recognised outstanding advances closedOn
    tranches {{ number amount receivedOn conditionMetOn status receipts {{ {RECEIPT_FIELDS} }} }}
"""
REVERSE_RECEIPT = f"""
mutation($input: ReverseGrantTrancheReceiptInput!) {{
  reverseGrantTrancheReceipt(input: $input) {{
    __typename
    ... on Grant {{ {GRANT_WITH_RECEIPTS} tranches {{ receipts {{ reversalReason }} }} }}
    {ERRORS}
  }}
}}
"""
GRANT_STEP = {
    "receiveGrantTranche": "GrantTrancheInput",
    "meetGrantCondition": "GrantTrancheInput",
    "closeGrant": "CloseGrantInput",
    "reduceGrant": "ReduceGrantInput",
}
PUBLIC_REPORT = (
    "query { publicGrantsReport(year: 2025) "
    "{ total dutyApplies receipts { tranche amount receivedOn } } }"
)


async def award(client: GraphQLClient, key: str, tranches: list[str], **more: Any) -> str:
    value = {
        "idempotencyKey": key,
        "funder": "Regione Lombardia",
        "purpose": "Semi-autonomy housing",
        "amount": f"{sum(float(t) for t in tranches):.2f}",
        "awardedOn": "2025-01-10",
        "publicFunder": True,
        "tranches": [{"amount": t, "condition": f"Step {i + 1}"} for i, t in enumerate(tranches)],
        **more,
    }
    result = (await client.data(AWARD, {"input": value}))["awardGrant"]
    assert result["__typename"] == "Grant", result
    return str(result["id"])


async def grant_step(client: GraphQLClient, mutation: str, **value: Any) -> dict[str, Any]:
    query = (
        f"mutation($input: {GRANT_STEP[mutation]}!) {{ {mutation}(input: $input) "
        f"{{ __typename ... on Grant {{ {GRANT_WITH_RECEIPTS} }} {ERRORS} }} }}"
    )
    result: dict[str, Any] = (await client.data(query, {"input": value}))[mutation]
    return result


async def reverse_receipt(
    client: GraphQLClient,
    key: str,
    grant_id: str,
    tranche: int = 2,
    day: str = "2025-03-03",
    reason: str = "The money was tranche 1's",
) -> dict[str, Any]:
    value = {
        "idempotencyKey": key,
        "grantId": grant_id,
        "tranche": tranche,
        "effectiveDate": day,
        "reason": reason,
    }
    result: dict[str, Any] = (await client.data(REVERSE_RECEIPT, {"input": value}))[
        "reverseGrantTrancheReceipt"
    ]
    return result


async def test_a_tranche_received_as_the_wrong_one_is_reversed_and_the_grant_closes(
    client: GraphQLClient, client_as: Any
) -> None:
    officer = client_as(Role.FUND_OFFICER)
    await fund_policy(officer, "grants-10", "GRANT_UNRESTRICTED", "10")
    grant_id = await award(client, "grant-region", ["8000.00", "12000.00"])

    # Tranche 1's 8,000.00 arrives on 3 March; the clerk records it as tranche 2.
    wrong = await grant_step(
        client,
        "receiveGrantTranche",
        idempotencyKey="t2",
        grantId=grant_id,
        tranche=2,
        date="2025-03-03",
    )
    assert (wrong["received"], wrong["advances"]) == ("12000.00", "12000.00")
    receipt = wrong["tranches"][1]["receipts"][0]
    published = (await client.data(PUBLIC_REPORT))["publicGrantsReport"]
    assert (published["total"], published["dutyApplies"]) == ("12000.00", True)
    # Tranche 1's condition is met: revenue against a receivable (the fund takes 10%).
    met = await grant_step(
        client,
        "meetGrantCondition",
        idempotencyKey="t1-met",
        grantId=grant_id,
        tranche=1,
        date="2025-03-10",
    )
    assert met["recognised"] == "8000.00"
    # The grant cannot close with the advance held, nor can the ledger reverse it.
    refused = await grant_step(
        client, "closeGrant", idempotencyKey="close-early", grantId=grant_id, date="2025-03-15"
    )
    assert refused["__typename"] == "Conflict"
    assert "holds advances on tranche(s) 2" in refused["message"]
    by_hand = await client.data(
        "mutation($i: ReverseJournalEntryInput!) { reverseJournalEntry(input: $i) { __typename } }",
        {
            "i": {
                "idempotencyKey": "by-hand",
                "entryId": receipt["entryId"],
                "effectiveDate": "2025-03-15",
                "description": "wrong tranche",
            }
        },
    )
    assert by_hand["reverseJournalEntry"]["__typename"] == "Conflict"
    nothing = await reverse_receipt(client, "t1-fix", grant_id, tranche=1)
    assert nothing["__typename"] == "Conflict"
    assert "was not received" in nothing["message"]

    # The receipt is reversed, dated its own day.
    head = client.head()
    fixed = await reverse_receipt(client, "t2-fix", grant_id)
    assert fixed["__typename"] == "Grant", fixed
    assert {k: fixed[k] for k in ("received", "recognised", "outstanding", "advances")} == {
        "received": "0.00",
        "recognised": "8000.00",
        "outstanding": "20000.00",
        "advances": "0.00",
    }
    tranche_2 = fixed["tranches"][1]
    assert (tranche_2["status"], tranche_2["receivedOn"]) == ("PENDING", None)
    reversed_receipt = tranche_2["receipts"][0]
    assert reversed_receipt["reversedOn"] == "2025-03-03"
    assert reversed_receipt["reversalReason"] == "The money was tranche 1's"
    assert topics_since(client, head) == [
        "Grant.TrancheReceiptReversed",
        "IdempotencyClaim.Claimed",
        "JournalEntry.Posted",
        "JournalEntry.Reversed",
    ]
    # The advance is gone from the ledger, as it was before the receipt.
    assert await trial(client, "2025-03-10") == {
        "1120": ("8000.00", "0.00"),
        "2400": ("0.00", "800.00"),
        "4200": ("0.00", "8000.00"),
        "5000": ("800.00", "0.00"),
    }

    # Tranche 1's money came on 3 March, but its condition met on the 10th is already
    # recorded (against a receivable): a receipt dated before it would settle that
    # receivable before it was posted, so it is refused, naming the condition's date.
    early = await grant_step(
        client,
        "receiveGrantTranche",
        idempotencyKey="t1-early",
        grantId=grant_id,
        tranche=1,
        date="2025-03-03",
    )
    assert (early["__typename"], early["field"]) == ("ValidationError", "date")
    assert "condition of tranche 1 met (2025-03-10)" in early["message"]
    # Undoing a condition met is not supported: the receipt settles the receivable on
    # or after the condition's date.
    right = await grant_step(
        client,
        "receiveGrantTranche",
        idempotencyKey="t1",
        grantId=grant_id,
        tranche=1,
        date="2025-03-10",
    )
    assert {k: right[k] for k in ("received", "recognised", "outstanding", "advances")} == {
        "received": "8000.00",
        "recognised": "8000.00",
        "outstanding": "12000.00",
        "advances": "0.00",
    }
    # Now it closes: tranche 2, never paid nor earned, is cancelled; nothing is posted.
    closed = await grant_step(
        client, "closeGrant", idempotencyKey="close", grantId=grant_id, date="2025-03-20"
    )
    assert closed["__typename"] == "Grant", closed
    assert closed["tranches"][1]["status"] == "CANCELLED"
    assert (closed["awarded"], closed["received"], closed["recognised"]) == (
        "8000.00",
        "8000.00",
        "8000.00",
    )

    # By hand, year end: bank 8,000.00; revenue 8,000.00; the fund's 10% = 800.00;
    # no advance (2300) nor receivable (1120) left.
    assert await trial(client, "2025-12-31") == {
        "1010": ("8000.00", "0.00"),
        "2400": ("0.00", "800.00"),
        "4200": ("0.00", "8000.00"),
        "5000": ("800.00", "0.00"),
    }
    for code, balance in (("1010", "8000.00"), ("2300", "0.00"), ("4200", "8000.00")):
        assert await balance_of(client, code, "2025-12-31") == balance, code
    assert (await officer.data(FUND_BALANCE))["fundBalance"]["accrued"] == "800.00"
    published = (await client.data(PUBLIC_REPORT))["publicGrantsReport"]
    assert published == {
        "total": "8000.00",
        "dutyApplies": False,
        "receipts": [{"tranche": 1, "amount": "8000.00", "receivedOn": "2025-03-10"}],
    }
    totals = (await client.data("query { grants { totals { received recognised advances } } }"))[
        "grants"
    ]["totals"]
    assert totals == {"received": "8000.00", "recognised": "8000.00", "advances": "0.00"}

    # The closing settled the grant on that receipt: it is not reversed any more. A
    # second reversal is refused; the retry answers; bad input changes nothing.
    written = client.head()
    after_close = await reverse_receipt(client, "t1-fix-late", grant_id, tranche=1)
    assert after_close["__typename"] == "Conflict"
    assert "closed on 2025-03-20" in after_close["message"]
    again = await reverse_receipt(client, "t2-fix-again", grant_id)
    assert again["__typename"] == "Conflict"
    assert "already reversed on 2025-03-03" in again["message"]
    retry = await reverse_receipt(client, "t2-fix", grant_id)
    assert retry["__typename"] == "Grant"
    assert retry["tranches"][1]["receipts"][0]["reversedOn"] == "2025-03-03"
    assert client.head() == written

    report = "query { grants { nodes { " + GRANT_WITH_RECEIPTS + " } } }"
    before = (await client.data(report), await client.data(PUBLIC_REPORT))
    await client.runtime.run_sync(client.runtime.projector.rebuild)
    assert (await client.data(report), await client.data(PUBLIC_REPORT)) == before
    runtime = client.runtime
    audit = await runtime.run_sync(
        lambda: replay(
            settings=runtime.settings,
            snapshot_engine=runtime.audit.read_engine,
            mapper=runtime.audit.mapper,
            projections=runtime.projector.projections,
        )
    )
    assert audit.ok, audit.differences
    assert audit.row_counts["funding_tranche_receipts"] == 2


async def test_a_receipt_reversed_into_its_receivable_is_received_again_with_its_own_entry(
    client: GraphQLClient,
) -> None:
    grant_id = await award(client, "grant-restricted", ["5000.00"], restricted=True)
    step = {"grantId": grant_id, "tranche": 1}
    await grant_step(client, "meetGrantCondition", idempotencyKey="met", date="2025-02-01", **step)
    first = await grant_step(
        client, "receiveGrantTranche", idempotencyKey="r1", date="2025-02-10", **step
    )
    # Recorded on the 10th, the money came on the 20th: reverse, then receive again.
    fixed = await reverse_receipt(client, "fix", grant_id, tranche=1, day="2025-02-10")
    assert fixed["tranches"][0]["status"] == "RECEIVABLE"
    assert await trial(client, "2025-02-10") == {
        "1120": ("5000.00", "0.00"),
        "4210": ("0.00", "5000.00"),
    }
    second = await grant_step(
        client, "receiveGrantTranche", idempotencyKey="r2", date="2025-02-20", **step
    )
    receipts = second["tranches"][0]["receipts"]
    assert [(r["receipt"], r["receivedOn"], r["reversedOn"]) for r in receipts] == [
        (1, "2025-02-10", "2025-02-10"),
        (2, "2025-02-20", None),
    ]
    assert receipts[0]["entryId"] == first["tranches"][0]["receipts"][0]["entryId"]
    assert receipts[1]["entryId"] != receipts[0]["entryId"]
    assert await trial(client, "2025-02-19") == {
        "1120": ("5000.00", "0.00"),
        "4210": ("0.00", "5000.00"),
    }
    assert await trial(client, "2025-02-20") == {
        "1010": ("5000.00", "0.00"),
        "4210": ("0.00", "5000.00"),
    }
    by_grant = (
        await client.data(
            "query($c: String!) { ledgerEntriesByCause(cause: $c) { nodes { cause } } }",
            {"c": grant_id},
        )
    )["ledgerEntriesByCause"]["nodes"]
    assert f"funding:grant:{grant_id}:tranche:1:received:2" in {e["cause"] for e in by_grant}


async def test_a_receipt_a_later_step_depends_on_or_bad_input_is_refused_and_stores_nothing(
    client: GraphQLClient,
) -> None:
    met_id = await award(client, "grant-met", ["5000.00"])
    cut_id = await award(client, "grant-cut", ["5000.00", "5000.00"])
    ok_id = await award(client, "grant-ok", ["1000.00"])
    for grant_id in (met_id, cut_id, ok_id):
        received = await grant_step(
            client,
            "receiveGrantTranche",
            idempotencyKey=f"r-{grant_id}",
            grantId=grant_id,
            tranche=1,
            date="2025-02-01",
        )
        assert received["__typename"] == "Grant"
    await grant_step(
        client,
        "meetGrantCondition",
        idempotencyKey="met",
        grantId=met_id,
        tranche=1,
        date="2025-02-10",
    )
    await grant_step(
        client,
        "reduceGrant",
        idempotencyKey="cut",
        grantId=cut_id,
        budgetedCosts="10000.00",
        reportedCosts="8000.00",
        date="2025-04-01",
    )
    head = client.head()
    condition = await reverse_receipt(client, "fix-met", met_id, tranche=1)
    assert condition["__typename"] == "Conflict"
    assert "condition" in condition["message"]
    assert "met on 2025-02-10, after its receipt" in condition["message"]
    cut = await reverse_receipt(client, "fix-cut", cut_id, tranche=1)
    assert cut["__typename"] == "Conflict"
    assert "cut pro rata on 2025-04-01" in cut["message"]
    for key, grant_id, tranche, day, reason, typename, field in (
        ("future", ok_id, 1, _future(), "x", "ValidationError", "effectiveDate"),
        ("early", ok_id, 1, "2025-01-31", "x", "ValidationError", "effectiveDate"),
        ("no-tranche", ok_id, 2, "2025-02-01", "x", "ValidationError", "tranche"),
        ("no-grant", UNKNOWN_ID, 1, "2025-02-01", "x", "NotFound", None),
        ("bad-id", "grant-ok", 1, "2025-02-01", "x", "ValidationError", "grantId"),
        ("long", ok_id, 1, "2025-02-01", "x" * 501, "ValidationError", "reason"),
    ):
        bad = await reverse_receipt(client, key, grant_id, tranche, day, reason)
        assert bad["__typename"] == typename, (key, bad)
        assert bad.get("field") == field, (key, bad)
    assert client.head() == head
    # Each grant's receipt stands: 11,000.00 in the bank; grant-met's 5,000.00 earned,
    # grant-cut's and grant-ok's 6,000.00 still advances.
    assert await trial(client, "2025-12-31") == {
        "1010": ("11000.00", "0.00"),
        "2300": ("0.00", "6000.00"),
        "4200": ("0.00", "5000.00"),
    }


async def test_a_receipt_is_reversed_once_even_by_two_admins_at_once(
    client: GraphQLClient,
) -> None:
    grant_id = await award(client, "grant-race", ["8000.00", "12000.00"])
    await grant_step(
        client,
        "receiveGrantTranche",
        idempotencyKey="t2",
        grantId=grant_id,
        tranche=2,
        date="2025-03-03",
    )
    head = client.head()
    first, second = await asyncio.gather(
        reverse_receipt(client, "fix-a", grant_id), reverse_receipt(client, "fix-b", grant_id)
    )
    assert sorted([first["__typename"], second["__typename"]]) == ["Conflict", "Grant"]
    assert topics_since(client, head) == [
        "Grant.TrancheReceiptReversed",
        "IdempotencyClaim.Claimed",
        "JournalEntry.Posted",
        "JournalEntry.Reversed",
    ]
    assert await trial(client, "2025-12-31") == {}


async def test_a_receipt_dated_before_its_recorded_condition_is_refused_like_the_reverse(
    client: GraphQLClient,
) -> None:
    """Review F1: a receipt dated before the condition already met would settle a
    receivable not yet posted (1120 negative in between): refused as the opposite
    order is, and nothing is stored."""
    met_first = await award(client, "grant-met-first", ["5000.00"])
    met = await grant_step(
        client,
        "meetGrantCondition",
        idempotencyKey="gB-c1",
        grantId=met_first,
        tranche=1,
        date="2025-06-30",
    )
    assert met["tranches"][0]["status"] == "RECEIVABLE"
    head = client.head()
    early = await grant_step(
        client,
        "receiveGrantTranche",
        idempotencyKey="gB-r1",
        grantId=met_first,
        tranche=1,
        date="2025-03-01",
    )
    assert (early["__typename"], early["field"]) == ("ValidationError", "date")
    assert "2025-06-30" in early["message"]
    assert client.head() == head
    assert await balance_of(client, "1120", "2025-03-31") == "0.00"
    # The same day or later settles the receivable.
    same_day = await grant_step(
        client,
        "receiveGrantTranche",
        idempotencyKey="gB-r2",
        grantId=met_first,
        tranche=1,
        date="2025-06-30",
    )
    assert same_day["tranches"][0]["status"] == "RECOGNISED"
    assert await trial(client, "2025-06-30") == {
        "1010": ("5000.00", "0.00"),
        "4200": ("0.00", "5000.00"),
    }

    # The opposite order, refused by the same rule: a condition before the receipt.
    received_first = await award(client, "grant-received-first", ["1000.00"])
    await grant_step(
        client,
        "receiveGrantTranche",
        idempotencyKey="gE-r1",
        grantId=received_first,
        tranche=1,
        date="2025-04-01",
    )
    late = await grant_step(
        client,
        "meetGrantCondition",
        idempotencyKey="gE-c1",
        grantId=received_first,
        tranche=1,
        date="2025-03-01",
    )
    assert (late["__typename"], late["field"]) == ("ValidationError", "date")
    assert "receipt of tranche 1 (2025-04-01)" in late["message"]


async def test_a_close_or_a_cut_dated_before_the_grants_facts_is_refused_naming_the_date(
    client: GraphQLClient,
) -> None:
    """Review F2 (a)-(d): a closing or a pro-rata cut is not dated before the latest
    receipt, condition or cut already on the grant; then write-offs and cuts never
    come before the revenue they reduce, nor a receipt after the closing."""
    close_after_condition = await award(client, "cl-award", ["1000.00"])
    close_after_receipt = await award(client, "g-D", ["1000.00"])
    cut_after_condition = await award(client, "g-C", ["1000.00", "2000.00"])
    cut_after_receipt = await award(client, "rr-award", ["1000.00", "1000.00"])
    for key, grant_id, mutation, tranche, day in (
        ("cl-cond", close_after_condition, "meetGrantCondition", 1, "2025-09-01"),
        ("gD-c1", close_after_receipt, "meetGrantCondition", 1, "2025-09-01"),
        ("gD-r1", close_after_receipt, "receiveGrantTranche", 1, "2025-09-01"),
        ("gC-c2", cut_after_condition, "meetGrantCondition", 2, "2025-11-30"),
        ("rr-r1", cut_after_receipt, "receiveGrantTranche", 1, "2025-04-01"),
    ):
        done = await grant_step(
            client, mutation, idempotencyKey=key, grantId=grant_id, tranche=tranche, date=day
        )
        assert done["__typename"] == "Grant", (key, done)
    head = client.head()
    for key, grant_id, mutation, more, latest in (
        ("cl-close", close_after_condition, "closeGrant", {"date": "2025-06-01"}, "2025-09-01"),
        ("gD-close", close_after_receipt, "closeGrant", {"date": "2025-03-01"}, "2025-09-01"),
        (
            "gC-red",
            cut_after_condition,
            "reduceGrant",
            {"budgetedCosts": "3000.00", "reportedCosts": "2000.00", "date": "2025-10-15"},
            "2025-11-30",
        ),
        (
            "rr-red",
            cut_after_receipt,
            "reduceGrant",
            {"budgetedCosts": "2000.00", "reportedCosts": "1500.00", "date": "2025-03-01"},
            "2025-04-01",
        ),
    ):
        refused = await grant_step(client, mutation, idempotencyKey=key, grantId=grant_id, **more)
        assert (refused["__typename"], refused["field"]) == ("ValidationError", "date"), key
        assert f"({latest})" in refused["message"], (key, refused)
    assert client.head() == head
    # Nothing negative at any date in between.
    for day in ("2025-06-01", "2025-10-15", "2025-11-29"):
        lines = await trial(client, day)
        for account in ("1120", "4200"):
            debit_, credit_ = lines.get(account, ("0.00", "0.00"))
            side = credit_ if account == "1120" else debit_
            assert side == "0.00", (day, account, lines[account])

    # Dated on or after the latest fact, they are accepted, and the receipt stays
    # reversible while the cut was recorded before it was received.
    closed = await grant_step(
        client,
        "closeGrant",
        idempotencyKey="cl-close-2",
        grantId=close_after_condition,
        date="2025-09-01",
    )
    assert closed["tranches"][0]["status"] == "CANCELLED"
    cut = await grant_step(
        client,
        "reduceGrant",
        idempotencyKey="rr-red-2",
        grantId=cut_after_receipt,
        budgetedCosts="2000.00",
        reportedCosts="1500.00",
        date="2025-04-01",
    )
    assert cut["awarded"] == "1500.00", cut
    refused = await reverse_receipt(
        client, "rr-rev", cut_after_receipt, tranche=1, day="2025-04-01"
    )
    assert refused["__typename"] == "Conflict"
    # The message gives both dates and does not claim an order they contradict.
    assert "cut pro rata on 2025-04-01 with tranche 1 received (2025-04-01)" in refused["message"]


CONTRACTS_AT = """
query($from: Date, $to: Date) {
  contracts(from: $from, to: $to) { nodes { invoiced payable paid outstanding } }
}
"""


async def test_the_contracts_report_counts_payments_as_the_ledger_does_at_a_period_end(
    client: GraphQLClient,
) -> None:
    """Review F3: `paid` counts payments dated up to `to`, less reversals dated up to
    `to`, so with no `from` outstanding equals 1110 as of `to`, at every period end."""
    march = await march_invoice(client)  # issued 2025-04-01, payable 2,784.80
    contract_id = (await client.data("query { contracts { nodes { id } } }"))["contracts"]["nodes"][
        0
    ]["id"]
    for day in (1, 2):
        await presence(client, contract_id, f"2025-04-0{day}", 10)
    april = (
        await client.data(
            INVOICE,
            {
                "input": {
                    "idempotencyKey": "invoice-2025-04",
                    "contractId": contract_id,
                    "month": "2025-04",
                    "issueDate": "2025-05-02",
                }
            },
        )
    )["invoiceContract"]
    assert april["__typename"] == "ContractInvoice", april
    # 20 presence days x 32.31 = 646.20 net, VAT 32.31, pocket money 50.00: payable 696.20.
    assert april["payable"] == "696.20"
    # March's invoice: 1,000.00 paid on 10 May, 1,784.80 on 20 June; a wrong 500.00 on
    # 15 May is reversed on 3 June. April's: paid in full on 5 July.
    assert (await pay_invoice(client, "p1", march["id"], "1000.00", "2025-05-10"))["paid"]
    assert (await pay_invoice(client, "p2", march["id"], "500.00", "2025-05-15"))["paid"]
    assert (await reverse_payment(client, "p2-fix", march["id"], 2, "2025-06-03", "wrong"))[
        "paid"
    ] == "1000.00"
    assert (await pay_invoice(client, "p3", march["id"], "1784.80", "2025-06-20"))["paid"]
    assert (await pay_invoice(client, "p4", april["id"], "696.20", "2025-07-05"))["paid"]

    async def report(from_: str | None, to: str | None) -> dict[str, str]:
        nodes = (await client.data(CONTRACTS_AT, {"from": from_, "to": to}))["contracts"]["nodes"]
        assert len(nodes) == 1
        return dict(nodes[0])

    for as_of, paid in (
        ("2025-04-30", "0.00"),
        ("2025-05-10", "1000.00"),
        ("2025-05-31", "1500.00"),  # the wrong 500.00 counts until its reversal
        ("2025-06-03", "1000.00"),
        ("2025-06-30", "2784.80"),
        ("2025-07-31", "3481.00"),
    ):
        at = await report(None, as_of)
        assert at["paid"] == paid, (as_of, at)
        assert at["outstanding"] == await balance_of(client, "1110", as_of), (as_of, at)
    # A period: April's invoices (March's, issued 1 April), with what had come in by
    # 30 April: nothing. May's: April's invoice, unpaid on 31 May.
    assert await report("2025-04-01", "2025-04-30") == {
        "invoiced": "2914.04",
        "payable": "2784.80",
        "paid": "0.00",
        "outstanding": "2784.80",
    }
    assert (await report("2025-05-01", "2025-05-31"))["paid"] == "0.00"
    assert (await report("2025-04-01", "2025-06-30"))["paid"] == "2784.80"
    # With no `to`, every payment not reversed: as the invoices say.
    assert (await report(None, None))["paid"] == "3481.00"
    assert (await report(None, None))["outstanding"] == "0.00"


async def test_invalid_vat_numbers_and_tax_codes_are_refused_naming_the_field(
    client: GraphQLClient,
) -> None:
    """Review F4: the SdI rejects an invoice with a wrong partita IVA or codice fiscale,
    and an issued invoice cannot be re-issued: refuse them where they are recorded,
    without repeating the value."""
    profile = (
        "mutation($input: SetInvoicingProfileInput!) { setInvoicingProfile(input: $input) "
        f"{{ __typename ... on InvoicingProfile {{ name }} {ERRORS} }} }}"
    )
    address = {
        "street": "Via Giardino 1",
        "postcode": "25043",
        "municipality": "Breno",
        "province": "BS",
    }
    base = {"name": "K-Pax", "taxRegime": "RF01", "address": address}
    head = client.head()
    for key, more, field in (
        ("p-check", {"vatNumber": "01234567890"}, "vatNumber"),
        ("p-zero", {"vatNumber": "00000000000"}, "vatNumber"),
        ("p-short", {"vatNumber": "0301234567"}, "vatNumber"),
        ("p-tax", {"vatNumber": "03012345678", "taxCode": "03012345670"}, "taxCode"),
    ):
        value = {"idempotencyKey": key, **base, **more}
        refused = (await client.data(profile, {"input": value}))["setInvoicingProfile"]
        assert (refused["__typename"], refused["field"]) == ("ValidationError", field), key
        for digits in more.values():
            assert digits not in refused["message"]
    for key, code in (
        ("c-check", "80012345678"),
        ("c-13", "ABCDEFGHIJKLM"),
        ("c-zero", "00000000000"),
        ("c-person", "RSSMRA85T10A562T"),  # the check letter is S
    ):
        value = contract_input(key, cig="CF13CF13CF", authorityTaxCode=code)
        refused = (await client.data(REGISTER, {"input": value}))["registerContract"]
        assert (refused["__typename"], refused["field"]) == ("ValidationError", "authorityTaxCode")
        assert code not in refused["message"]
    assert client.head() == head
    # Valid codes: a body's 11 digits, a person's 16 characters; the profile's VAT number.
    for key, cig, code in (
        ("c-body", "CFBODY0001", "80012345676"),
        ("c-person-ok", "CFPERSON01", "RSSMRA85T10A562S"),
    ):
        value = contract_input(key, cig=cig, authorityTaxCode=code)
        accepted = (await client.data(REGISTER, {"input": value}))["registerContract"]
        assert accepted["__typename"] == "Contract", accepted
    value = {"idempotencyKey": "p-ok", **base, "vatNumber": "03012345678", "taxCode": "03012345678"}
    accepted = (await client.data(profile, {"input": value}))["setInvoicingProfile"]
    assert accepted["__typename"] == "InvoicingProfile", accepted


async def test_ledger_refusals_name_the_input_field_the_caller_sent(
    client: GraphQLClient,
) -> None:
    """Review F5: the ledger's checks of a funding command's entry name the command's
    own input: `date` for a donation before the books opened, `month` for an invoice
    over the amount ceiling (never `effectiveDate` or `postings[0].amount`)."""
    donation = (
        await client.data(
            "mutation($input: RecordDonationInput!) { recordDonation(input: $input) "
            f"{{ __typename {ERRORS} }} }}",
            {"input": {"idempotencyKey": "d7", "amount": "5.00", "date": "1999-03-15"}},
        )
    )["recordDonation"]
    assert (donation["__typename"], donation["field"]) == ("ValidationError", "date")
    assert "books opened" in donation["message"]

    contract_id = await register(
        client, key="big", cig="BIGBIGBIG1", dailyRate="9999.99", capacity=1000, passThroughItems=[]
    )
    for day in ("2025-01-01", "2025-01-02"):
        assert (await presence(client, contract_id, day, 1000))["revision"] == 1
    head = client.head()
    value = {
        "idempotencyKey": "i-big",
        "contractId": contract_id,
        "month": "2025-01",
        "issueDate": "2025-04-03",
    }
    invoice = (await client.data(INVOICE, {"input": value}))["invoiceContract"]
    assert (invoice["__typename"], invoice["field"]) == ("ValidationError", "month")
    assert "ceiling" in invoice["message"]
    assert "invoice" in invoice["message"]
    assert client.head() == head
