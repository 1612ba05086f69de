"""Role x operation matrix: every query and mutation, every role, deny by default.

The expected matrix is written out here, so widening anyone's access is a visible
change to this file. A root field missing from it fails the test. Each (role,
operation) pair is then executed over HTTP with generated arguments: a role outside
the matrix must get FORBIDDEN and store nothing; a role inside must not.
"""

from __future__ import annotations

import functools
from typing import Any

import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLUnionType,
    get_named_type,
)

from gateway.permissions import allowed_roles
from gateway.schema import build_schema
from services.common.auth import Role
from tests.e2e.conftest import GraphQLClient

A, AU, FD, V, FO = Role.ADMIN, Role.AUDITOR, Role.FRONT_DESK, Role.VOLUNTEER, Role.FUND_OFFICER

EXPECTED: dict[str, frozenset[Role]] = {
    "Query.accounts": frozenset({A, AU}),
    "Query.journal": frozenset({A, AU}),
    "Query.trialBalance": frozenset({A, AU}),
    "Query.periodTrialBalance": frozenset({A, AU}),
    "Query.accountBalance": frozenset({A, AU}),
    "Mutation.postJournalEntry": frozenset({A}),
    "Mutation.reverseJournalEntry": frozenset({A}),
    "Mutation.openAccount": frozenset({A}),
    "Mutation.closeAccount": frozenset({A}),
    # Closing the books: the admin closes; whoever reads the ledger sees the close.
    "Mutation.closeBooks": frozenset({A}),
    "Query.booksClosing": frozenset({A, AU}),
    "Subscription.accountBalanceUpdates": frozenset({A, AU}),
    "Subscription.tillTotals": frozenset({A, AU, V}),
    # Hotel (issue #3): front desk and admin; auditors read the reports.
    "Mutation.cancelBooking": frozenset({A, FD}),
    "Mutation.checkIn": frozenset({A, FD}),
    "Mutation.undoCheckIn": frozenset({A, FD}),
    "Mutation.changeGuests": frozenset({A, FD}),
    "Mutation.changeStay": frozenset({A, FD}),
    "Mutation.checkOut": frozenset({A, FD}),
    "Mutation.createBooking": frozenset({A, FD}),
    "Mutation.defineRoom": frozenset({A}),
    "Mutation.markGuestsReported": frozenset({A, FD}),
    "Mutation.eraseGuestData": frozenset({A}),
    "Mutation.markNoShow": frozenset({A, FD}),
    "Mutation.waiveNoShowPenalty": frozenset({A, FD}),
    "Mutation.postCharge": frozenset({A, FD}),
    "Mutation.voidCharge": frozenset({A, FD}),
    "Mutation.recordPayment": frozenset({A, FD}),
    "Mutation.recordRefund": frozenset({A, FD}),
    "Mutation.setHotelPolicy": frozenset({A}),
    "Query.alloggiatiPending": frozenset({A, AU, FD}),
    "Query.alloggiatiPendingPage": frozenset({A, AU, FD}),
    "Query.guestDataErasable": frozenset({A}),
    "Query.alloggiatiRecords": frozenset({A, AU, FD}),
    "Query.booking": frozenset({A, AU, FD}),
    "Query.bookings": frozenset({A, AU, FD}),
    "Query.hotelConfiguration": frozenset({A, AU, FD}),
    "Query.istatMonthly": frozenset({A, AU, FD}),
    "Query.occupancy": frozenset({A, AU, FD}),
    "Query.touristTaxReport": frozenset({A, AU, FD}),
    # Shop (issue #4): volunteers (own till, checked in the service) and admin; auditors read.
    "Mutation.closeCashSession": frozenset({A, V}),
    "Mutation.openCashSession": frozenset({A, V}),
    "Mutation.recordCashMovement": frozenset({A, V}),
    "Mutation.recordGoodsIntake": frozenset({A, V}),
    "Mutation.refundSale": frozenset({A, V}),
    "Mutation.ringSale": frozenset({A, V}),
    "Mutation.setShopPolicy": frozenset({A}),
    "Mutation.withdrawShopPolicy": frozenset({A}),
    "Query.cashSession": frozenset({A, AU, V}),
    "Query.dailyClose": frozenset({A, AU, V}),
    "Query.openCashSessionOf": frozenset({A, AU, V}),
    "Query.sale": frozenset({A, AU, V}),
    "Query.sales": frozenset({A, AU, V}),
    "Query.sellThrough": frozenset({A, AU, V}),
    "Query.shopPolicy": frozenset({A, AU, V}),
    "Query.shopTotals": frozenset({A, AU, V}),
    "Query.xReport": frozenset({A, AU, V}),
    "Query.zReport": frozenset({A, AU, V}),
    "Query.zReports": frozenset({A, AU, V}),
    # Funding (issue #5): admin writes; admin and auditor read.
    "Mutation.awardGrant": frozenset({A}),
    "Mutation.closeGrant": frozenset({A}),
    "Mutation.invoiceContract": frozenset({A}),
    "Mutation.meetGrantCondition": frozenset({A}),
    "Mutation.receiveGrantTranche": frozenset({A}),
    "Mutation.recordContractPayment": frozenset({A}),
    "Mutation.recordDonation": frozenset({A}),
    "Mutation.recordInKindDonation": frozenset({A}),
    "Mutation.recordPresence": frozenset({A}),
    "Mutation.recordVolunteerHours": frozenset({A}),
    "Mutation.reduceGrant": frozenset({A}),
    "Mutation.registerContract": frozenset({A}),
    "Mutation.reverseContractPayment": frozenset({A}),
    "Mutation.reverseDonation": frozenset({A}),
    "Mutation.reverseGrantTrancheReceipt": frozenset({A}),
    "Mutation.setInvoicingProfile": frozenset({A}),
    "Mutation.continueInvoiceNumbering": frozenset({A}),
    "Query.contract": frozenset({A, AU}),
    "Query.contractInvoice": frozenset({A, AU}),
    "Query.contractInvoices": frozenset({A, AU}),
    "Query.contracts": frozenset({A, AU}),
    "Query.donations": frozenset({A, AU}),
    "Query.grant": frozenset({A, AU}),
    "Query.grants": frozenset({A, AU}),
    "Query.nonCashContributions": frozenset({A, AU}),
    "Query.presenceRegister": frozenset({A, AU}),
    "Query.publicGrantsReport": frozenset({A, AU}),
    "Query.verifyLedger": frozenset({A, AU}),
    "Query.auditHead": frozenset({A, AU}),
    "Query.publishedAuditHeads": frozenset({A, AU}),
    "Query.eventHistory": frozenset({A, AU}),
    "Query.ledgerEntriesByCause": frozenset({A, AU}),
    "Mutation.publishAuditHead": frozenset({A, AU}),
    # Welfare fund: aggregates for the fund officer, admin and auditor; beneficiary
    # data for the fund officer only. approveDisbursement admits admin to the
    # resolver, which refuses it with ApprovalNotAllowed (test_welfare_graphql.py).
    # The fund's rules are the territorial enterprise's (fund officer): the
    # cooperative (admin) pays into the fund and may not lower its own contribution.
    "Query.fundBalance": frozenset({FO, A, AU}),
    "Query.fundStatement": frozenset({FO, A, AU}),
    "Query.provenance": frozenset({FO, A, AU}),
    "Query.redistributionPolicies": frozenset({FO, A, AU}),
    "Query.stipendRules": frozenset({FO, A, AU}),
    "Query.disbursements": frozenset({FO, A, AU}),
    "Query.disbursement": frozenset({FO, A, AU}),
    "Query.beneficiary": frozenset({FO}),
    "Query.beneficiaries": frozenset({FO}),
    "Mutation.setRedistributionPolicy": frozenset({FO}),
    "Mutation.withdrawRedistributionPolicy": frozenset({FO}),
    "Mutation.setStipendRules": frozenset({FO}),
    "Mutation.withdrawStipendRules": frozenset({FO}),
    "Mutation.enrollBeneficiary": frozenset({FO}),
    "Mutation.recordAttendance": frozenset({FO}),
    "Mutation.commitDisbursement": frozenset({FO}),
    "Mutation.approveDisbursement": frozenset({FO, A}),
    "Mutation.payDisbursement": frozenset({FO, A}),
    "Mutation.cancelDisbursement": frozenset({FO, A}),
    "Mutation.reverseDisbursementPayment": frozenset({FO, A}),
    "Mutation.forgetBeneficiary": frozenset({FO}),
    "Subscription.fundBalanceUpdates": frozenset({FO, A, AU}),
}

SCALAR_SAMPLES: dict[str, Any] = {
    "String": "x1",
    "ID": "00000000-0000-0000-0000-000000000001",
    "Int": 1,
    "Float": 1.0,
    "Boolean": False,
    "Date": "2025-01-01",
    "DateTime": "2025-01-01T12:00:00+00:00",
    "Money": "1.00",
    "Program": "INTERNSHIP",
}


def schema_fields() -> dict[str, frozenset[Role]]:
    graphql_schema = build_schema()._schema
    actual: dict[str, frozenset[Role]] = {}
    roots = {
        "Query": graphql_schema.query_type,
        "Mutation": graphql_schema.mutation_type,
        "Subscription": graphql_schema.subscription_type,
    }
    for root_name, root_type in roots.items():
        if root_type is None:
            continue
        for name, field in root_type.fields.items():
            definition = field.extensions["strawberry-definition"]
            actual[f"{root_name}.{name}"] = allowed_roles(definition.permission_classes)
    return actual


def test_every_root_field_is_in_the_matrix_and_denies_by_default() -> None:
    actual = schema_fields()
    assert set(actual) == set(EXPECTED), "add new operations to EXPECTED with their roles"
    for name, roles in actual.items():
        assert roles, f"{name} has no allow(...): deny by default means it must name its roles"
        assert roles == EXPECTED[name], name


def sample(type_: GraphQLInputType) -> Any:
    if isinstance(type_, GraphQLNonNull):
        return sample(type_.of_type)
    if isinstance(type_, GraphQLList):
        return [sample(type_.of_type)]
    if isinstance(type_, GraphQLEnumType):
        return next(iter(type_.values))
    if isinstance(type_, GraphQLInputObjectType):
        return {
            name: sample(field.type)
            for name, field in type_.fields.items()
            if isinstance(field.type, GraphQLNonNull)
        }
    assert isinstance(type_, GraphQLScalarType)
    return SCALAR_SAMPLES[type_.name]


@functools.cache
def _graphql_schema() -> GraphQLSchema:
    """Built once: building the schema for each of some 150 operations was most of
    this module's time (a tenth of a second each, for each role)."""
    return build_schema()._schema


def operation_for(root: str, field_name: str) -> tuple[str, dict[str, Any]]:
    graphql_schema = _graphql_schema()
    root_type = {"Query": graphql_schema.query_type, "Mutation": graphql_schema.mutation_type}[root]
    assert root_type is not None
    field = root_type.fields[field_name]
    variables: dict[str, Any] = {}
    declarations: list[str] = []
    arguments: list[str] = []
    for arg_name, arg in field.args.items():
        if not isinstance(arg.type, GraphQLNonNull):
            continue
        variables[arg_name] = sample(arg.type)
        declarations.append(f"${arg_name}: {arg.type}")
        arguments.append(f"{arg_name}: ${arg_name}")
    result_type = get_named_type(field.type)
    selection = (
        "{ __typename }" if isinstance(result_type, GraphQLObjectType | GraphQLUnionType) else ""
    )
    header = f"({', '.join(declarations)})" if declarations else ""
    call = f"({', '.join(arguments)})" if arguments else ""
    keyword = "query" if root == "Query" else "mutation"
    return f"{keyword} Op{header} {{ {field_name}{call} {selection} }}", variables


@pytest.mark.parametrize("role", list(Role))
async def test_each_role_reaches_exactly_its_operations(
    app_client: GraphQLClient, role: Role
) -> None:
    # A volunteer's till is the one the samples name: another till's objects are
    # FORBIDDEN too, and this test is about roles.
    caller = app_client.as_role(
        role, till_id=SCALAR_SAMPLES["String"] if role is Role.VOLUNTEER else None
    )
    for name, allowed in EXPECTED.items():
        root, field_name = name.split(".")
        if root == "Subscription":
            continue  # covered over WebSocket in test_fuzz_and_live.py
        query, variables = operation_for(root, field_name)
        head = app_client.head()
        body = await caller.execute(query, variables)
        codes = {e.get("extensions", {}).get("code") for e in body.get("errors", [])}
        if role in allowed:
            assert "FORBIDDEN" not in codes, (name, body)
            assert "UNAUTHENTICATED" not in codes, (name, body)
        else:
            assert codes == {"FORBIDDEN"}, (name, role, body)
            assert app_client.head() == head, f"{name} stored something for {role}"
            # Nothing leaks: no data, or only the nulled forbidden field.
            assert not any((body.get("data") or {}).values()), (name, body)


async def test_anonymous_callers_reach_nothing(app_client: GraphQLClient) -> None:
    anonymous = app_client.anonymous()
    for name in EXPECTED:
        root, field_name = name.split(".")
        if root == "Subscription":
            continue
        query, variables = operation_for(root, field_name)
        body = await anonymous.execute(query, variables)
        assert {e["extensions"]["code"] for e in body["errors"]} == {"UNAUTHENTICATED"}, name
