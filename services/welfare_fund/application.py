"""Welfare fund application service: load, call the aggregates, save. Plus the accrual
step that follows the ledger (see process.py for how it is driven)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import date
from typing import Any, ClassVar, TypeVar
from uuid import UUID, uuid4

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from services.common.errors import (
    Conflict,
    IdempotencyKeyReused,
    LostRace,
    NotFound,
    ValidationError,
    lost_race,
)
from services.common.eventstore import CoopApplication, ReadGuard, eventsourcing_env, guard_read
from services.common.idempotency import (
    Decision,
    Outcome,
    execute_idempotent,
    key_hint,
    ref_with_state,
    state_in_ref,
)
from services.common.money import check_positive_amount
from services.common.sealing import seal, unseal
from services.common.settings import ConfigurationError, Settings
from services.ledger.application import LedgerApplication
from services.ledger.domain import (
    WELFARE_FUND_PAYABLE_ACCOUNT,
    Cause,
    JournalEntry,
    Posting,
    Side,
)
from services.ledger.domain.facts import check_not_future
from services.ledger.domain.journal import ACCRUAL_CAUSE_PREFIX, check_books_open
from services.welfare_fund.domain import (
    BENEFICIARY_REF,
    DEFAULT_ACCOUNT_STREAMS,
    FUND_ID,
    ApprovalNotAllowed,
    Beneficiary,
    ChangedMeanwhile,
    Disbursement,
    DisbursementKind,
    IncomeSource,
    PaymentReversalReason,
    PolicyVersion,
    PolicyWithdrawal,
    Program,
    ProgramCatalog,
    StipendRules,
    StipendRulesWithdrawal,
    Stream,
    WelfareFund,
    accrual_postings,
    check_decided_by_person,
    check_month,
    disbursement_id_for,
)
from services.welfare_fund.domain.policy import check_policy
from services.welfare_fund.keystore import KeyStore

R = TypeVar("R")

ACCRUAL_ACTOR = "process:welfare-accrual"
MAX_CASE_NOTE_LENGTH = 2000
# Commands that touch the fund's book may lose against the accrual process, which
# writes the book after every page of income: decide again a few times.
BOOK_ATTEMPTS = 5
# Before any rules are configured, the DOMAIN.md figures apply from the start.
DEFAULT_STIPEND_RULES = StipendRules(effective_from=date(2000, 1, 1))


class WelfareFundApplication(CoopApplication):
    snapshotting_intervals: ClassVar[dict[type[Any], int]] = {WelfareFund: 50}

    def __init__(
        self,
        settings: Settings,
        ledger: LedgerApplication,
        keys: KeyStore,
        *,
        create_table: bool = True,
    ) -> None:
        self.ledger = ledger
        self.keys = keys
        try:
            self.programs = ProgramCatalog.from_config(settings.welfare_programs)
        except ValueError as exc:
            raise ConfigurationError(f"COOP_WELFARE_PROGRAMS: {exc}") from None
        # One store, one connection pool: the ledger's.
        super().__init__(settings, create_table=create_table, share_store_with=ledger)

    def construct_env(self, name: str, env: Any = None) -> Any:
        merged = dict(env or eventsourcing_env(self.settings))
        merged.setdefault("AGGREGATE_CACHE_MAXSIZE", "256")
        return super().construct_env(name, merged)

    # -- the book ----------------------------------------------------------------

    def ensure_fund(self) -> WelfareFund:
        """Start the book if it does not exist; refuse a configuration that dropped a
        program still holding money or named by a policy (its totals would vanish)."""
        try:
            fund = self.fund()
        except AggregateNotFoundError:
            with contextlib.suppress(IntegrityError):
                self.save(WelfareFund.start(DEFAULT_STIPEND_RULES))
            fund = self.fund()
        missing = sorted(fund.programs_in_use() - set(self.programs.programs))
        if missing:
            raise ConfigurationError(
                f"COOP_WELFARE_PROGRAMS leaves out {', '.join(missing)}, which the fund's "
                "history uses; keep every program that holds accruals or has a policy share"
            )
        return fund

    def fund(self) -> WelfareFund:
        fund: WelfareFund = self.repository.get(FUND_ID)
        return fund

    def _retrying(self, run: Callable[[], Outcome[R]]) -> Outcome[R]:
        for attempt in range(BOOK_ATTEMPTS):
            try:
                return run()
            except LostRace:
                # Only a lost race is worth another decision; a refusal would repeat.
                if attempt == BOOK_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def _dated(self, day: date | None, field: str) -> date:
        """The day a fund decision or payment is dated: `day` as the client sent it, or
        today (the cooperative's day); never after today (a payment dated ahead counted
        as disbursed only from its date, so today's balance disagreed with what had
        been paid). The request hashes `day` as sent (`_as_sent`), not this: a retry
        after midnight of a request that left the date out is the same request, and is
        answered with what was stored, dated the first day."""
        today = self.today()
        if day is None:
            return today
        check_not_future(day, today, field=field, what="a fund decision or payment")
        return day

    # -- policy and rules ----------------------------------------------------------

    def set_policy(
        self,
        *,
        key: str,
        actor: str,
        effective_from: date,
        shares: Sequence[tuple[Stream, int]],
        program_shares: Sequence[tuple[Program, int]] | None = None,
        account_streams: Sequence[tuple[str, Stream]] | None = None,
    ) -> Outcome[PolicyVersion]:
        programs = tuple(program_shares) if program_shares is not None else None
        accounts = tuple(account_streams) if account_streams is not None else None

        def decide() -> Decision[PolicyVersion]:
            fund = self.fund()
            # What is left out stays as it was on that day: the version in force then,
            # not the latest-dated one (a version put between two would take the later
            # one's split). Before the first version: the configured defaults. Only
            # what is left out (None): an empty list is what was sent, and
            # check_policy refuses it, instead of keeping the earlier values unseen.
            before = fund.policy_in_force(effective_from)
            split = programs
            if split is None:
                split = before.program_shares_ppm if before else self.programs.default_shares_ppm()
            mapping = accounts
            if mapping is None:
                mapping = before.account_streams if before else DEFAULT_ACCOUNT_STREAMS
            version = PolicyVersion(
                effective_from=effective_from,
                shares_ppm=dict(shares),
                program_shares_ppm=split,
                account_streams=mapping,
            )
            check_policy(
                list(shares), version.program_shares_ppm, version.account_streams, self.programs
            )
            fund.set_policy(version, actor=actor)
            ref = {"effective_from": effective_from.isoformat()}
            return Decision((fund,), version, ref_with_state(ref, version.as_state()))

        return self._retrying(
            lambda: execute_idempotent(
                self,
                key=key,
                operation="setRedistributionPolicy",
                request={
                    "effective_from": effective_from.isoformat(),
                    "shares": [[s.value, p] for s, p in shares],
                    "programs": None if programs is None else [[str(p), x] for p, x in programs],
                    "accounts": None if accounts is None else [[a, s.value] for a, s in accounts],
                    "actor": actor,
                },
                decide=decide,
                load_result=self._load_policy,
            )
        )

    def _load_policy(self, ref: Mapping[str, str]) -> PolicyVersion:
        state = state_in_ref(ref) or self.fund().policy_state_set_on(ref["effective_from"])
        return PolicyVersion.from_state(state)

    def withdraw_policy(
        self, *, key: str, actor: str, effective_from: date
    ) -> Outcome[PolicyWithdrawal]:
        """Withdraw a version set by mistake (90% typed for 9%) while no income from
        its day on is accrued: a later version would leave the mistake in force until
        then. Like setting one, it races the accrual process on the fund's book: a
        withdrawal that lost decides again on the book as the accrual left it."""
        # Not part of the request: a retry on another day is the same request.
        withdrawn_on = self.today()

        def decide() -> Decision[PolicyWithdrawal]:
            fund = self.fund()
            withdrawal = fund.withdraw_policy(
                effective_from,
                withdrawn_on=withdrawn_on,
                actor=actor,
                defaults=(self.programs.default_shares_ppm(), DEFAULT_ACCOUNT_STREAMS),
            )
            ref = {
                "effective_from": effective_from.isoformat(),
                "withdrawn_on": withdrawn_on.isoformat(),
            }
            return Decision((fund,), withdrawal, ref_with_state(ref, withdrawal.version.as_state()))

        return self._retrying(
            lambda: execute_idempotent(
                self,
                key=key,
                operation="withdrawRedistributionPolicy",
                request={"effective_from": effective_from.isoformat(), "actor": actor},
                decide=decide,
                load_result=_load_withdrawal,
            )
        )

    def set_stipend_rules(
        self, *, key: str, actor: str, rules: StipendRules, max_months_left_out: bool = False
    ) -> Outcome[StipendRules]:
        """`max_months_left_out`: the version takes the duration of the one in force on
        its day (a version set to raise the amounts must not cut ongoing internships
        back to the default); `rules.max_months` is then not looked at."""
        for field, cents in (
            ("fullAmount", rules.full_cents),
            ("withMealsAmount", rules.with_meals_cents),
            ("partTimeAmount", rules.part_time_cents),
            ("floorAmount", rules.floor_cents),
        ):
            check_positive_amount(
                cents, field=field, ceiling_cents=self.settings.amount_ceiling_cents
            )
        if not 0 < rules.full_attendance_ppm <= 1_000_000:
            raise ValidationError("fullAttendancePercent", "must be above 0 and at most 100")
        if not 1 <= rules.max_months <= MAX_INTERNSHIP_MONTHS:
            raise ValidationError("maxMonths", f"must be 1 to {MAX_INTERNSHIP_MONTHS}")
        rules.check_amounts()

        def decide() -> Decision[StipendRules]:
            fund = self.fund()
            version = rules
            if max_months_left_out:
                in_force = fund.stipend_rules_on(rules.effective_from)
                version = replace(rules, max_months=in_force.max_months)
            fund.set_stipend_rules(version, actor=actor)
            ref = {"effective_from": version.effective_from.isoformat()}
            return Decision((fund,), version, ref_with_state(ref, version.as_state()))

        return self._retrying(
            lambda: execute_idempotent(
                self,
                key=key,
                operation="setStipendRules",
                request={
                    "rules": rules.as_state(),
                    "actor": actor,
                    # Left out, the request is as releases before the field sent it.
                    **({} if max_months_left_out else {"max_months": rules.max_months}),
                },
                decide=decide,
                load_result=lambda ref: StipendRules.from_state(
                    # A reference stored before it kept the state: the version may
                    # have been withdrawn since, and is still found among those.
                    state_in_ref(ref)
                    or self.fund().stipend_rules_state_set_on(ref["effective_from"])
                ),
            )
        )

    def withdraw_stipend_rules(
        self, *, key: str, actor: str, effective_from: date
    ) -> Outcome[StipendRulesWithdrawal]:
        """Withdraw a version set by mistake (EUR 5000 typed for 500) while no month it
        governs has begun: a version from a later day would leave the mistake in force
        for its first month. Today (the cooperative's day) decides what has begun."""
        # Not part of the request: a retry on another day is the same request.
        withdrawn_on = self.today()

        def decide() -> Decision[StipendRulesWithdrawal]:
            fund = self.fund()
            withdrawal = fund.withdraw_stipend_rules(
                effective_from, withdrawn_on=withdrawn_on, actor=actor
            )
            ref = {
                "effective_from": effective_from.isoformat(),
                "withdrawn_on": withdrawn_on.isoformat(),
            }
            return Decision((fund,), withdrawal, ref_with_state(ref, withdrawal.rules.as_state()))

        return self._retrying(
            lambda: execute_idempotent(
                self,
                key=key,
                operation="withdrawStipendRules",
                request={"effective_from": effective_from.isoformat(), "actor": actor},
                decide=decide,
                load_result=_load_stipend_rules_withdrawal,
            )
        )

    def stipend_rules_listing(self) -> list[tuple[StipendRules, date | None]]:
        """Every stipend rules version, with the day it was withdrawn (None: in force),
        from the book itself: a handful of versions, which no read model holds."""
        fund: WelfareFund = self.repository.get(FUND_ID, deepcopy_from_cache=False)
        return fund.stipend_rules_listing()

    # -- beneficiaries -------------------------------------------------------------

    def enroll(
        self,
        *,
        key: str,
        actor: str,
        program: Program,
        enrolled_on: date | None,
        case_note: str | None,
    ) -> Outcome[Beneficiary]:
        """`enrolled_on` None: today."""
        sent_on = enrolled_on
        enrolled_on = self._dated(sent_on, "enrolledOn")
        if case_note is not None and len(case_note) > MAX_CASE_NOTE_LENGTH:
            raise ValidationError("caseNote", f"must be at most {MAX_CASE_NOTE_LENGTH} characters")
        program = self.programs.check(program)
        check_books_open(enrolled_on, self.settings.books_opened_on, field="enrolledOn")
        created: list[UUID] = []

        def decide() -> Decision[Beneficiary]:
            # A random id: the reference says nothing about the person or the request.
            beneficiary_id = uuid4()
            sealed = None
            if case_note:
                created.append(beneficiary_id)
                sealed = seal(self.keys.create(beneficiary_id), beneficiary_id, case_note)
            beneficiary = Beneficiary.enroll(beneficiary_id, program, enrolled_on, sealed)
            return Decision((beneficiary,), beneficiary, {BENEFICIARY_REF: str(beneficiary_id)})

        try:
            outcome = execute_idempotent(
                self,
                key=key,
                operation="enrollBeneficiary",
                # The note is not part of the request hash: no derivative of it is stored.
                request={"program": str(program), "enrolled_on": _as_sent(sent_on)},
                decide=decide,
                load_result=lambda ref: self._enrolled_with(ref, key, case_note),
            )
        except Exception:
            for orphan in created:
                self.keys.delete(orphan)
            raise
        for orphan in created:
            if orphan != outcome.result.id:  # a replay: this attempt's key is unused
                self.keys.delete(orphan)
        return outcome

    def _enrolled_with(
        self, ref: Mapping[str, str], key: str, case_note: str | None
    ) -> Beneficiary:
        """The beneficiary a claim answers, if the retry sent the note she was enrolled
        with: the note is not in the request's hash, so it is compared with the one
        sealed in her enrolment (a different note under the same key was answered
        with the old one and dropped without a word). Once she is forgotten there is
        nothing left to compare."""
        beneficiary = self.get_beneficiary(UUID(ref[BENEFICIARY_REF]))
        sealed = beneficiary.case_note_sealed
        if beneficiary.forgotten:
            return beneficiary
        if sealed is None:
            if case_note:
                raise IdempotencyKeyReused(key_hint(key))
            return beneficiary
        note_key = self.keys.get(beneficiary.id)
        if note_key is not None and unseal(note_key, beneficiary.id, sealed) != (case_note or None):
            raise IdempotencyKeyReused(key_hint(key))
        return beneficiary

    def get_beneficiary(self, beneficiary_id: UUID) -> Beneficiary:
        return self.get_as(
            Beneficiary, beneficiary_id, NotFound(f"beneficiary {beneficiary_id} does not exist")
        )

    def record_attendance(
        self,
        *,
        key: str,
        actor: str,
        beneficiary_id: UUID,
        month: str,
        scheduled_days: int,
        attended_days: int,
        meals_provided: bool,
        part_time: bool,
    ) -> Outcome[Beneficiary]:
        # An enrolment from before the books opened (recorded before this was checked)
        # must not bring attendance, and so stipends, from those months.
        check_books_open(
            check_month(month), self.settings.books_opened_on, field="month", whole_month=True
        )

        first_read: dict[str, int] = {}

        def decide() -> Decision[Beneficiary]:
            beneficiary = self.get_beneficiary(beneficiary_id)
            # Decided again only for the fund's book: a record for her saved meanwhile
            # (another officer's) is not this command's to overwrite.
            if beneficiary.version != first_read.setdefault("version", beneficiary.version):
                raise ChangedMeanwhile("recordAttendance")
            fund = self.fund()
            first_day = check_month(month)
            beneficiary.record_attendance(
                month=month,
                scheduled_days=scheduled_days,
                attended_days=attended_days,
                meals_provided=meals_provided,
                part_time=part_time,
                rules=fund.stipend_rules_on(first_day),
                support=self.programs.support_of(beneficiary.program),
                today=self.today(),
            )
            # The month's first attendance fixes its rules in the fund's book, in the
            # same save: a version set or withdrawn meanwhile makes one of the two
            # saves lose the race and decide again (see WelfareFund.fix_stipend_rules).
            saved = (beneficiary, fund) if fund.fix_stipend_rules(first_day) else (beneficiary,)
            return Decision(saved, beneficiary, {BENEFICIARY_REF: str(beneficiary_id)})

        return self._retrying(
            lambda: execute_idempotent(
                self,
                key=key,
                operation="recordAttendance",
                request={
                    "beneficiary_id": str(beneficiary_id),
                    "month": month,
                    "scheduled": scheduled_days,
                    "attended": attended_days,
                    "meals": meals_provided,
                    "part_time": part_time,
                },
                decide=decide,
                load_result=lambda ref: self.get_beneficiary(UUID(ref[BENEFICIARY_REF])),
            )
        )

    def forget(self, *, key: str, actor: str, beneficiary_id: UUID) -> Outcome[Beneficiary]:
        def decide() -> Decision[Beneficiary]:
            beneficiary = self.get_beneficiary(beneficiary_id)
            beneficiary.forget()
            # The key goes after the save, not here: a forget decided and then refused
            # (a reused idempotency key, a lost race) would have destroyed her note.
            return Decision((beneficiary,), beneficiary, {BENEFICIARY_REF: str(beneficiary_id)})

        try:
            outcome = execute_idempotent(
                self,
                key=key,
                operation="forgetBeneficiary",
                request={"beneficiary_id": str(beneficiary_id)},
                decide=decide,
                load_result=lambda ref: self.get_beneficiary(UUID(ref[BENEFICIARY_REF])),
            )
        except Conflict:
            # "Already forgotten": if the process died between an earlier request's
            # save and its key delete, this request (whatever its idempotency key)
            # finishes it; otherwise her case note would open for good.
            if self.get_beneficiary(beneficiary_id).forgotten:
                self.keys.delete(beneficiary_id)
            raise
        # After the Forgotten event is stored (and again on every retry): shred the key.
        self.keys.delete(beneficiary_id)
        return outcome

    def _not_forgotten_guard(self, beneficiary: Beneficiary) -> ReadGuard:
        """A save conditional on `beneficiary` being as read. If she changed meanwhile
        and was forgotten, the command lost the race: deciding again, it is refused
        (or, a retry of a request already stored, answered with what was stored)."""
        beneficiary_id = beneficiary.id

        def recheck() -> ReadGuard:
            current = self.get_beneficiary(beneficiary_id)
            if current.forgotten:
                raise LostRace(lost_race("commitDisbursement"))
            return self._not_forgotten_guard(current)

        return ReadGuard(beneficiary_id, beneficiary.version, recheck)

    # -- disbursements -------------------------------------------------------------

    def get_disbursement(self, disbursement_id: UUID) -> Disbursement:
        return self.get_as(
            Disbursement,
            disbursement_id,
            NotFound(f"disbursement {disbursement_id} does not exist"),
        )

    def _load_disbursement(self, ref: Mapping[str, str]) -> Disbursement:
        return self.get_disbursement(UUID(ref["disbursement_id"]))

    def commit(
        self,
        *,
        key: str,
        actor: str,
        beneficiary_id: UUID,
        kind: DisbursementKind,
        month: str,
        amount_cents: int | None,
        committed_on: date | None,
    ) -> Outcome[Disbursement]:
        """`committed_on` None: today."""
        sent_on = committed_on
        committed_on = self._dated(sent_on, "effectiveDate")
        check_decided_by_person(actor, "commitDisbursement")
        opened_on = self.settings.books_opened_on
        check_books_open(check_month(month), opened_on, field="month", whole_month=True)
        check_books_open(committed_on, opened_on, field="effectiveDate")
        if kind is DisbursementKind.STIPEND:
            if amount_cents is not None:
                raise ValidationError("amount", "a stipend's amount follows from the attendance")
        elif amount_cents is None:
            raise ValidationError("amount", f"required for {kind.value.lower()}")
        else:
            check_positive_amount(
                amount_cents, field="amount", ceiling_cents=self.settings.amount_ceiling_cents
            )
        disbursement_id = disbursement_id_for(key)

        def decide() -> Decision[Disbursement]:
            beneficiary = self.get_beneficiary(beneficiary_id)
            if beneficiary.forgotten:
                raise Conflict(f"beneficiary {beneficiary.ref} was forgotten")
            support = self.programs.support_of(beneficiary.program)
            kind.check_paid_by(beneficiary.program, support)
            beneficiary.check_within_enrolment(month, on=committed_on)
            touched: list[Any] = []
            amount = amount_cents
            if kind is DisbursementKind.STIPEND:
                amount = beneficiary.commit_stipend(month, disbursement_id)
                touched.append(beneficiary)
                if amount == 0:
                    raise ValidationError("month", "no stipend is due for that attendance")
            assert amount is not None
            disbursement = Disbursement.commit(
                disbursement_id=disbursement_id,
                beneficiary_id=beneficiary_id,
                program=beneficiary.program,
                support=support,
                kind=kind,
                month=month,
                amount_cents=amount,
                committed_on=committed_on,
                actor=actor,
            )
            if kind is not DisbursementKind.STIPEND:
                # Nothing of hers changes, so she is not saved, and a forget saved
                # between this read and the save went unnoticed: the commitment was
                # stored for a beneficiary already forgotten. Her version guards the
                # save instead (a stipend's save of her own events already does).
                guard_read(disbursement, self._not_forgotten_guard(beneficiary))
            fund = self.fund()
            fund.reserve(disbursement_id, beneficiary.program, amount, on=committed_on)
            return Decision(
                (fund, disbursement, *touched),
                disbursement,
                {"disbursement_id": str(disbursement_id)},
            )

        return self._retrying(
            lambda: execute_idempotent(
                self,
                key=key,
                operation="commitDisbursement",
                request={
                    "beneficiary_id": str(beneficiary_id),
                    "kind": kind.value,
                    "month": month,
                    "amount_cents": amount_cents,
                    "committed_on": _as_sent(sent_on),
                    "actor": actor,
                },
                decide=decide,
                load_result=self._load_disbursement,
            )
        )

    def approve(
        self,
        *,
        key: str,
        actor: str,
        approver_is_fund_officer: bool,
        disbursement_id: UUID,
        approved_on: date | None,
    ) -> Outcome[Disbursement]:
        """`approved_on` None: today."""
        sent_on = approved_on
        approved_on = self._dated(sent_on, "effectiveDate")
        if not approver_is_fund_officer:
            raise ApprovalNotAllowed
        check_decided_by_person(actor, "approveDisbursement")

        def decide() -> Decision[Disbursement]:
            disbursement = self.get_disbursement(disbursement_id)
            disbursement.approve(approved_on=approved_on, approver=actor)
            return Decision(
                (disbursement,), disbursement, {"disbursement_id": str(disbursement_id)}
            )

        return execute_idempotent(
            self,
            key=key,
            operation="approveDisbursement",
            request={
                "disbursement_id": str(disbursement_id),
                "approved_on": _as_sent(sent_on),
                "actor": actor,
            },
            decide=decide,
            load_result=self._load_disbursement,
        )

    def pay(
        self,
        *,
        key: str,
        actor: str,
        disbursement_id: UUID,
        amount_cents: int,
        paid_on: date | None,
    ) -> Outcome[Disbursement]:
        """`paid_on` None: today."""
        sent_on = paid_on
        paid_on = self._dated(sent_on, "paidOn")
        check_decided_by_person(actor, "payDisbursement")
        check_positive_amount(
            amount_cents, field="amount", ceiling_cents=self.settings.amount_ceiling_cents
        )

        def decide() -> Decision[Disbursement]:
            disbursement = self.get_disbursement(disbursement_id)
            cause_id = f"welfare:payment:{disbursement_id}:{disbursement.payments + 1}"
            entry = self.ledger.prepare_entry(
                effective_date=paid_on,
                description=f"Welfare fund disbursement {disbursement_id} paid "
                f"({disbursement.kind.value.lower()}, {disbursement.month})",
                postings=[
                    Posting(WELFARE_FUND_PAYABLE_ACCOUNT, Side.DEBIT, amount_cents),
                    Posting("1010", Side.CREDIT, amount_cents),
                ],
                cause=Cause(cause_id, actor),
            )
            disbursement.pay(
                amount_cents=amount_cents, paid_on=paid_on, entry_id=entry.id, actor=actor
            )
            return Decision(
                (disbursement, entry), disbursement, {"disbursement_id": str(disbursement_id)}
            )

        return execute_idempotent(
            self,
            key=key,
            operation="payDisbursement",
            request={
                "disbursement_id": str(disbursement_id),
                "amount_cents": amount_cents,
                "paid_on": _as_sent(sent_on),
                "actor": actor,
            },
            decide=decide,
            load_result=self._load_disbursement,
        )

    def reverse_payment(
        self,
        *,
        key: str,
        actor: str,
        disbursement_id: UUID,
        payment: int,
        reversed_on: date | None,
        reason: PaymentReversalReason,
    ) -> Outcome[Disbursement]:
        """Correct a payment recorded in error: the disbursement records the reversal
        (at most once per payment) and, in the same save, the ledger reverses the
        payment's entry (Dr 1010 / Cr 2400: owed to the fund again). The amount is
        unpaid again and stays reserved for the disbursement: pay it right, or cancel
        to release it. The description names ids and the reason's code only.
        `reversed_on` None: today."""
        sent_on = reversed_on
        reversed_on = self._dated(sent_on, "effectiveDate")

        def decide() -> Decision[Disbursement]:
            disbursement = self.get_disbursement(disbursement_id)
            _amount_cents, entry_id = disbursement.payment_to_reverse(
                payment, reversed_on=reversed_on
            )
            original, reversal = self.ledger.prepare_reversal(
                entry_id,
                effective_date=reversed_on,
                description=f"Reversal of welfare fund payment {payment} of disbursement "
                f"{disbursement_id}: {reason.label}",
                actor=actor,
            )
            disbursement.reverse_payment(
                payment=payment,
                reversed_on=reversed_on,
                reversal_entry_id=reversal.id,
                reason=reason,
                actor=actor,
            )
            return Decision(
                (disbursement, original, reversal),
                disbursement,
                {"disbursement_id": str(disbursement_id)},
            )

        return execute_idempotent(
            self,
            key=key,
            operation="reverseDisbursementPayment",
            request={
                "disbursement_id": str(disbursement_id),
                "payment": payment,
                "reversed_on": _as_sent(sent_on),
                "reason": reason.value,
                "actor": actor,
            },
            decide=decide,
            load_result=self._load_disbursement,
        )

    def cancel(
        self, *, key: str, actor: str, disbursement_id: UUID, cancelled_on: date | None
    ) -> Outcome[Disbursement]:
        """`cancelled_on` None: today."""
        sent_on = cancelled_on
        cancelled_on = self._dated(sent_on, "effectiveDate")

        def decide() -> Decision[Disbursement]:
            disbursement = self.get_disbursement(disbursement_id)
            released = disbursement.cancel(cancelled_on=cancelled_on, actor=actor)
            fund = self.fund()
            fund.release(disbursement_id, disbursement.program, released, on=cancelled_on)
            touched: list[Any] = [fund, disbursement]
            # A stipend cancelled with nothing paid frees its month for a new one; one
            # paid in part keeps it: released, the month's whole stipend could be
            # committed again on top of what was already paid.
            if disbursement.kind is DisbursementKind.STIPEND and disbursement.paid_cents == 0:
                beneficiary = self.get_beneficiary(disbursement.beneficiary_id)
                if not beneficiary.forgotten:
                    beneficiary.release_stipend(disbursement.month)
                    touched.append(beneficiary)
            return Decision(tuple(touched), disbursement, {"disbursement_id": str(disbursement_id)})

        return self._retrying(
            lambda: execute_idempotent(
                self,
                key=key,
                operation="cancelDisbursement",
                request={
                    "disbursement_id": str(disbursement_id),
                    "cancelled_on": _as_sent(sent_on),
                    "actor": actor,
                },
                decide=decide,
                load_result=self._load_disbursement,
            )
        )

    # -- accrual -------------------------------------------------------------------

    def _reversed_entry_date(self, event: JournalEntry.Posted) -> date | None:
        """The effective date of the entry a reversal reverses (one read, for the
        rare reversal only; a reversal is never itself reversed)."""
        if event.reverses_entry_id is None:
            return None
        return self.ledger.get_entry(event.reverses_entry_id).effective_date

    def accrue(self, postings: Sequence[tuple[int, JournalEntry.Posted]]) -> int | None:
        """Accrue the fund's share of these ledger entries (in log order).

        The book records the last ledger position it accrued, in the same save as the
        accrual entries: a page is accrued exactly once, even with two followers (one
        loses on the book's version and finds the page done). Returns the highest
        position written, or None if nothing was.
        """
        for attempt in range(BOOK_ATTEMPTS):
            # The follower is nearly always the book's only writer: the first attempt
            # plans on the book as last seen (no read); a stale one loses the save.
            fund: WelfareFund = self.last_seen_to_change(FUND_ID) if attempt == 0 else self.fund()
            sources = [
                IncomeSource(
                    position=position,
                    entry_id=str(event.originator_id),
                    effective_date=event.effective_date,
                    postings=[Posting.from_state(p) for p in event.postings],
                    reverses_effective_date=self._reversed_entry_date(event),
                    reverses_entry_id=(
                        None if event.reverses_entry_id is None else str(event.reverses_entry_id)
                    ),
                )
                for position, event in postings
                if position > fund.position
            ]
            read = fund.income_read(sources)
            if read is None:
                return None
            last, income_through = read
            items = fund.plan_accruals(sources)
            net_by_day: dict[date, int] = {}
            for item in items:
                day = date.fromisoformat(item["date"])
                net_by_day[day] = net_by_day.get(day, 0) + int(item["accrued"])
            first = min((int(item["position"]) for item in items), default=last)
            entries = []
            for day, day_postings in sorted(accrual_postings(net_by_day).items()):
                count = len({i["entry_id"] for i in items if i["date"] == day.isoformat()})
                entries.append(
                    self.ledger.prepare_entry(
                        effective_date=day,
                        description=f"Welfare fund accrual on {count} income entries effective "
                        f"{day.isoformat()} (ledger positions {first}-{last})",
                        postings=day_postings,
                        cause=Cause(
                            f"{ACCRUAL_CAUSE_PREFIX}{last}:{day.isoformat()}", ACCRUAL_ACTOR
                        ),
                    )
                )
            fund.record_accruals(
                last, items, [str(e.id) for e in entries], income_through=income_through
            )
            try:
                recordings = self.save(fund, *entries)
            except IntegrityError:
                continue  # a command or another follower wrote the book first: re-plan
            return max(r.notification.id for r in recordings)
        raise LostRace("the welfare fund's book kept changing; accrual will be retried")


# The longest internship a version of the stipend rules may allow: a bound for typos
# (120 for 12), well above what any regional rule allows.
MAX_INTERNSHIP_MONTHS = 36


def _as_sent(day: date | None) -> str | None:
    """A date as the request hash keeps it: as the client sent it, None if left out."""
    return None if day is None else day.isoformat()


def _load_withdrawal(ref: Mapping[str, str]) -> PolicyWithdrawal:
    state = state_in_ref(ref)
    assert state is not None  # withdrawals always kept their state in the reference
    return PolicyWithdrawal(
        PolicyVersion.from_state(state), date.fromisoformat(ref["withdrawn_on"])
    )


def _load_stipend_rules_withdrawal(ref: Mapping[str, str]) -> StipendRulesWithdrawal:
    state = state_in_ref(ref)
    assert state is not None  # withdrawals always kept their state in the reference
    return StipendRulesWithdrawal(
        StipendRules.from_state(state), date.fromisoformat(ref["withdrawn_on"])
    )
