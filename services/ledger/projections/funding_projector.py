"""Fills the funding read models from Grant, Donation, Contract and invoice events.

Volumes are small (a presence record a day per contract, a few grants a year), so
events are applied in order with plain statements; inserts of a page are batched.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.utils import get_topic
from sqlalchemy import Connection, Table, insert, select, update

from services.common.projections import DomainEvent, Projection
from services.ledger.domain.contracts import Contract, ContractInvoice, PresenceMonth
from services.ledger.domain.donations import Donation, NonCashContribution
from services.ledger.domain.grants import Grant
from services.ledger.projections.funding_tables import (
    FUNDING_TABLES,
    funding_contracts,
    funding_donations,
    funding_grants,
    funding_invoice_payments,
    funding_invoices,
    funding_non_cash,
    funding_presence,
    funding_tranche_receipts,
    funding_tranches,
)
from services.ledger.projections.projector import upsert


def _json_safe(value: Any) -> Any:
    """Event data as JSON: dates as ISO text, ids as strings."""
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


INVOICE_DOCUMENT_FIELDS = (
    "contract_id",
    "month",
    "number",
    "progressive",
    "issued_on",
    "presence_days",
    "days_with_presence",
    "daily_rate_cents",
    "net_cents",
    "vat_rate_bp",
    "vat_nature",
    "vat_cents",
    "split_payment",
    "pass_through",
    "pass_through_cents",
    "total_cents",
    "payable_cents",
    "issuer",
    "customer",
    "cig",
    "agreement_reference",
    "stamp_duty_cents",  # 0 for invoices issued before it was recorded
)


class FundingProjection(Projection):
    name: ClassVar[str] = "funding"
    tables: ClassVar[tuple[Table, ...]] = FUNDING_TABLES
    topics: ClassVar[frozenset[str]] = frozenset(
        get_topic(cls)
        for cls in (
            Grant.Awarded,
            Grant.TrancheReceived,
            Grant.TrancheReceiptReversed,
            Grant.ConditionMet,
            Grant.ReducedProRata,
            Grant.Closed,
            Donation.Recorded,
            Donation.Reversed,
            NonCashContribution.Recorded,
            NonCashContribution.Reversed,
            Contract.Registered,
            PresenceMonth.PresenceRecorded,
            ContractInvoice.Issued,
            ContractInvoice.PaymentRecorded,
            ContractInvoice.PaymentReversed,
        )
    )

    def apply(self, conn: Connection, events: Sequence[tuple[int, DomainEvent]]) -> None:
        inserts: dict[str, list[dict[str, Any]]] = {}

        def queue(table: Table, row: dict[str, Any]) -> None:
            inserts.setdefault(table.name, []).append(row)

        def flush() -> None:
            # Rows inserted earlier in the page must exist before updates touch them.
            for table in FUNDING_TABLES:
                rows = inserts.pop(table.name, None)
                if rows:
                    conn.execute(insert(table), rows)

        for position, event in events:
            if isinstance(event, Grant.Awarded):
                queue(
                    funding_grants,
                    {
                        "grant_id": event.originator_id,
                        "position": position,
                        "funder": event.funder,
                        "purpose": event.purpose,
                        "restricted": event.restricted,
                        "public_funder": event.public_funder,
                        "awarded_on": event.awarded_on,
                        "original_cents": event.amount_cents,
                        "reduced_on": None,
                        "closed_on": None,
                    },
                )
                for index, tranche in enumerate(event.tranches):
                    queue(
                        funding_tranches,
                        {
                            "grant_id": event.originator_id,
                            "number": index + 1,
                            "amount_cents": int(tranche["amount_cents"]),
                            "condition": tranche["condition"],
                            "expected_on": tranche["expected_on"],
                            "received_on": None,
                            "condition_met_on": None,
                            "cancelled_on": None,
                            "receipts": 0,
                        },
                    )
            elif isinstance(event, Grant.TrancheReceived):
                flush()
                t = funding_tranches.c
                amount_cents, receipts = conn.execute(
                    select(t.amount_cents, t.receipts)
                    .where(t.grant_id == event.originator_id)
                    .where(t.number == event.number)
                ).one()
                self._update_tranche(
                    conn,
                    event.originator_id,
                    event.number,
                    received_on=event.received_on,
                    receipts=receipts + 1,
                )
                queue(
                    funding_tranche_receipts,
                    {
                        "grant_id": event.originator_id,
                        "number": event.number,
                        "receipt": receipts + 1,
                        "received_on": event.received_on,
                        "amount_cents": amount_cents,
                        "reversed_on": None,
                        "reversal_entry_id": None,
                        "reversal_reason": None,
                    },
                )
            elif isinstance(event, Grant.TrancheReceiptReversed):
                flush()
                self._update_tranche(conn, event.originator_id, event.number, received_on=None)
                r = funding_tranche_receipts.c
                conn.execute(
                    update(funding_tranche_receipts)
                    .where(r.grant_id == event.originator_id)
                    .where(r.number == event.number)
                    .where(r.receipt == event.receipt)
                    .values(
                        reversed_on=event.reversed_on,
                        reversal_entry_id=event.reversal_entry_id,
                        reversal_reason=event.reason,
                    )
                )
            elif isinstance(event, Grant.ConditionMet):
                flush()
                self._update_tranche(
                    conn, event.originator_id, event.number, condition_met_on=event.met_on
                )
            elif isinstance(event, Grant.ReducedProRata):
                flush()
                for number, amount in enumerate(event.amounts_cents, start=1):
                    self._update_tranche(conn, event.originator_id, number, amount_cents=amount)
                conn.execute(
                    update(funding_grants)
                    .where(funding_grants.c.grant_id == event.originator_id)
                    .values(reduced_on=event.reduced_on)
                )
            elif isinstance(event, Grant.Closed):
                flush()
                t = funding_tranches.c
                conn.execute(
                    update(funding_tranches)
                    .where(t.grant_id == event.originator_id)
                    .where(t.received_on.is_(None))
                    .where(t.amount_cents > 0)
                    .values(cancelled_on=event.closed_on)
                )
                conn.execute(
                    update(funding_grants)
                    .where(funding_grants.c.grant_id == event.originator_id)
                    .values(closed_on=event.closed_on)
                )
            elif isinstance(event, Donation.Recorded):
                queue(
                    funding_donations,
                    {
                        "donation_id": event.originator_id,
                        "position": position,
                        "received_on": event.received_on,
                        "amount_cents": event.amount_cents,
                        "restricted": event.restricted,
                        "method": event.method,
                        "donor": event.donor,
                        "purpose": event.purpose,
                        "reversed_on": None,
                        "reversal_entry_id": None,
                        "reversal_reason": None,
                    },
                )
            elif isinstance(event, Donation.Reversed):
                flush()
                conn.execute(
                    update(funding_donations)
                    .where(funding_donations.c.donation_id == event.originator_id)
                    .values(
                        reversed_on=event.reversed_on,
                        reversal_entry_id=event.reversal_entry_id,
                        reversal_reason=event.reason,
                    )
                )
            elif isinstance(event, NonCashContribution.Recorded):
                queue(
                    funding_non_cash,
                    {
                        "contribution_id": event.originator_id,
                        "position": position,
                        "kind": event.kind,
                        "contributed_on": event.contributed_on,
                        "description": event.description,
                        "fair_value_cents": event.fair_value_cents,
                        "minutes": event.minutes,
                        "restricted": event.restricted,
                        "donor": event.donor,
                        "reversed_on": None,
                        "reversal_reason": None,
                    },
                )
            elif isinstance(event, NonCashContribution.Reversed):
                flush()
                conn.execute(
                    update(funding_non_cash)
                    .where(funding_non_cash.c.contribution_id == event.originator_id)
                    .values(reversed_on=event.reversed_on, reversal_reason=event.reason)
                )
            elif isinstance(event, Contract.Registered):
                queue(
                    funding_contracts,
                    {
                        "contract_id": event.originator_id,
                        "position": position,
                        "authority": event.authority,
                        "cig": event.cig,
                        "daily_rate_cents": event.daily_rate_cents,
                        "vat_rate_bp": event.vat_rate_bp,
                        "vat_nature": event.vat_nature,
                        "split_payment": event.split_payment,
                        "capacity": event.capacity,
                        "starts_on": event.starts_on,
                        "ends_on": event.ends_on,
                        "pass_through_items": _json_safe(event.pass_through_items),
                    },
                )
            elif isinstance(event, PresenceMonth.PresenceRecorded):
                flush()
                stmt = upsert(conn, funding_presence).values(
                    contract_id=event.contract_id,
                    day=event.day,
                    persons_present=event.persons_present,
                    revision=event.revision,
                )
                conn.execute(
                    stmt.on_conflict_do_update(
                        index_elements=[funding_presence.c.contract_id, funding_presence.c.day],
                        set_={
                            "persons_present": stmt.excluded.persons_present,
                            "revision": stmt.excluded.revision,
                        },
                    )
                )
            elif isinstance(event, ContractInvoice.Issued):
                document = {
                    name: _json_safe(getattr(event, name)) for name in INVOICE_DOCUMENT_FIELDS
                }
                # Only when kept: documents of invoices issued before stay as they were
                # (a rebuild gives the same rows as the projection that wrote them).
                for name in ("period_from", "period_to"):
                    if getattr(event, name) is not None:
                        document[name] = _json_safe(getattr(event, name))
                queue(
                    funding_invoices,
                    {
                        "invoice_id": event.originator_id,
                        "position": position,
                        "contract_id": event.contract_id,
                        "month": event.month,
                        "number": event.number,
                        "issued_on": event.issued_on,
                        "presence_days": event.presence_days,
                        "net_cents": event.net_cents,
                        "vat_cents": event.vat_cents,
                        "pass_through_cents": event.pass_through_cents,
                        "total_cents": event.total_cents,
                        "payable_cents": event.payable_cents,
                        "paid_cents": 0,
                        "document": document,
                    },
                )
            elif isinstance(event, ContractInvoice.PaymentRecorded):
                flush()
                i = funding_invoices.c
                conn.execute(
                    update(funding_invoices)
                    .where(i.invoice_id == event.originator_id)
                    .values(paid_cents=i.paid_cents + event.amount_cents)
                )
                queue(
                    funding_invoice_payments,
                    {
                        "invoice_id": event.originator_id,
                        "number": event.payment_number,
                        "paid_on": event.paid_on,
                        "amount_cents": event.amount_cents,
                        "reversed_on": None,
                        "reversal_entry_id": None,
                        "reversal_reason": None,
                    },
                )
            elif isinstance(event, ContractInvoice.PaymentReversed):
                flush()
                i = funding_invoices.c
                conn.execute(
                    update(funding_invoices)
                    .where(i.invoice_id == event.originator_id)
                    .values(paid_cents=i.paid_cents - event.amount_cents)
                )
                p = funding_invoice_payments.c
                conn.execute(
                    update(funding_invoice_payments)
                    .where(p.invoice_id == event.originator_id)
                    .where(p.number == event.payment_number)
                    .values(
                        reversed_on=event.reversed_on,
                        reversal_entry_id=event.reversal_entry_id,
                        reversal_reason=event.reason,
                    )
                )
        flush()

    @staticmethod
    def _update_tranche(conn: Connection, grant_id: UUID, number: int, **values: Any) -> None:
        t = funding_tranches.c
        conn.execute(
            update(funding_tranches)
            .where(t.grant_id == grant_id)
            .where(t.number == number)
            .values(**values)
        )
