"""Ledger application service: load, call the aggregate, save. Nothing else."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, JSONTranscoder, Transcoding

from services.common.errors import Conflict, CoopError
from services.common.eventstore import CoopApplication, ReadGuard, eventsourcing_env, guard_read
from services.common.idempotency import (
    Decision,
    Outcome,
    execute_idempotent,
    ref_with_state,
    state_in_ref,
)
from services.common.settings import Settings
from services.ledger.domain import (
    ALWAYS_OPEN_ACCOUNTS,
    CHART_ID,
    DEFAULT_ACCOUNTS,
    KEPT_ACCOUNTS,
    Account,
    AccountKeptOpen,
    AccountType,
    AccrualsBehind,
    BooksClosing,
    Cause,
    ChartOfAccounts,
    EntryNotFound,
    JournalEntry,
    KeptAccount,
    LedgerLimits,
    Posting,
    check_entry_date,
    check_hand_postings,
    check_period_open,
    check_postings,
    entry_id_for_cause,
    kept_accounts_in,
    manual_cause_id,
)
from services.ledger.domain.facts import check_not_future
from services.ledger.domain.journal import ENTRY_DATE_FIELD, MANUAL_CAUSE_PREFIX


class AccountAsDict(Transcoding):
    """Chart snapshots hold Account values."""

    type = Account
    name = "ledger_account"

    def encode(self, obj: Account) -> dict[str, Any]:
        return {
            "code": obj.code,
            "name": obj.name,
            "type": obj.account_type.value,
            "open": obj.is_open,
        }

    def decode(self, data: dict[str, Any]) -> Account:
        return Account(data["code"], data["name"], AccountType(data["type"]), bool(data["open"]))


# What corrects each kind of business entry (by its cause id's pattern).
_CORRECTIONS = (
    (re.compile(r"^hotel:charge:"), "correct it there with voidCharge"),
    (re.compile(r"^shop:sale:"), "correct it there with refundSale"),
    (re.compile(r"^funding:donation:"), "correct it there with reverseDonation"),
    (
        re.compile(r"^funding:contract-invoice:[^:]+:payment:"),
        "correct it there with reverseContractPayment",
    ),
    (
        re.compile(r"^funding:grant:[^:]+:tranche:\d+:received"),
        "correct it there with reverseGrantTrancheReceipt",
    ),
    (re.compile(r"^welfare:payment:"), "correct it there with reverseDisbursementPayment"),
    # An accrual is the fund's share of income postings: a hand correction of 2400
    # would leave the fund's figures behind (and is refused, KEPT_ACCOUNTS).
    (
        re.compile(r"^welfare:accrual:"),
        "an accrual follows the income it was accrued on, and has no correcting command "
        "of its own: correct that income entry in its own context (a manual one is "
        "reversed here) and the fund accrues the difference by itself",
    ),
)


def correction_for(cause_id: str, kept: Sequence[KeptAccount] = ()) -> str:
    """What to do instead of reversing a business entry by hand; `kept`: the accounts
    of that entry a context keeps (no hand entry may correct those)."""
    for pattern, advice in _CORRECTIONS:
        if pattern.match(cause_id):
            return advice
    if kept:
        account = kept[0]
        return (
            f"its context has no correcting command for it, and account {account.code} "
            f"is kept by {account.kept_by}, so an entry by hand cannot correct it either: "
            f"{account.use_instead}"
        )
    return (
        "its context has no correcting command for it: post a correcting entry by hand "
        "and say why in its description"
    )


def limits_from(settings: Settings) -> LedgerLimits:
    return LedgerLimits(
        amount_ceiling_cents=settings.amount_ceiling_cents,
        max_description_length=settings.max_description_length,
        max_entry_lines=settings.max_entry_lines,
        max_account_code_length=settings.max_account_code_length,
        books_opened_on=settings.books_opened_on,
    )


@dataclass(frozen=True)
class ConfiguredAccounts:
    """What a context's configuration posts to (see `keep_open_while_configured`):
    each account with why, as of the configuration aggregate's `version`."""

    aggregate_id: UUID
    version: int
    reasons: Mapping[str, str]


class LedgerApplication(CoopApplication):
    # The chart is read on every posting and lives for years: snapshot it, and keep
    # it in the repository cache (fast-forwarded, so other processes' changes show).
    snapshotting_intervals: ClassVar[dict[type[Any], int]] = {ChartOfAccounts: 50}
    # Accounts only their contexts post to (KeptAccount): refused in entries by hand.
    kept_accounts: ClassVar[tuple[KeptAccount, ...]] = KEPT_ACCOUNTS

    def __init__(self, settings: Settings, *, create_table: bool = True) -> None:
        self.limits = limits_from(settings)
        # Accounts the contexts post to on their own (see `keep_open`), with why.
        self.accounts_kept_open: dict[str, str] = dict(ALWAYS_OPEN_ACCOUNTS)
        self._accounts_configured: list[Callable[[], ConfiguredAccounts | None]] = []
        super().__init__(settings, create_table=create_table)

    def keep_open(self, codes: Iterable[str], reason: str) -> None:
        """A context's commands post to these accounts on their own: closing one
        (which is for good) would refuse them from then on, naming a journal posting
        their callers never sent. Closing them is refused, saying why."""
        for code in codes:
            self.accounts_kept_open.setdefault(code, reason)

    def keep_open_while_configured(
        self, accounts_in_use: Callable[[], ConfiguredAccounts | None]
    ) -> None:
        """As `keep_open`, for accounts a context's configuration names (a VAT rate's
        account, a till's cash account): `accounts_in_use()` answers, when an account
        is to be closed, those the context may still post to, each with why (the
        versions in force on any day its facts can still be dated, and later ones), or
        None before the configuration exists. Once none of those names an account, it
        closes.

        The close is saved only if the configuration is still at the version read; a
        version set meanwhile is checked again (see `ReadGuard`). The context's own
        change guards on the chart the same way (`guard_on_chart`): of a close and a
        version naming the account, decided at once, exactly one is saved."""
        self._accounts_configured.append(accounts_in_use)

    def _configured_guard(
        self,
        code: str,
        accounts_in_use: Callable[[], ConfiguredAccounts | None],
        read: ConfiguredAccounts,
    ) -> ReadGuard:
        """The close of `code` holds while the configuration is at `read.version`; if it
        moved, while its newer versions do not post to `code` either."""

        def recheck() -> ReadGuard:
            configured = accounts_in_use()
            assert configured is not None  # it existed at the first read
            if code in configured.reasons:
                raise AccountKeptOpen("code", code, configured.reasons[code])
            return self._configured_guard(code, accounts_in_use, configured)

        return ReadGuard(read.aggregate_id, read.version, recheck)

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(AccountAsDict())

    def construct_env(self, name: str, env: Any = None) -> Any:
        merged = dict(env or eventsourcing_env(self.settings))
        merged.setdefault("AGGREGATE_CACHE_MAXSIZE", "256")
        return super().construct_env(name, merged)

    # Chart of accounts -------------------------------------------------------

    def ensure_chart(self) -> ChartOfAccounts:
        """Create the default chart on an empty store; a no-op afterwards."""
        try:
            return self.chart()
        except AggregateNotFoundError:
            pass
        chart = ChartOfAccounts.start()
        for code, name, account_type in DEFAULT_ACCOUNTS:
            chart.open_account(
                code, name, account_type, max_code_length=self.limits.max_account_code_length
            )
        with contextlib.suppress(IntegrityError):
            self.save(chart)  # a collision means another process created it first
        return self.chart()

    def chart(self, *, read_only: bool = False) -> ChartOfAccounts:
        """The chart; `read_only=True` skips the cache's defensive copy (measured: the
        copy was a third of a hotel command's time). Never change a read-only chart."""
        chart: ChartOfAccounts = self.repository.get(CHART_ID, deepcopy_from_cache=not read_only)
        return chart

    def open_account(
        self, *, key: str, actor: str, code: str, name: str, account_type: AccountType
    ) -> Outcome[Account]:
        def decide() -> Decision[Account]:
            chart = self.chart()
            chart.open_account(
                code, name, account_type, max_code_length=self.limits.max_account_code_length
            )
            return Decision((chart,), chart.accounts[code], {"code": code})

        return execute_idempotent(
            self,
            key=key,
            operation="openAccount",
            request={"code": code, "name": name, "type": account_type.value, "actor": actor},
            decide=decide,
            load_result=self._load_account,
        )

    def close_account(self, *, key: str, actor: str, code: str) -> Outcome[Account]:
        def decide() -> Decision[Account]:
            chart = self.chart()
            kept_open = dict(self.accounts_kept_open)
            configured = [(provider, provider()) for provider in self._accounts_configured]
            for _provider, read in configured:
                for in_use, reason in read.reasons.items() if read else ():
                    kept_open.setdefault(in_use, reason)
            chart.close_account(code, kept_open=kept_open)
            for provider, read in configured:
                if read is not None:
                    guard_read(chart, self._configured_guard(code, provider, read))
            return Decision((chart,), chart.accounts[code], {"code": code})

        return execute_idempotent(
            self,
            key=key,
            operation="closeAccount",
            request={"code": code, "actor": actor},
            decide=decide,
            load_result=self._load_account,
        )

    def _load_account(self, ref: Mapping[str, str]) -> Account:
        return self.chart(read_only=True).accounts[ref["code"]]

    # Closing the books ---------------------------------------------------------

    def close_books(
        self, *, key: str, actor: str, through: date, accruals_settled: bool = True
    ) -> Outcome[BooksClosing]:
        """Close the books through `through` (see ChartOfAccounts.close_books).
        `accruals_settled`: whether the welfare fund has accrued every income entry
        saved so far (the gateway waits for it); if not, the close is refused, but a
        retry of a close that was done answers it."""

        def decide() -> Decision[BooksClosing]:
            if not accruals_settled:
                raise AccrualsBehind()
            chart = self.chart()
            chart.close_books(
                through,
                actor=actor,
                today=self.today(),
                books_opened_on=self.limits.books_opened_on,
            )
            closing = chart.closing
            assert closing is not None
            # A retry answers with this closing, not with a later one.
            ref = ref_with_state(
                {"through": through.isoformat()},
                {
                    "through": closing.through.isoformat(),
                    "closed_by": closing.closed_by,
                    "closed_at": closing.closed_at.isoformat(),
                },
            )
            return Decision((chart,), closing, ref)

        return execute_idempotent(
            self,
            key=key,
            operation="closeBooks",
            request={"through": through.isoformat(), "actor": actor},
            decide=decide,
            load_result=_load_closing,
        )

    def books_closing(self) -> BooksClosing | None:
        """The books' current closing (None if they were never closed)."""
        return self.chart(read_only=True).closing

    # Journal -----------------------------------------------------------------

    def prepare_reversal(
        self, entry_id: UUID, *, effective_date: date, description: str, actor: str
    ) -> tuple[JournalEntry, JournalEntry]:
        """The entry and its reversal, for the context that posted it to save together
        with its own correction (a void, a donation or a payment reversed): the
        original records that it is reversed, so a second reversal collides."""
        original = self.get_entry(entry_id)
        return original, self._reversal(original, effective_date, description, actor)

    def _reversal(
        self, original: JournalEntry, effective_date: date, description: str, actor: str
    ) -> JournalEntry:
        """`original.reverse(...)` on the chart as last seen, under a read guard (as
        `prepare_entry`): a reversal saved after a close it did not see is re-checked."""
        return self._on_chart(
            lambda chart: original.reverse(
                chart=chart,
                effective_date=effective_date,
                description=description,
                actor=actor,
                limits=self.limits,
            ),
            lambda chart: check_period_open(effective_date, chart, field=ENTRY_DATE_FIELD),
        )

    def prepare_entry(
        self,
        *,
        effective_date: date,
        description: str,
        postings: Sequence[Posting],
        cause: Cause,
        correcting: frozenset[str] = frozenset(),
    ) -> JournalEntry:
        """A validated entry for another context to save together with its own events.

        It is validated against the cached chart, without asking the store whether the
        chart moved on (that query was a quarter of a posting's time); its save checks
        that instead, in the write transaction (ReadGuard), and re-validates if it did.
        `correcting`: see `check_postings`.
        """

        def post_on(chart: ChartOfAccounts) -> JournalEntry:
            return JournalEntry.post(
                chart=chart,
                effective_date=effective_date,
                description=description,
                postings=postings,
                cause=cause,
                limits=self.limits,
                correcting=correcting,
            )

        checked_postings = tuple(postings)

        def still_valid(chart: ChartOfAccounts) -> None:
            check_entry_date(chart, effective_date, cause.cause_id, self.limits)
            check_postings(chart, checked_postings, self.limits, correcting=correcting)

        return self._on_chart(post_on, still_valid)

    def _on_chart(
        self,
        decide: Callable[[ChartOfAccounts], JournalEntry],
        still_valid: Callable[[ChartOfAccounts], None],
    ) -> JournalEntry:
        """`decide` on the cached chart, its save guarded by the chart's version;
        `still_valid` re-runs what depended on the chart if another process changed
        it before the save (an account closed, the books closed)."""
        chart = self._cached_chart()
        try:
            entry = decide(chart)
        except CoopError:
            # The cached chart may predate an account opened (or reopened) elsewhere:
            # refuse only what the current chart refuses.
            chart = self.chart(read_only=True)
            entry = decide(chart)
        guard_read(entry, self._chart_guard(chart.version, still_valid))
        return entry

    def guard_on_chart(
        self, aggregate: Aggregate, still_valid: Callable[[ChartOfAccounts], None]
    ) -> None:
        """Check `still_valid` (a configuration's accounts are open) on the current
        chart, and save `aggregate` only if the chart has not changed since, or if
        `still_valid` holds on the chart it changed to (see `ReadGuard`). With the
        guard a close takes (`keep_open_while_configured`), of a version naming an
        account and the account's close, decided at once, exactly one is saved."""
        chart = self.chart(read_only=True)
        still_valid(chart)
        guard_read(aggregate, self._chart_guard(chart.version, still_valid))

    def guard_period_open(self, aggregate: Aggregate, day: date) -> None:
        """A fact dated `day` that posts nothing this time but is one of the money
        facts the close covers (a grant cut that recognised nothing yet): refused if
        the books are closed through `day`, and its save (that of `aggregate`) refused
        if a close saved meanwhile covers it, as an entry's would be."""

        def still_valid(chart: ChartOfAccounts) -> None:
            check_period_open(day, chart, field=ENTRY_DATE_FIELD)

        # A close is never undone: a closed day in the cache is closed.
        chart = self._cached_chart()
        still_valid(chart)
        guard_read(aggregate, self._chart_guard(chart.version, still_valid))

    def _cached_chart(self) -> ChartOfAccounts:
        """The chart as this process last saw it (no query when it is cached)."""
        chart = self.as_last_seen(CHART_ID)
        assert isinstance(chart, ChartOfAccounts)
        return chart

    def _chart_guard(
        self, chart_version: int, still_valid: Callable[[ChartOfAccounts], None]
    ) -> ReadGuard:
        def recheck() -> ReadGuard:
            chart = self.chart(read_only=True)  # fast-forwards the cached chart
            still_valid(chart)
            return self._chart_guard(chart.version, still_valid)

        return ReadGuard(CHART_ID, chart_version, recheck)

    def post_entry(
        self,
        *,
        key: str,
        actor: str,
        effective_date: date,
        description: str,
        postings: Sequence[Posting],
        cause_id: str | None = None,
    ) -> Outcome[JournalEntry]:
        """Post an entry by hand. The cause defaults to the idempotency key (a manual
        entry). Contexts post through `prepare_entry` instead: only they may touch the
        accounts they keep (`kept_accounts`)."""
        cause = Cause(cause_id or manual_cause_id(key), actor)

        def decide() -> Decision[JournalEntry]:
            check_hand_postings(postings, self.kept_accounts)
            # A year typed wrong the other way (2031): only another 2031 entry could
            # have reversed it. Every other context refuses the future already.
            check_not_future(effective_date, self.today(), field="effectiveDate", what="an entry")
            entry = self.prepare_entry(
                effective_date=effective_date,
                description=description,
                postings=postings,
                cause=cause,
            )
            return Decision((entry,), entry, {"entry_id": str(entry.id)})

        def already_posted() -> Outcome[JournalEntry] | None:
            # One cause posts at most once: the original entry is the answer.
            try:
                original = self.get_entry(entry_id_for_cause(cause.cause_id))
            except EntryNotFound:
                return None
            head = self.recorder.max_notification_id() or 0
            return Outcome(result=original, position=head, replayed=True)

        return execute_idempotent(
            self,
            key=key,
            operation="postJournalEntry",
            request={
                "effective_date": effective_date.isoformat(),
                "description": description,
                "postings": [p.as_state() for p in postings],
                "cause_id": cause.cause_id,
                "actor": actor,
            },
            decide=decide,
            load_result=self._load_entry,
            on_collision=already_posted,
        )

    def reverse_entry(
        self,
        *,
        key: str,
        actor: str,
        entry_id: UUID,
        effective_date: date,
        description: str,
    ) -> Outcome[JournalEntry]:
        def decide() -> Decision[JournalEntry]:
            check_not_future(effective_date, self.today(), field="effectiveDate", what="a reversal")
            original = self.get_entry(entry_id)
            business = not original.cause_id.startswith(MANUAL_CAUSE_PREFIX)
            if business and original.reverses_entry_id is None:
                # A hotel charge, a sale, a grant tranche, an accrual: reversing it here
                # would leave its context's records saying otherwise.
                context = original.cause_id.split(":", 1)[0]
                kept = [a for _, a in kept_accounts_in(original.postings, self.kept_accounts)]
                raise Conflict(
                    f"entry {entry_id} was posted by {context}, not by hand; "
                    f"{correction_for(original.cause_id, kept)}"
                )
            # A manual entry on a kept account (posted before such entries were
            # refused) may still be reversed: that puts the account back in step.
            reversal = self._reversal(original, effective_date, description, actor)
            return Decision((original, reversal), reversal, {"entry_id": str(reversal.id)})

        return execute_idempotent(
            self,
            key=key,
            operation="reverseJournalEntry",
            request={
                "entry_id": str(entry_id),
                "effective_date": effective_date.isoformat(),
                "description": description,
                "actor": actor,
            },
            decide=decide,
            load_result=self._load_entry,
        )

    def get_entry(self, entry_id: UUID) -> JournalEntry:
        return self.get_as(
            JournalEntry, entry_id, EntryNotFound(f"journal entry {entry_id} does not exist")
        )

    def _load_entry(self, ref: Mapping[str, str]) -> JournalEntry:
        return self.get_entry(UUID(ref["entry_id"]))


def _load_closing(ref: Mapping[str, str]) -> BooksClosing:
    state = state_in_ref(ref)
    assert state is not None  # closeBooks always stores its closing
    return BooksClosing(
        through=date.fromisoformat(state["through"]),
        closed_by=state["closed_by"],
        closed_at=datetime.fromisoformat(state["closed_at"]),
    )
