"""Funding application service: grants, donations, reception contracts.

Load, call the aggregate, save: every business event is saved in the same save() as
the journal entries it causes (prepared by the ledger, one unique cause per fact)
and the idempotency claim, so a fact and its money commit together or not at all.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate

from services.common.errors import Conflict, NotFound, ValidationError
from services.common.eventstore import NOT_OURS, CoopApplication
from services.common.idempotency import (
    Decision,
    Outcome,
    execute_idempotent,
    ref_with_state,
    state_in_ref,
)
from services.common.months import parse_month
from services.common.settings import Settings
from services.ledger.application import LedgerApplication
from services.ledger.domain import ENTRY_DATE_FIELD, Cause, JournalEntry
from services.ledger.domain.contracts import (
    PROFILE_ID,
    Address,
    ContinuedNumbering,
    Contract,
    ContractInvoice,
    InvoiceSequence,
    InvoicingProfile,
    InvoicingProfileVersion,
    PassThroughItem,
    PresenceMonth,
    StampDutyRule,
    contract_id_for,
    month_of,
    payment_entry_id,
    presence_month_id,
    sequence_id_for,
)
from services.ledger.domain.donations import (
    Donation,
    DonationMethod,
    NonCashContribution,
    donation_id_for,
    non_cash_id_for,
)
from services.ledger.domain.errors import AccountClosed, UnknownAccount
from services.ledger.domain.facts import LedgerFact
from services.ledger.domain.funding_accounts import DEFAULT_FUNDING_ACCOUNTS, FundingAccounts
from services.ledger.domain.grants import Grant, TrancheTerms, grant_id_for

A = TypeVar("A", bound=Aggregate)
R = TypeVar("R")


# The ledger names the parts of a journal entry it checks: these two stand for inputs
# of the funding command that caused the entry (see InputFields).
_LEDGER_AMOUNT_FIELD = re.compile(r"^postings\[[0-9]+\]\.amount$")


@dataclass(frozen=True)
class InputFields:
    """Which input of a funding command the ledger's refusal of its entry is about: the
    entry's date (the books not open yet) and its amounts (over the ceiling). A
    client maps errors to the fields it sent, never to a journal posting's."""

    date: str
    amount: str
    amount_what: str | None = None  # what the amount is, when the field is not one

    def translate(self, error: ValidationError) -> ValidationError:
        if error.field == ENTRY_DATE_FIELD:
            return ValidationError(self.date, error.message)
        if _LEDGER_AMOUNT_FIELD.fullmatch(error.field):
            message = error.message
            if self.amount_what is not None:
                message = f"{self.amount_what}: {message}"
            return ValidationError(self.amount, message)
        return error


GRANT_RECEIPT_FIELDS = InputFields(date="date", amount="tranche")
GRANT_SETTLEMENT_FIELDS = InputFields(
    date="date", amount="grantId", amount_what="the grant's amount to post"
)

# The reported-only facts (goods in kind, volunteer time) have no amount the ledger
# checks: only their date can be refused by it.
NON_CASH_FIELDS = InputFields(date="date", amount="fairValue")
NON_CASH_REVERSAL_FIELDS = InputFields(date="effectiveDate", amount="donationId")


@dataclass(frozen=True)
class PresenceResult:
    contract_id: UUID
    day: date
    persons_present: int
    revision: int


class FundingApplication(CoopApplication):
    def __init__(
        self,
        settings: Settings,
        ledger: LedgerApplication,
        *,
        clock: Callable[[], datetime] | None = None,
        accounts: FundingAccounts = DEFAULT_FUNDING_ACCOUNTS,
        create_table: bool = True,
    ) -> None:
        self.ledger = ledger
        self.accounts = accounts
        # The stamp duty's two only while the duty is owed: a cooperative exempt from
        # it (COOP_STAMP_DUTY_CENTS 0) may close them (an invoice that then owes the
        # duty, the setting changed, says which accounts it needs).
        owed = settings.stamp_duty_cents > 0
        stamp_duty = set() if owed else {accounts.stamp_duty_expense, accounts.stamp_duty_payable}
        ledger.keep_open(
            accounts.codes() - stamp_duty,
            "grants, donations and contract invoices post to it on their own",
        )
        self._clock = clock
        super().__init__(settings, create_table=create_table, share_store_with=ledger)

    def today(self) -> date:
        """The cooperative's calendar day: what "future" means for dates users enter."""
        now = self._clock() if self._clock is not None else datetime.now(self.settings.zone)
        return now.astimezone(self.settings.zone).date()

    @property
    def ceiling_cents(self) -> int:
        return self.settings.amount_ceiling_cents

    @property
    def stamp_duty(self) -> StampDutyRule:
        """The stamp duty rule in force now (settings): each invoice records its duty."""
        return StampDutyRule(
            threshold_cents=self.settings.stamp_duty_threshold_cents,
            duty_cents=self.settings.stamp_duty_cents,
        )

    # -- plumbing ----------------------------------------------------------------

    def _get(self, cls: type[A], aggregate_id: UUID, what: str) -> A:
        return self.get_as(cls, aggregate_id, NotFound(f"{what} {aggregate_id} does not exist"))

    def _entries(
        self, facts: Sequence[LedgerFact | None], actor: str, fields: InputFields
    ) -> tuple[JournalEntry, ...]:
        """The journal entries of `facts`; the ledger's refusal of one names the
        command's input field (`fields`) it comes from: the one mapping of ledger
        fields for every funding command that posts."""
        return self._guarded(
            lambda: tuple(
                self.ledger.prepare_entry(
                    effective_date=fact.effective_date,
                    description=fact.description,
                    postings=fact.postings,
                    cause=Cause(fact.cause_id, actor),
                )
                for fact in facts
                if fact is not None
            ),
            fields,
        )

    @staticmethod
    def _guarded(ledger_step: Callable[[], R], fields: InputFields) -> R:
        """`ledger_step`, its refusal naming the command's input field it comes from."""
        try:
            return ledger_step()
        except ValidationError as error:
            translated = fields.translate(error)
            if translated is error:
                raise
            raise translated from error

    def _run(
        self,
        *,
        key: str,
        operation: str,
        request: Mapping[str, Any],
        decide: Callable[[], Decision[R]],
        load_result: Callable[[Mapping[str, str]], R],
    ) -> Outcome[R]:
        return execute_idempotent(
            self,
            key=key,
            operation=operation,
            request=request,
            decide=decide,
            load_result=load_result,
        )

    # -- grants ------------------------------------------------------------------

    def grant(self, grant_id: UUID) -> Grant:
        return self._get(Grant, grant_id, "grant")

    def _load_grant(self, ref: Mapping[str, str]) -> Grant:
        return self.grant(UUID(ref["grant_id"]))

    def award_grant(
        self,
        *,
        key: str,
        actor: str,
        funder: str,
        purpose: str,
        amount_cents: int,
        restricted: bool,
        public_funder: bool,
        tranches: Sequence[TrancheTerms],
        awarded_on: date | None = None,
    ) -> Outcome[Grant]:
        def decide() -> Decision[Grant]:
            grant = Grant.award(
                grant_id=grant_id_for(key),
                funder=funder,
                purpose=purpose,
                amount_cents=amount_cents,
                restricted=restricted,
                public_funder=public_funder,
                awarded_on=awarded_on or self.today(),
                tranches=list(tranches),
                today=self.today(),
                ceiling_cents=self.ceiling_cents,
            )
            return Decision((grant,), grant, {"grant_id": str(grant.id)})

        return self._run(
            key=key,
            operation="awardGrant",
            request={
                "funder": funder,
                "purpose": purpose,
                "amount_cents": amount_cents,
                "restricted": restricted,
                "public_funder": public_funder,
                "awarded_on": awarded_on,
                "tranches": [[t.amount_cents, t.condition, t.expected_on] for t in tranches],
                "actor": actor,
            },
            decide=decide,
            load_result=self._load_grant,
        )

    def _grant_command(
        self,
        *,
        key: str,
        actor: str,
        operation: str,
        grant_id: UUID,
        request: Mapping[str, Any],
        on: date | None,
        act: Callable[[Grant, date], LedgerFact | None],
        fields: InputFields,
    ) -> Outcome[Grant]:
        """A dated step of a grant (`on`, today when left out). Whether it posts depends
        on the grant's state (a cut before any condition was met recognises nothing),
        so that it is dated in a closed period is refused either way: the close fixes
        the grant's figures of the period with its books."""

        def decide() -> Decision[Grant]:
            grant = self.grant(grant_id)
            day = on or self.today()
            fact = act(grant, day)
            entries = self._entries([fact], actor, fields)
            if fact is None:
                self._guarded(lambda: self.ledger.guard_period_open(grant, day), fields)
            return Decision((grant, *entries), grant, {"grant_id": str(grant.id)})

        return self._run(
            key=key,
            operation=operation,
            request={**request, "date": on, "grant_id": str(grant_id), "actor": actor},
            decide=decide,
            load_result=self._load_grant,
        )

    def receive_grant_tranche(
        self, *, key: str, actor: str, grant_id: UUID, tranche: int, received_on: date | None
    ) -> Outcome[Grant]:
        return self._grant_command(
            key=key,
            actor=actor,
            operation="receiveGrantTranche",
            grant_id=grant_id,
            request={"tranche": tranche},
            on=received_on,
            act=lambda grant, day: grant.receive_tranche(
                tranche, day, today=self.today(), accounts=self.accounts
            ),
            fields=GRANT_RECEIPT_FIELDS,
        )

    def reverse_grant_tranche_receipt(
        self,
        *,
        key: str,
        actor: str,
        grant_id: UUID,
        tranche: int,
        reversed_on: date,
        reason: str,
    ) -> Outcome[Grant]:
        """Correct a tranche received wrong (on the wrong tranche, or before the money
        came): the grant records that the receipt is reversed (once; refused if a later
        step was decided on it) and the receipt's journal entry is reversed by the
        ledger's own `JournalEntry.reverse`, all in one save with the idempotency claim.
        The tranche can then be received again."""

        def decide() -> Decision[Grant]:
            grant = self.grant(grant_id)
            # The grant first: it refuses a second reversal and checks the input.
            entry_id, description = grant.reverse_receipt(
                tranche, reversed_on=reversed_on, reason=reason, today=self.today()
            )
            original, reversal = self.ledger.prepare_reversal(
                entry_id,
                effective_date=reversed_on,
                description=description,
                actor=actor,
            )
            return Decision((grant, original, reversal), grant, {"grant_id": str(grant.id)})

        return self._run(
            key=key,
            operation="reverseGrantTrancheReceipt",
            # The request hash covers the reason, but only the hash is stored.
            request={
                "grant_id": str(grant_id),
                "tranche": tranche,
                "effective_date": reversed_on,
                "reason": reason,
                "actor": actor,
            },
            decide=decide,
            load_result=self._load_grant,
        )

    def meet_grant_condition(
        self, *, key: str, actor: str, grant_id: UUID, tranche: int, met_on: date | None
    ) -> Outcome[Grant]:
        return self._grant_command(
            key=key,
            actor=actor,
            operation="meetGrantCondition",
            grant_id=grant_id,
            request={"tranche": tranche},
            on=met_on,
            act=lambda grant, day: grant.meet_condition(
                tranche, day, today=self.today(), accounts=self.accounts
            ),
            fields=GRANT_RECEIPT_FIELDS,
        )

    def reduce_grant(
        self,
        *,
        key: str,
        actor: str,
        grant_id: UUID,
        budget_cents: int,
        reported_cents: int,
        reduced_on: date | None,
    ) -> Outcome[Grant]:
        return self._grant_command(
            key=key,
            actor=actor,
            operation="reduceGrant",
            grant_id=grant_id,
            request={"budget": budget_cents, "reported": reported_cents},
            on=reduced_on,
            act=lambda grant, day: grant.reduce_pro_rata(
                budget_cents=budget_cents,
                reported_cents=reported_cents,
                reduced_on=day,
                today=self.today(),
                ceiling_cents=self.ceiling_cents,
                accounts=self.accounts,
            ),
            fields=GRANT_SETTLEMENT_FIELDS,
        )

    def close_grant(
        self, *, key: str, actor: str, grant_id: UUID, closed_on: date | None
    ) -> Outcome[Grant]:
        return self._grant_command(
            key=key,
            actor=actor,
            operation="closeGrant",
            grant_id=grant_id,
            request={},
            on=closed_on,
            act=lambda grant, day: grant.close(day, today=self.today(), accounts=self.accounts),
            fields=GRANT_SETTLEMENT_FIELDS,
        )

    # -- donations ---------------------------------------------------------------

    def record_donation(
        self,
        *,
        key: str,
        actor: str,
        amount_cents: int,
        restricted: bool,
        method: DonationMethod,
        donor: str | None,
        purpose: str | None,
        received_on: date | None,
    ) -> Outcome[Donation]:
        def decide() -> Decision[Donation]:
            donation = Donation.record(
                donation_id=donation_id_for(key),
                received_on=received_on or self.today(),
                amount_cents=amount_cents,
                restricted=restricted,
                method=method,
                donor=donor,
                purpose=purpose,
                today=self.today(),
                ceiling_cents=self.ceiling_cents,
            )
            entries = self._entries(
                [donation.ledger_fact(self.accounts)],
                actor,
                InputFields(date="date", amount="amount"),
            )
            return Decision((donation, *entries), donation, {"donation_id": str(donation.id)})

        return self._run(
            key=key,
            operation="recordDonation",
            # The request hash covers the donor, but only the hash is stored.
            request={
                "amount_cents": amount_cents,
                "restricted": restricted,
                "method": method.value,
                "donor": donor,
                "purpose": purpose,
                "date": received_on,
                "actor": actor,
            },
            decide=decide,
            load_result=lambda ref: self._get(Donation, UUID(ref["donation_id"]), "donation"),
        )

    def record_in_kind_donation(
        self,
        *,
        key: str,
        actor: str,
        description: str,
        fair_value_cents: int,
        restricted: bool,
        donor: str | None,
        received_on: date | None,
    ) -> Outcome[NonCashContribution]:
        def decide() -> Decision[NonCashContribution]:
            contribution = NonCashContribution.in_kind(
                contribution_id=non_cash_id_for(key),
                contributed_on=received_on or self.today(),
                description=description,
                fair_value_cents=fair_value_cents,
                restricted=restricted,
                donor=donor,
                today=self.today(),
                ceiling_cents=self.ceiling_cents,
            )
            self._guard_non_cash(contribution, contribution.contributed_on, NON_CASH_FIELDS)
            return Decision((contribution,), contribution, {"id": str(contribution.id)})

        return self._run(
            key=key,
            operation="recordInKindDonation",
            request={
                "description": description,
                "fair_value_cents": fair_value_cents,
                "restricted": restricted,
                "donor": donor,
                "date": received_on,
                "actor": actor,
            },
            decide=decide,
            load_result=self._load_non_cash,
        )

    def record_volunteer_time(
        self,
        *,
        key: str,
        actor: str,
        activity: str,
        minutes: int,
        hourly_fair_value_cents: int,
        worked_on: date | None,
    ) -> Outcome[NonCashContribution]:
        def decide() -> Decision[NonCashContribution]:
            contribution = NonCashContribution.volunteer_time(
                contribution_id=non_cash_id_for(key),
                contributed_on=worked_on or self.today(),
                activity=activity,
                minutes=minutes,
                hourly_fair_value_cents=hourly_fair_value_cents,
                today=self.today(),
                ceiling_cents=self.ceiling_cents,
            )
            self._guard_non_cash(contribution, contribution.contributed_on, NON_CASH_FIELDS)
            return Decision((contribution,), contribution, {"id": str(contribution.id)})

        return self._run(
            key=key,
            operation="recordVolunteerHours",
            request={
                "activity": activity,
                "minutes": minutes,
                "hourly_fair_value_cents": hourly_fair_value_cents,
                "date": worked_on,
                "actor": actor,
            },
            decide=decide,
            load_result=self._load_non_cash,
        )

    def _guard_non_cash(
        self, contribution: NonCashContribution, day: date, fields: InputFields
    ) -> None:
        """Goods in kind and volunteer time post nothing, but they are figures of their
        period's report (the proventi figurativi of the annual accounts and the social
        report): dated in a closed period, they are refused as a posting would be."""
        self._guarded(lambda: self.ledger.guard_period_open(contribution, day), fields)

    def _load_non_cash(self, ref: Mapping[str, str]) -> NonCashContribution:
        return self._get(NonCashContribution, UUID(ref["id"]), "contribution")

    def donation_record(self, donation_id: UUID) -> Donation | NonCashContribution:
        """A money donation, or goods in kind or volunteer time; else NotFound."""
        try:
            record: Aggregate = self.repository.get(donation_id)
        except NOT_OURS:
            raise NotFound(f"donation {donation_id} does not exist") from None
        if not isinstance(record, Donation | NonCashContribution):
            raise NotFound(f"donation {donation_id} does not exist")
        return record

    def reverse_donation(
        self,
        *,
        key: str,
        actor: str,
        donation_id: UUID,
        reversed_on: date,
        reason: str,
    ) -> Outcome[Donation | NonCashContribution]:
        """Correct a donation recorded wrong: the record says it is reversed (at most
        once) and, for money, its journal entry is reversed by the ledger's own
        `JournalEntry.reverse`, all in one save (with the idempotency claim). The
        reversal links to the original (`reverses_entry_id`), so the welfare fund takes
        back exactly what the donation accrued. Goods in kind and volunteer time were
        never posted: only their record is reversed."""

        def decide() -> Decision[Donation | NonCashContribution]:
            record = self.donation_record(donation_id)
            ref = {"donation_id": str(record.id)}
            if isinstance(record, NonCashContribution):
                record.reverse(reversed_on=reversed_on, reason=reason, today=self.today())
                self._guard_non_cash(record, reversed_on, NON_CASH_REVERSAL_FIELDS)
                return Decision((record,), record, ref)
            # The donation first: it refuses a second reversal and checks the input.
            description = record.reverse(reversed_on=reversed_on, reason=reason, today=self.today())
            original, reversal = self.ledger.prepare_reversal(
                record.entry_id,
                effective_date=reversed_on,
                description=description,
                actor=actor,
            )
            assert reversal.id == record.reversal_entry_id
            return Decision((record, original, reversal), record, ref)

        return self._run(
            key=key,
            operation="reverseDonation",
            # The request hash covers the reason, but only the hash is stored.
            request={
                "donation_id": str(donation_id),
                "effective_date": reversed_on,
                "reason": reason,
                "actor": actor,
            },
            decide=decide,
            load_result=lambda ref: self.donation_record(UUID(ref["donation_id"])),
        )

    # -- contracts ---------------------------------------------------------------

    def profile(self) -> InvoicingProfile:
        try:
            profile: InvoicingProfile = self.repository.get(PROFILE_ID)
        except AggregateNotFoundError:
            return InvoicingProfile.start()
        return profile

    def set_invoicing_profile(
        self,
        *,
        key: str,
        actor: str,
        name: str,
        vat_number: str,
        tax_code: str | None,
        tax_regime: str,
        address: Address,
        iban: str | None,
    ) -> Outcome[InvoicingProfileVersion]:
        """Set the issuer's details for invoices issued from now on. The answer, and a
        retry's, is the details this request set, whoever set the profile again since."""

        def decide() -> Decision[InvoicingProfileVersion]:
            profile = self.profile()
            version = profile.set(
                name=name,
                vat_number=vat_number,
                tax_code=tax_code,
                tax_regime=tax_regime,
                address=address,
                iban=iban,
            )
            # The profile is one aggregate that every set replaces: the claim keeps what
            # this request set, for a retry to answer with.
            return Decision((profile,), version, ref_with_state({}, version.as_state()))

        return self._run(
            key=key,
            operation="setInvoicingProfile",
            request={
                "name": name,
                "vat_number": vat_number,
                "tax_code": tax_code,
                "tax_regime": tax_regime,
                "address": address.as_state(),
                "iban": iban,
                "actor": actor,
            },
            decide=decide,
            load_result=self._load_profile_version,
        )

    def _load_profile_version(self, ref: Mapping[str, str]) -> InvoicingProfileVersion:
        state = state_in_ref(ref)
        if state is not None:
            return InvoicingProfileVersion.from_state(state)
        # A claim stored before claims kept the details: the profile as it is now.
        details = self.profile().details
        assert details is not None  # the claim was saved with the profile it set
        return InvoicingProfileVersion(dict(details))

    def contract(self, contract_id: UUID) -> Contract:
        return self._get(Contract, contract_id, "contract")

    def register_contract(
        self,
        *,
        key: str,
        actor: str,
        authority: str,
        authority_tax_code: str,
        authority_office_code: str,
        authority_address: Address,
        cig: str,
        agreement_reference: str | None,
        daily_rate_cents: int,
        vat_rate_bp: int,
        vat_nature: str | None,
        split_payment: bool,
        capacity: int,
        starts_on: date,
        ends_on: date | None,
        pass_through_items: Sequence[PassThroughItem],
    ) -> Outcome[Contract]:
        def decide() -> Decision[Contract]:
            contract = Contract.register(
                authority=authority,
                authority_tax_code=authority_tax_code,
                authority_office_code=authority_office_code,
                authority_address=authority_address,
                cig=cig,
                agreement_reference=agreement_reference,
                daily_rate_cents=daily_rate_cents,
                vat_rate_bp=vat_rate_bp,
                vat_nature=vat_nature,
                split_payment=split_payment,
                capacity=capacity,
                starts_on=starts_on,
                ends_on=ends_on,
                pass_through_items=list(pass_through_items),
                ceiling_cents=self.ceiling_cents,
                accounts=self.accounts,
            )
            try:
                self.repository.get(contract.id)
            except AggregateNotFoundError:
                pass
            else:
                raise Conflict(f"a contract with CIG {contract.cig} is already registered")
            return Decision((contract,), contract, {"contract_id": str(contract.id)})

        return self._run(
            key=key,
            operation="registerContract",
            request={
                "authority": authority,
                "authority_tax_code": authority_tax_code,
                "authority_office_code": authority_office_code,
                "authority_address": authority_address.as_state(),
                "cig": cig,
                "agreement_reference": agreement_reference,
                "daily_rate_cents": daily_rate_cents,
                "vat_rate_bp": vat_rate_bp,
                "vat_nature": vat_nature,
                "split_payment": split_payment,
                "capacity": capacity,
                "starts_on": starts_on,
                "ends_on": ends_on,
                "pass_through_items": [p.as_state() for p in pass_through_items],
                "actor": actor,
            },
            decide=decide,
            load_result=lambda ref: self.contract(UUID(ref["contract_id"])),
        )

    def presence_month(self, contract_id: UUID, month: str) -> PresenceMonth | None:
        try:
            register: PresenceMonth = self.repository.get(presence_month_id(contract_id, month))
        except AggregateNotFoundError:
            return None
        return register

    def record_presence(
        self, *, key: str, actor: str, contract_id: UUID, day: date, persons_present: int
    ) -> Outcome[PresenceResult]:
        def decide() -> Decision[PresenceResult]:
            contract = self.contract(contract_id)
            month = month_of(day)
            register = self.presence_month(contract_id, month) or PresenceMonth.open(
                contract_id, month
            )
            record = register.record(
                contract=contract, day=day, persons_present=persons_present, today=self.today()
            )
            result = PresenceResult(contract_id, day, record.persons_present, record.revision)
            return Decision((register,), result, {"revision": str(record.revision)})

        def load(ref: Mapping[str, str]) -> PresenceResult:
            return PresenceResult(contract_id, day, persons_present, int(ref["revision"]))

        return self._run(
            key=key,
            operation="recordPresence",
            request={
                "contract_id": str(contract_id),
                "date": day,
                "persons_present": persons_present,
                "actor": actor,
            },
            decide=decide,
            load_result=load,
        )

    def invoice(self, invoice_id: UUID) -> ContractInvoice:
        return self._get(ContractInvoice, invoice_id, "invoice")

    def _load_invoice(self, ref: Mapping[str, str]) -> ContractInvoice:
        return self.invoice(UUID(ref["invoice_id"]))

    def invoice_contract(
        self, *, key: str, actor: str, contract_id: UUID, month: str, issued_on: date | None
    ) -> Outcome[ContractInvoice]:
        def decide() -> Decision[ContractInvoice]:
            parse_month(month)
            contract = self.contract(contract_id)
            register = self.presence_month(contract_id, month) or PresenceMonth.open(
                contract_id, month
            )
            issue_date = issued_on or self.today()
            sequence = self._sequence(issue_date.year)
            invoice = ContractInvoice.issue(
                contract=contract,
                register=register,
                sequence=sequence,
                profile=self.profile(),
                issued_on=issue_date,
                today=self.today(),
                stamp_duty=self.stamp_duty,
            )
            # The month's presence, at the contract's terms, makes the amounts.
            try:
                entries = self._entries(
                    invoice.ledger_facts(self.accounts),
                    actor,
                    InputFields(
                        date="issueDate", amount="month", amount_what="the month's invoice"
                    ),
                )
            except (UnknownAccount, AccountClosed) as error:
                if error.code not in self._stamp_duty_accounts:
                    raise
                raise self._stamp_duty_accounts_missing(error) from error
            return Decision(
                (register, sequence, invoice, *entries),
                invoice,
                {"invoice_id": str(invoice.id)},
            )

        return self._run(
            key=key,
            operation="invoiceContract",
            request={
                "contract_id": str(contract_id),
                "month": month,
                "issue_date": issued_on,
                "actor": actor,
            },
            decide=decide,
            load_result=self._load_invoice,
        )

    @property
    def _stamp_duty_accounts(self) -> tuple[str, str]:
        return (self.accounts.stamp_duty_expense, self.accounts.stamp_duty_payable)

    def _stamp_duty_accounts_missing(self, error: UnknownAccount | AccountClosed) -> Conflict:
        """A chart created before stamp duty was built lacks its two accounts (the
        default chart is only made on an empty store): say which to open, instead of
        naming a journal posting the client never sent."""
        codes = self._stamp_duty_accounts
        owed = (
            f"this invoice owes stamp duty, posted to accounts {codes[0]} (expense) and "
            f"{codes[1]} (payable to the State)"
        )
        if isinstance(error, AccountClosed):
            return Conflict(f"{owed}, and account {error.code} is closed: nothing was invoiced")
        return Conflict(
            f"{owed}, and the chart has no account {error.code} (it predates them): "
            "open it (openAccount), then invoice again"
        )

    def continue_invoice_numbering(
        self, *, key: str, actor: str, year: int, last_number: int, last_issued_on: date
    ) -> Outcome[ContinuedNumbering]:
        """Go on from the last contract invoice number another system issued this year.
        The answer, and a retry's, is the numbering as this request left it, not as the
        invoices numbered here since moved it on."""

        def decide() -> Decision[ContinuedNumbering]:
            sequence = self._sequence(year)
            continued = sequence.continue_from(last_number, last_issued_on, today=self.today())
            ref = ref_with_state({"year": str(year)}, continued.as_state())
            return Decision((sequence,), continued, ref)

        return self._run(
            key=key,
            operation="continueInvoiceNumbering",
            request={
                "year": year,
                "last_number": last_number,
                "last_issued_on": last_issued_on.isoformat(),
                "actor": actor,
            },
            decide=decide,
            load_result=self._load_continued_numbering,
        )

    def _load_continued_numbering(self, ref: Mapping[str, str]) -> ContinuedNumbering:
        state = state_in_ref(ref)
        if state is not None:
            return ContinuedNumbering.from_state(state)
        # A claim stored before claims kept the numbering: the sequence as it is now.
        return self._sequence(int(ref["year"])).numbering()

    def _sequence(self, year: int) -> InvoiceSequence:
        try:
            sequence: InvoiceSequence = self.repository.get(sequence_id_for(year))
        except AggregateNotFoundError:
            return InvoiceSequence.start(year)
        return sequence

    def record_contract_payment(
        self,
        *,
        key: str,
        actor: str,
        invoice_id: UUID,
        amount_cents: int,
        paid_on: date | None,
    ) -> Outcome[ContractInvoice]:
        def decide() -> Decision[ContractInvoice]:
            invoice = self.invoice(invoice_id)
            fact = invoice.record_payment(
                paid_on=paid_on or self.today(),
                amount_cents=amount_cents,
                today=self.today(),
                ceiling_cents=self.ceiling_cents,
                accounts=self.accounts,
            )
            entries = self._entries([fact], actor, InputFields(date="date", amount="amount"))
            return Decision((invoice, *entries), invoice, {"invoice_id": str(invoice.id)})

        return self._run(
            key=key,
            operation="recordContractPayment",
            request={
                "invoice_id": str(invoice_id),
                "amount_cents": amount_cents,
                "date": paid_on,
                "actor": actor,
            },
            decide=decide,
            load_result=self._load_invoice,
        )

    def reverse_contract_payment(
        self,
        *,
        key: str,
        actor: str,
        invoice_id: UUID,
        payment_number: int,
        reversed_on: date,
        reason: str,
    ) -> Outcome[ContractInvoice]:
        """Correct a payment recorded wrong: the invoice records that the payment is
        reversed (at most once; the amount is outstanding again) and the payment's
        journal entry is reversed by the ledger's own `JournalEntry.reverse`, all in one
        save with the idempotency claim. The right payment is then recorded anew."""

        def decide() -> Decision[ContractInvoice]:
            invoice = self.invoice(invoice_id)
            # The invoice first: it refuses a second reversal and checks the input.
            description = invoice.reverse_payment(
                payment_number, reversed_on=reversed_on, reason=reason, today=self.today()
            )
            original, reversal = self.ledger.prepare_reversal(
                payment_entry_id(invoice.id, payment_number),
                effective_date=reversed_on,
                description=description,
                actor=actor,
            )
            return Decision((invoice, original, reversal), invoice, {"invoice_id": str(invoice.id)})

        return self._run(
            key=key,
            operation="reverseContractPayment",
            # The request hash covers the reason, but only the hash is stored.
            request={
                "invoice_id": str(invoice_id),
                "payment_number": payment_number,
                "effective_date": reversed_on,
                "reason": reason,
                "actor": actor,
            },
            decide=decide,
            load_result=self._load_invoice,
        )


__all__ = ["FundingApplication", "PresenceResult", "contract_id_for"]
