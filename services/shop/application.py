"""Shop application service: load, call the aggregates, save. Nothing else.

Every command that moves money saves the shop's events and the ledger entry they
cause in ONE save(), together with the idempotency claim: the sale and its posting
exist together or not at all. Entry causes are unique per document
(`shop:sale:<id>`, `shop:refund:<id>`, `shop:cash:<id>`, `shop:z:<session id>`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from typing import Any, ClassVar, TypeVar
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from services.common.errors import Conflict, CoopError, LostRace, ValidationError
from services.common.eventstore import (
    NOT_OURS,
    CoopApplication,
    ReadGuard,
    eventsourcing_env,
    guard_read,
)
from services.common.idempotency import (
    Decision,
    Outcome,
    execute_idempotent,
    ref_with_state,
    state_in_ref,
)
from services.common.money import check_positive_amount
from services.common.settings import Settings
from services.ledger.application import ConfiguredAccounts, LedgerApplication
from services.ledger.domain import (
    AccountType,
    Cause,
    ChartOfAccounts,
    Posting,
    Side,
    check_not_kept,
)
from services.shop.domain import (
    CONFIG_ID,
    CashDirection,
    CashSession,
    GoodsIntake,
    LineInput,
    NoOpenSession,
    PaymentInput,
    PaymentMethod,
    PolicyMovedOn,
    RefundLineInput,
    Sale,
    SaleNotFound,
    SessionNotFound,
    ShopConfig,
    ShopPolicy,
    ShopPolicyWithdrawal,
    Till,
    check_scope,
    check_till_id,
    default_policy,
    document_postings,
    till_aggregate_id,
)

# Ids of things a command creates derive from its idempotency key (uuid5), so a
# retried command addresses the same sale, refund or session.
SHOP_NAMESPACE = uuid5(NAMESPACE_URL, "urn:coop:shop")
SYSTEM_ACTOR = "system:shop-setup"
MAX_NOTE_LENGTH = 200


def id_for_key(kind: str, key: str) -> UUID:
    return uuid5(SHOP_NAMESPACE, f"{kind}:{key}")


R = TypeVar("R")


class ShopApplication(CoopApplication):
    # Sessions take an event per sale (a few hundred a day); the configuration and
    # tills live for years: snapshot them, and keep hot ones in the repository cache
    # (fast-forwarded, so another process's writes are seen).
    snapshotting_intervals: ClassVar[dict[type[Any], int]] = {
        CashSession: 100,
        Till: 50,
        ShopConfig: 20,
    }

    def __init__(
        self, settings: Settings, ledger: LedgerApplication, *, create_table: bool = True
    ) -> None:
        self.ledger = ledger
        ledger.keep_open_while_configured(self._accounts_in_use)
        super().__init__(settings, create_table=create_table, share_store_with=ledger)

    def construct_env(self, name: str, env: Any = None) -> Any:
        merged = dict(env or eventsourcing_env(self.settings))
        merged.setdefault("AGGREGATE_CACHE_MAXSIZE", "512")
        return super().construct_env(name, merged)

    # Configuration -------------------------------------------------------------

    def ensure_config(self) -> ShopConfig:
        """Seed the default configuration and its revenue accounts on an empty store."""
        try:
            return self.config()
        except AggregateNotFoundError:
            pass
        policy = default_policy()
        chart = self.ledger.chart()
        for category in policy.categories:
            if category.revenue_account not in chart.accounts:
                with contextlib.suppress(Conflict):  # another process opened it first
                    self.ledger.open_account(
                        key=f"shop:setup:account:{category.revenue_account}",
                        actor=SYSTEM_ACTOR,
                        code=category.revenue_account,
                        name=f"Shop revenue: {category.name.lower()}",
                        account_type=AccountType.REVENUE,
                    )
        config = ShopConfig.start()
        config.set_policy(
            policy,
            today=policy.effective_from,
            amount_ceiling_cents=self.settings.amount_ceiling_cents,
        )
        with contextlib.suppress(IntegrityError):
            self.save(config)  # a collision means another process seeded it first
        return self.config()

    def config(self, *, read_only: bool = True) -> ShopConfig:
        """Sales and refunds only read it: skip the repository cache's defensive deep
        copy (a twentieth of a ringSale's server time). Changes ask for
        `read_only=False`."""
        config: ShopConfig = self.repository.get(CONFIG_ID, deepcopy_from_cache=not read_only)
        return config

    def policy_on(self, day: date, *, field: str = "date") -> ShopPolicy:
        return self.config().policy_on(day, field=field)

    def _accounts_in_use(self) -> ConfiguredAccounts | None:
        """The accounts the configurations in force today or later post to: closed,
        the tills would be refused every sale (or count) that posts there."""
        try:
            config = self.config()
        except AggregateNotFoundError:  # not seeded yet: it posts nowhere
            return None
        in_use: dict[str, str] = {}
        for policy in config.policies_from(self.today()):
            for code in sorted(policy.accounts()):
                in_use.setdefault(
                    code,
                    f"the shop's configuration from {policy.effective_from.isoformat()} "
                    "posts to it (one naming another account must be in force first)",
                )
        return ConfiguredAccounts(CONFIG_ID, config.version, in_use)

    def guarded_policy_on(self, day: date, saved_with: Aggregate) -> ShopPolicy:
        """The policy of `day` for a till's document, read without a query.

        Every sale and refund reads the shop's configuration: from the repository cache,
        as this process last saw it, with a ReadGuard on `saved_with` (an aggregate the
        decision saves) instead of a fast-forward query. The save then checks, in its
        write transaction, that the configuration has not moved on; if it has and the
        day's policy is no longer the one used, nothing is written (PolicyMovedOn) and
        `_on_last_seen` (sales) or `_with_current_policy` (refunds) decides the command
        again. The guard covers a stale copy that accepts what the current policy
        refuses; a stale copy that refuses (a category added elsewhere) is
        `_on_current_config`'s part: decisions that read this run under it."""
        config = self._cached_config()
        policy = config.policy_on(day)
        guard_read(saved_with, self._policy_guard(config.version, day, policy))
        return policy

    def _cached_config(self) -> ShopConfig:
        config = self.as_last_seen(CONFIG_ID)
        assert isinstance(config, ShopConfig)
        return config

    def _policy_guard(self, version: int, day: date, policy: ShopPolicy) -> ReadGuard:
        def recheck() -> ReadGuard:
            config = self.config()  # fast-forwards the cached configuration
            if config.policy_on(day) != policy:
                raise PolicyMovedOn(
                    f"the shop's policy for {day.isoformat()} changed while this document "
                    "was saved; nothing was written. Try again."
                )
            return self._policy_guard(config.version, day, policy)

        return ReadGuard(CONFIG_ID, version, recheck)

    def _on_current_config(self, decide: Callable[[], Decision[R]]) -> Decision[R]:
        """Decide on the configuration as this process last saw it; if that refuses
        and the configuration has moved on since, decide once more on the current one.

        The cached copy may predate a policy another worker set (a category added, an
        account moved): a refusal it raises inside the decision comes before any save,
        so no read guard sees it, and it would stay wrong until something else
        refreshed the cache. As the ledger does for its chart (`prepare_entry`): refuse
        only what the current configuration refuses. Costs one query, on refusals only.
        `decide` must load what it changes afresh (the sales and refunds do), so its
        second run starts from clean copies."""
        seen_version = self._cached_config().version
        try:
            return decide()
        except CoopError:
            # config() fast-forwards the cached copy, so the second run reads it.
            if self.config().version == seen_version:
                raise  # decided on the current configuration already: it stands
            return decide()

    @staticmethod
    def _on_last_seen(run: Callable[[bool], Outcome[R]]) -> Outcome[R]:
        """Run a sale on what this process last saw, without reading the store: the
        policy under a read guard and the session as a copy of the cached one (a till
        rings on one connection, so one worker, whose copy is current). If either had
        moved on (another worker rang on the session, or changed the policy), the save
        fails and nothing is written; then it runs once more on the stored state.

        Only for decisions a stale session cannot wrongly refuse: a sale's checks
        (open, till, next receipt) fail on a stale copy only at the save. A refund's
        cash check could, so refunds read the session fresh. A stale configuration
        can wrongly refuse too: that is `_on_current_config`'s part."""
        try:
            return run(False)
        except (LostRace, PolicyMovedOn):
            # A domain conflict (closed session, other till) stands; these do not.
            return run(True)

    @staticmethod
    def _with_current_policy(run: Callable[[], Outcome[R]]) -> Outcome[R]:
        """Run a command that read its policy through `guarded_policy_on`; once more if
        the policy had moved on (its recheck has brought the cache up to date), so a
        change made by another process never fails the first document after it."""
        try:
            return run()
        except PolicyMovedOn:
            return run()

    def set_policy(
        self, *, key: str, actor: str, policy: ShopPolicy, today: date
    ) -> Outcome[ShopPolicy]:
        def decide() -> Decision[ShopPolicy]:
            config = self.config(read_only=False)
            self.ledger.guard_on_chart(config, lambda chart: self._check_accounts(policy, chart))
            config.set_policy(
                policy, today=today, amount_ceiling_cents=self.settings.amount_ceiling_cents
            )
            # The version itself in the claim: a retry answers with what this request
            # set, not with a version set for the same day since.
            day = {"effective_from": policy.effective_from.isoformat()}
            ref = ref_with_state(day, policy.as_state())
            return Decision((config,), policy, ref)

        def load_result(ref: Mapping[str, str]) -> ShopPolicy:
            state = state_in_ref(ref)
            if state is None:  # claimed before versions were kept in the claim
                return self.policy_on(date.fromisoformat(ref["effective_from"]))
            return ShopPolicy.from_state(state)

        return execute_idempotent(
            self,
            key=key,
            operation="setShopPolicy",
            request={"policy": policy.as_state(), "actor": actor},
            decide=decide,
            load_result=load_result,
        )

    def withdraw_policy(
        self, *, key: str, actor: str, effective_from: date, today: date
    ) -> Outcome[ShopPolicyWithdrawal]:
        """ShopConfig.withdraw_policy: a version not yet in force, set by mistake."""

        def decide() -> Decision[ShopPolicyWithdrawal]:
            config = self.config(read_only=False)
            withdrawal = config.withdraw_policy(effective_from, today=today)
            ref = {
                "effective_from": effective_from.isoformat(),
                "withdrawn_on": withdrawal.withdrawn_on.isoformat(),
            }
            return Decision((config,), withdrawal, ref)

        return execute_idempotent(
            self,
            key=key,
            operation="withdrawShopPolicy",
            # Not the day: a retry after midnight is the same request.
            request={"effective_from": effective_from.isoformat(), "actor": actor},
            decide=decide,
            load_result=lambda ref: ShopPolicyWithdrawal(
                date.fromisoformat(ref["effective_from"]), date.fromisoformat(ref["withdrawn_on"])
            ),
        )

    def _check_accounts(self, policy: ShopPolicy, chart: ChartOfAccounts) -> None:
        expected: list[tuple[str, str, AccountType | None]] = [
            ("cashAccount", policy.cash_account, AccountType.ASSET),
            ("cardAccount", policy.card_account, AccountType.ASSET),
            ("overShortAccount", policy.over_short_account, AccountType.EXPENSE),
        ]
        for i, c in enumerate(policy.categories):
            expected.append(
                (f"categories[{i}].revenueAccount", c.revenue_account, AccountType.REVENUE)
            )
            expected.append((f"categories[{i}].vatAccount", c.vat_account, AccountType.LIABILITY))
        for i, r in enumerate(policy.cash_reasons):
            expected.append((f"cashReasons[{i}].account", r.account, None))
        # A cash movement is typed in at the till, an entry by hand in all but name: it
        # may not post to an account another context keeps (2400: "paid the fund"
        # from the drawer would leave the welfare fund's figures behind).
        for field, code, account_type in expected:
            check_not_kept(code, self.ledger.kept_accounts, field=field, context="the shop")
            account = chart.postable(code, field=field)
            if account_type is not None and account.account_type is not account_type:
                raise ValidationError(
                    field, f"account {code!r} is not a {account_type.value} account"
                )

    # Sessions ------------------------------------------------------------------

    def open_session(
        self,
        *,
        key: str,
        actor: str,
        till_scope: str | None,
        till_id: str,
        opening_float_cents: int,
        at: datetime,
    ) -> Outcome[CashSession]:
        session_id = id_for_key("session", key)

        def decide() -> Decision[CashSession]:
            check_till_id(till_id)
            check_scope(till_scope, till_id)
            if opening_float_cents < 0:
                raise ValidationError("openingFloat", "must not be negative")
            if opening_float_cents > self.settings.amount_ceiling_cents:
                raise ValidationError("openingFloat", "exceeds the amount ceiling")
            try:
                till: Till = self.repository.get(till_aggregate_id(till_id))
            except AggregateNotFoundError:
                till = Till.register(till_id)
            session = till.open_session(
                session_id=session_id,
                opening_float_cents=opening_float_cents,
                opened_at=at,
                business_date=self._day(at),
                opened_by=actor,
            )
            return Decision((till, session), session, {"session_id": str(session_id)})

        return execute_idempotent(
            self,
            key=key,
            operation="openCashSession",
            request={"till_id": till_id, "float": opening_float_cents, "actor": actor},
            decide=decide,
            load_result=lambda ref: self.get_session(UUID(ref["session_id"])),
        )

    def ring_sale(
        self,
        *,
        key: str,
        actor: str,
        till_scope: str | None,
        session_id: UUID,
        lines: Sequence[LineInput],
        payments: Sequence[PaymentInput],
        at: datetime,
    ) -> Outcome[Sale]:
        sale_id = id_for_key("sale", key)

        def decide(fresh: bool) -> Decision[Sale]:
            session = self.get_session(session_id, fresh=fresh)
            session.check_scope(till_scope)
            session.check_open()
            day = session.document_day(self._day(at))
            policy = self.guarded_policy_on(day, session)
            sale = Sale.ring(
                sale_id=sale_id,
                session_id=session.id,
                till_id=session.till_id,
                z_number=session.z_number,
                business_date=day,
                receipt_number=session.next_receipt(day),
                rung_at=at,
                actor=actor,
                lines=lines,
                payments=payments,
                policy=policy,
                ceiling_cents=self.settings.amount_ceiling_cents,
            )
            document = sale.document
            session.record_document(
                document_id=sale.id,
                kind="sale",
                receipt_day=day,
                receipt_number=document.receipt_number,
                cash_cents=document.cash_cents,
                card_cents=document.card_cents,
            )
            entry = self.ledger.prepare_entry(
                effective_date=day,
                description=(
                    f"Shop sale, till {session.till_id}, {day} receipt {sale.receipt_number}"
                ),
                postings=document_postings(sale.lines, sale.payments, policy, refund=False),
                cause=Cause(f"shop:sale:{sale.id}", actor),
            )
            return Decision((session, sale, entry), sale, {"sale_id": str(sale.id)})

        return self._on_last_seen(
            lambda fresh: execute_idempotent(
                self,
                key=key,
                operation="ringSale",
                request={
                    "session_id": str(session_id),
                    "lines": [
                        [ln.category, ln.description, ln.quantity, ln.unit_price_cents]
                        for ln in lines
                    ],
                    "payments": [[p.method.value, p.amount_cents] for p in payments],
                    "actor": actor,
                },
                decide=lambda: self._on_current_config(lambda: decide(fresh)),
                load_result=lambda ref: self.get_sale(UUID(ref["sale_id"])),
            )
        )

    def refund_sale(
        self,
        *,
        key: str,
        actor: str,
        till_scope: str | None,
        sale_id: UUID,
        session_id: UUID | None,
        lines: Sequence[RefundLineInput] | None,
        method: PaymentMethod | None,
        at: datetime,
    ) -> Outcome[dict[str, Any]]:
        refund_id = id_for_key("refund", key)

        def decide() -> Decision[dict[str, Any]]:
            sale = self.get_sale(sale_id)
            # A volunteer refunds its own till's sales only: the refund answers with
            # the sale's lines, which another till's volunteers may not read. Another
            # till's sale is refunded by an admin (any open session pays it out).
            check_scope(till_scope, sale.till_id)
            session = self._refund_session(session_id, till_scope or sale.till_id)
            session.check_scope(till_scope)
            session.check_open()
            day = session.document_day(self._day(at))
            refund = sale.refund(
                refund_id=refund_id,
                session_id=session.id,
                till_id=session.till_id,
                z_number=session.z_number,
                business_date=day,
                receipt_number=session.next_receipt(day),
                refunded_at=at,
                actor=actor,
                lines=lines,
                method=method,
            )
            by_method = {p["method"]: int(p["amount_cents"]) for p in refund["payments"]}
            session.record_document(
                document_id=refund_id,
                kind="refund",
                receipt_day=day,
                receipt_number=int(refund["receipt_number"]),
                cash_cents=by_method.get(PaymentMethod.CASH.value, 0),
                card_cents=by_method.get(PaymentMethod.CARD.value, 0),
            )
            policy = self.guarded_policy_on(day, session)
            entry = self.ledger.prepare_entry(
                effective_date=day,
                description=(
                    f"Shop refund, till {session.till_id}, {day} receipt "
                    f"{refund['receipt_number']}, of receipt {sale.receipt_number} "
                    f"({sale.till_id}, {sale.business_date})"
                ),
                postings=document_postings(
                    refund["lines"], refund["payments"], policy, refund=True
                ),
                cause=Cause(f"shop:refund:{refund_id}", actor),
                # A refund undoes part of the sale: to the sale's own revenue and VAT
                # accounts, closed since or not (the policy's current ones may differ).
                correcting=frozenset(
                    str(line[role])
                    for line in refund["lines"]
                    for role in ("revenue_account", "vat_account")
                ),
            )
            result = {"refund_id": str(refund_id), "sale_id": str(sale.id)}
            return Decision((session, sale, entry), result, result)

        return self._with_current_policy(
            lambda: execute_idempotent(
                self,
                key=key,
                operation="refundSale",
                request={
                    "sale_id": str(sale_id),
                    "session_id": str(session_id) if session_id else None,
                    "lines": None if lines is None else [[ln.line_no, ln.quantity] for ln in lines],
                    "method": method.value if method else None,
                    "actor": actor,
                },
                decide=lambda: self._on_current_config(decide),
                load_result=dict,
            )
        )

    def _refund_session(self, session_id: UUID | None, till_id: str) -> CashSession:
        if session_id is not None:
            return self.get_session(session_id)
        open_id = self.open_session_of(till_id)
        if open_id is None:
            raise NoOpenSession(f"till {till_id!r} has no open cash session; open one first")
        return self.get_session(open_id)

    def move_cash(
        self,
        *,
        key: str,
        actor: str,
        till_scope: str | None,
        session_id: UUID,
        direction: CashDirection,
        amount_cents: int,
        reason: str,
        note: str,
        at: datetime,
    ) -> Outcome[CashSession]:
        movement_id = id_for_key("cash", key)

        def decide() -> Decision[CashSession]:
            check_positive_amount(
                amount_cents, field="amount", ceiling_cents=self.settings.amount_ceiling_cents
            )
            if len(note) > MAX_NOTE_LENGTH:
                raise ValidationError("note", f"must be at most {MAX_NOTE_LENGTH} characters")
            session = self.get_session(session_id)
            session.check_scope(till_scope)
            session.check_open()
            day = self._day(at)
            policy = self.policy_on(day)
            cash_reason = policy.cash_reason(reason, direction, field="reason")
            session.move_cash(
                movement_id=movement_id,
                direction=direction,
                amount_cents=amount_cents,
                reason=cash_reason.code,
                note=note.strip(),
                moved_at=at,
                business_date=day,
                actor=actor,
            )
            cash, other = (
                (Side.DEBIT, Side.CREDIT)
                if direction is CashDirection.IN
                else (Side.CREDIT, Side.DEBIT)
            )
            entry = self.ledger.prepare_entry(
                effective_date=day,
                description=(
                    f"Shop cash {direction.value.lower()}, till {session.till_id}, "
                    f"session Z{session.z_number}: {cash_reason.name}"
                ),
                postings=[
                    Posting(policy.cash_account, cash, amount_cents),
                    Posting(cash_reason.account, other, amount_cents),
                ],
                cause=Cause(f"shop:cash:{movement_id}", actor),
            )
            return Decision((session, entry), session, {"session_id": str(session.id)})

        return execute_idempotent(
            self,
            key=key,
            operation="recordCashMovement",
            request={
                "session_id": str(session_id),
                "direction": direction.value,
                "amount": amount_cents,
                "reason": reason,
                "note": note,
                "actor": actor,
            },
            decide=decide,
            load_result=lambda ref: self.get_session(UUID(ref["session_id"])),
        )

    def close_session(
        self,
        *,
        key: str,
        actor: str,
        till_scope: str | None,
        session_id: UUID,
        counted_cash_cents: int,
        terminal_card_cents: int | None,
        at: datetime,
        denominations: Sequence[tuple[int, int]] | None = None,
    ) -> Outcome[CashSession]:
        """`denominations`: the count by coin and note, as (value in cents, how many)
        lines in the order entered, if the volunteer counted that way."""

        def decide() -> Decision[CashSession]:
            if counted_cash_cents < 0:
                raise ValidationError("countedCash", "must not be negative")
            # The card terminal's total may be negative (it refunded more than it
            # took: a card refund of an earlier session's sale). The bounds of both
            # depend on the session's expected figures: see CashSession.close.
            session = self.get_session(session_id)
            session.check_scope(till_scope)
            day = self._day(at)
            policy = self.policy_on(day)
            session.close(
                counted_cash_cents=counted_cash_cents,
                tolerance_cents=policy.z_tolerance_cents,
                closed_at=at,
                closed_by=actor,
                terminal_card_cents=terminal_card_cents,
                ceiling_cents=self.settings.amount_ceiling_cents,
                denominations=denominations,
            )
            till: Till = self.repository.get(till_aggregate_id(session.till_id))
            till.session_closed(session)
            aggregates: list[Aggregate] = [session, till]
            difference = session.difference_cents or 0
            if difference:
                cash, over_short = (
                    (Side.DEBIT, Side.CREDIT) if difference > 0 else (Side.CREDIT, Side.DEBIT)
                )
                aggregates.append(
                    self.ledger.prepare_entry(
                        effective_date=day,
                        description=(
                            f"Shop Z close, till {session.till_id}, Z{session.z_number}: cash "
                            f"{'over' if difference > 0 else 'short'}"
                        ),
                        postings=[
                            Posting(policy.cash_account, cash, abs(difference)),
                            Posting(policy.over_short_account, over_short, abs(difference)),
                        ],
                        cause=Cause(f"shop:z:{session.id}", actor),
                    )
                )
            return Decision(tuple(aggregates), session, {"session_id": str(session.id)})

        return execute_idempotent(
            self,
            key=key,
            operation="closeCashSession",
            request={
                "session_id": str(session_id),
                "counted": counted_cash_cents,
                "terminal": terminal_card_cents,
                "actor": actor,
                # Only when given, so that a close counted by total alone keeps the
                # fingerprint it had before the sheet was kept.
                **({} if denominations is None else {"denominations": list(denominations)}),
            },
            decide=decide,
            load_result=lambda ref: self.get_session(UUID(ref["session_id"])),
            # Releases before the sheet was kept checked it and fingerprinted the
            # close without it: a retry across the upgrade is the same request.
            earlier_requests=lambda: [
                {
                    "session_id": str(session_id),
                    "counted": counted_cash_cents,
                    "terminal": terminal_card_cents,
                    "actor": actor,
                }
            ],
        )

    # Donated goods -------------------------------------------------------------

    def record_intake(
        self,
        *,
        key: str,
        actor: str,
        received_on: date,
        category: str,
        bags: int,
        items: int,
        at: datetime,
    ) -> Outcome[GoodsIntake]:
        intake_id = id_for_key("intake", key)

        def decide() -> Decision[GoodsIntake]:
            intake = GoodsIntake.receive(
                intake_id=intake_id,
                today=self._day(at),
                policy=self.policy_on(received_on, field="receivedOn"),
                received_on=received_on,
                category=category,
                bags=bags,
                items=items,
                recorded_at=at,
                actor=actor,
            )
            return Decision((intake,), intake, {"intake_id": str(intake_id)})

        def load(ref: Mapping[str, str]) -> GoodsIntake:
            intake: GoodsIntake = self.repository.get(UUID(ref["intake_id"]))
            return intake

        return execute_idempotent(
            self,
            key=key,
            operation="recordGoodsIntake",
            request={
                "received_on": received_on.isoformat(),
                "category": category,
                "bags": bags,
                "items": items,
                "actor": actor,
            },
            decide=decide,
            load_result=load,
        )

    # Loading -------------------------------------------------------------------

    def get_session(self, session_id: UUID, *, fresh: bool = True) -> CashSession:
        """The session to decide on; `fresh=False`: as this process last saw it (see
        `_on_last_seen`)."""
        try:
            session: Aggregate = (
                self.repository.get(session_id) if fresh else self.last_seen_to_change(session_id)
            )
        except NOT_OURS:
            raise SessionNotFound(f"cash session {session_id} does not exist") from None
        if not isinstance(session, CashSession):
            raise SessionNotFound(f"cash session {session_id} does not exist")
        return session

    def get_sale(self, sale_id: UUID) -> Sale:
        return self.get_as(Sale, sale_id, SaleNotFound(f"sale {sale_id} does not exist"))

    def open_session_of(self, till_id: str) -> UUID | None:
        try:
            till: Till = self.repository.get(till_aggregate_id(till_id))
        except AggregateNotFoundError:
            return None
        return till.open_session_id

    def _day(self, at: datetime) -> date:
        if at.tzinfo is None:
            raise ValueError("command times carry an offset")  # a bug, not input
        return at.astimezone(self.settings.zone).date()
