"""Welfare fund queries: balances and statements (aggregates), provenance, and the
fund officer's beneficiary data."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Annotated
from uuid import UUID

import strawberry
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.context import Info
from gateway.permissions import allow
from services.common.auth import Role
from services.common.cursors import position_cursor
from services.common.errors import ValidationError
from services.common.graphql import PageInfo, as_of_date, check_page_size
from services.common.sealing import unseal
from services.welfare_fund.domain import DisbursementStatus
from services.welfare_fund.graphql.types import (
    Attendance,
    Beneficiary,
    BeneficiaryConnection,
    Disbursement,
    DisbursementConnection,
    FundBalance,
    FundStatement,
    Provenance,
    ProvenanceSource,
    RedistributionPolicy,
    StipendRuleSet,
)
from services.welfare_fund.keystore import read_keys
from services.welfare_fund.projections import queries

AGGREGATE_READERS = (Role.FUND_OFFICER, Role.ADMIN, Role.AUDITOR)
FIFO_RULE = (
    "FIFO by date: the program's live commitments, by commitment date then recording, "
    "consume the program's positive accrual shares by their income's date then ledger order"
)


def parse_id(value: str, field: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        raise ValidationError(field, "not an id returned by this API") from None


async def fund_settled(info: Info) -> None:
    """Wait (bounded) until every ledger entry recorded before this query is accrued
    and the accrual entries are in the read models: the fund is never silently behind
    the ledger (after the bounded wait, PROJECTION_LAG says so instead)."""
    await info.context.runtime.fund_settled()


async def load_beneficiary(info: Info, beneficiary_id: UUID) -> Beneficiary:
    async with info.context.runtime.read_engine.connect() as conn:
        row = await queries.beneficiary(conn, beneficiary_id)
        return (await beneficiary_nodes(conn, [row]))[0]


async def beneficiary_nodes(
    conn: AsyncConnection, rows: Sequence[queries.BeneficiaryRow]
) -> list[Beneficiary]:
    """The beneficiaries as a fund officer reads them, case notes unsealed (the keys of
    all of them in one read)."""
    keys = await read_keys(conn, [row.beneficiary_id for row in rows if row.case_note_sealed])
    nodes = []
    for row in rows:
        key = keys.get(row.beneficiary_id)
        note = None
        if key is not None and row.case_note_sealed is not None and not row.forgotten:
            note = unseal(key, row.beneficiary_id, row.case_note_sealed)
        nodes.append(
            Beneficiary(
                beneficiary_ref=str(row.beneficiary_id),
                program=row.program,  # type: ignore[arg-type]
                enrolled_on=row.enrolled_on,
                forgotten=row.forgotten,
                case_note=note,
                attendance=[Attendance.from_row(a) for a in row.attendance],
            )
        )
    return nodes


@strawberry.type
class WelfareFundQuery:
    @strawberry.field(
        permission_classes=allow(*AGGREGATE_READERS),
        description="What the fund has accrued, committed, disbursed and available, as of "
        "an instant (default: now): totals, by program and by stream.",
    )
    async def fund_balance(self, info: Info, as_of: datetime | None = None) -> FundBalance:
        day = as_of_date(as_of, info.context.runtime.settings.zone)
        runtime = info.context.runtime
        programs = runtime.welfare.programs.programs
        # The balance and whether it is settled, in one statement; read again only
        # after waiting, when it was not.
        view, positions = await queries.fund_balance(
            runtime.lone_reads, day, programs, runtime.settlement()
        )
        if not runtime.is_settled(positions):
            await runtime.fund_settled(positions)
            view, _ = await queries.fund_balance(runtime.lone_reads, day, programs)
        return FundBalance.from_view(view)

    @strawberry.field(
        permission_classes=allow(*AGGREGATE_READERS),
        description="Opening and closing balances and the movements of a period.",
    )
    async def fund_statement(
        self, info: Info, from_: Annotated[date, strawberry.argument(name="from")], to: date
    ) -> FundStatement:
        if to < from_:
            raise ValidationError("to", "must not be before from")
        if from_ == date.min:
            raise ValidationError("from", "must be after 0001-01-01")
        await fund_settled(info)
        runtime = info.context.runtime
        programs = runtime.welfare.programs.programs
        opening, _ = await queries.fund_balance(
            runtime.lone_reads, from_ - timedelta(days=1), programs
        )
        closing, _ = await queries.fund_balance(runtime.lone_reads, to, programs)
        return FundStatement.from_views(from_, to, opening, closing)

    @strawberry.field(
        permission_classes=allow(*AGGREGATE_READERS),
        description="The income postings whose accruals fund a disbursement (FIFO).",
    )
    async def provenance(
        self,
        info: Info,
        disbursement_id: strawberry.ID,
        first: int = 500,
        after: str | None = None,
    ) -> Provenance:
        disbursement_uuid = parse_id(disbursement_id, "disbursementId")
        check_page_size(first, info.context.runtime.settings.max_page_size)
        await fund_settled(info)
        async with info.context.runtime.read_engine.connect() as conn:
            page = await queries.provenance(conn, disbursement_uuid, first=first, after=after)
        from services.common.graphql import money

        return Provenance(
            disbursement_id=strawberry.ID(str(page.disbursement.disbursement_id)),
            program=page.disbursement.program,  # type: ignore[arg-type]
            amount=money(page.traced_cents),
            rule=FIFO_RULE,
            sources=[ProvenanceSource.from_row(s) for s in page.sources],
            page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor),
        )

    @strawberry.field(
        permission_classes=allow(*AGGREGATE_READERS),
        description="Every version of the redistribution policy, oldest first; a "
        "withdrawn version stays listed (withdrawn, withdrawnOn), before any version set "
        "for its day after it.",
    )
    async def redistribution_policies(self, info: Info) -> list[RedistributionPolicy]:
        async with info.context.runtime.read_engine.connect() as conn:
            rows = await queries.policies(conn)
        return [RedistributionPolicy.from_version(r.version, r.withdrawn_on) for r in rows]

    @strawberry.field(
        permission_classes=allow(*AGGREGATE_READERS),
        description="Every version of the internship stipend rules, oldest first, the "
        "fund's starting version included; a withdrawn version stays listed (withdrawn, "
        "withdrawnOn), before any version set for its day after it. A month's attendance "
        "is paid by the version in force on its first day.",
    )
    async def stipend_rules(self, info: Info) -> list[StipendRuleSet]:
        runtime = info.context.runtime
        # From the fund's book itself, as the ledger's booksClosing reads the chart: a
        # handful of versions, which no read model holds.
        listing = await runtime.run_sync(runtime.welfare.stipend_rules_listing)
        return [StipendRuleSet.from_rules(rules, withdrawn_on) for rules, withdrawn_on in listing]

    @strawberry.field(
        permission_classes=allow(*AGGREGATE_READERS),
        description="Disbursements in commitment order (beneficiary refs: fund officers).",
    )
    async def disbursements(
        self,
        info: Info,
        status: DisbursementStatus | None = None,
        first: int = 50,
        after: str | None = None,
    ) -> DisbursementConnection:
        check_page_size(first, info.context.runtime.settings.max_page_size)
        async with info.context.runtime.read_engine.connect() as conn:
            rows, has_next = await queries.disbursements_page(
                conn, status=status.value if status else None, first=first, after=after
            )
        return DisbursementConnection(
            nodes=[Disbursement.from_row(r) for r in rows],
            page_info=PageInfo(
                has_next_page=has_next,
                end_cursor=position_cursor("disbursements", rows[-1].position) if rows else None,
            ),
        )

    @strawberry.field(permission_classes=allow(*AGGREGATE_READERS))
    async def disbursement(self, info: Info, id: strawberry.ID) -> Disbursement:
        async with info.context.runtime.read_engine.connect() as conn:
            row = await queries.disbursement(conn, parse_id(id, "id"))
        return Disbursement.from_row(row)

    @strawberry.field(
        permission_classes=allow(Role.FUND_OFFICER),
        description="A beneficiary by pseudonymous reference (fund officers only).",
    )
    async def beneficiary(self, info: Info, beneficiary_ref: str) -> Beneficiary:
        return await load_beneficiary(info, parse_id(beneficiary_ref, "beneficiaryRef"))

    @strawberry.field(
        permission_classes=allow(Role.FUND_OFFICER),
        description="Beneficiaries in enrolment order (fund officers only).",
    )
    async def beneficiaries(
        self, info: Info, first: int = 50, after: str | None = None
    ) -> BeneficiaryConnection:
        check_page_size(first, info.context.runtime.settings.max_page_size)
        async with info.context.runtime.read_engine.connect() as conn:
            rows, has_next, last = await queries.beneficiaries_page(conn, first=first, after=after)
            nodes = await beneficiary_nodes(conn, rows)
        cursor = position_cursor("beneficiaries", last) if last is not None else None
        return BeneficiaryConnection(
            nodes=nodes, page_info=PageInfo(has_next_page=has_next, end_cursor=cursor)
        )
