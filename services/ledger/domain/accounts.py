"""Chart of accounts: one long-lived aggregate (snapshotted), a few dozen accounts."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate

from services.common.errors import Conflict, NotFound, ValidationError
from services.ledger.domain.errors import AccountClosed, AccountKeptOpen, UnknownAccount

CHART_ID: UUID = uuid5(NAMESPACE_URL, "urn:coop:ledger:chart-of-accounts")

_CODE_PATTERN = re.compile(r"^[0-9A-Z][0-9A-Z.\-]*$")
MAX_ACCOUNT_NAME_LENGTH = 120


class AccountType(StrEnum):
    ASSET = "asset"
    LIABILITY = "liability"
    NET_ASSETS = "net_assets"
    REVENUE = "revenue"
    EXPENSE = "expense"

    @property
    def is_debit_normal(self) -> bool:
        """Assets and expenses grow with debits; the rest grow with credits."""
        return self in (AccountType.ASSET, AccountType.EXPENSE)


@dataclass(frozen=True)
class Account:
    code: str
    name: str
    account_type: AccountType
    is_open: bool = True


# The cooperative's default chart. Codes group by type (1 assets, 2 liabilities,
# 3 net assets, 4 revenue, 5 expenses); more accounts are opened through the ledger.
DEFAULT_ACCOUNTS: tuple[tuple[str, str, AccountType], ...] = (
    ("1000", "Cash on hand (tills and front desk)", AccountType.ASSET),
    ("1010", "Bank", AccountType.ASSET),
    ("1020", "Card clearing", AccountType.ASSET),
    ("1100", "Guest receivables", AccountType.ASSET),
    ("1110", "Receivables from public bodies", AccountType.ASSET),
    ("1120", "Grants receivable", AccountType.ASSET),
    ("1130", "Other receivables", AccountType.ASSET),
    ("2000", "VAT payable 22%", AccountType.LIABILITY),
    ("2010", "VAT payable 10%", AccountType.LIABILITY),
    ("2020", "VAT payable 5%", AccountType.LIABILITY),
    ("2100", "Tourist tax payable to the municipality", AccountType.LIABILITY),
    ("2110", "Stamp duty payable to the State (imposta di bollo)", AccountType.LIABILITY),
    ("2200", "Guest deposits held", AccountType.LIABILITY),
    ("2300", "Refundable grant advances", AccountType.LIABILITY),
    ("2400", "Welfare fund payable", AccountType.LIABILITY),
    ("2500", "Pass-through items payable (pocket money)", AccountType.LIABILITY),
    ("2600", "Trade payables", AccountType.LIABILITY),
    ("3000", "Unrestricted net assets", AccountType.NET_ASSETS),
    ("3100", "Restricted funds", AccountType.NET_ASSETS),
    ("3200", "Legal reserve (indivisible)", AccountType.NET_ASSETS),
    ("4000", "Hotel revenue: rooms", AccountType.REVENUE),
    ("4010", "Hotel revenue: food and beverage", AccountType.REVENUE),
    ("4020", "Hotel revenue: other services", AccountType.REVENUE),
    ("4030", "Hotel revenue: retained deposits and no-show penalties", AccountType.REVENUE),
    ("4100", "Shop revenue", AccountType.REVENUE),
    ("4200", "Grant revenue: unrestricted", AccountType.REVENUE),
    ("4210", "Grant revenue: restricted", AccountType.REVENUE),
    ("4300", "Reception contract revenue", AccountType.REVENUE),
    ("4400", "Donations: unrestricted", AccountType.REVENUE),
    ("4410", "Donations: restricted", AccountType.REVENUE),
    ("5000", "Welfare fund contribution", AccountType.EXPENSE),
    ("5100", "Cash over and short", AccountType.EXPENSE),
    ("5200", "Supplies", AccountType.EXPENSE),
    ("5300", "Staff and internship costs", AccountType.EXPENSE),
    ("5400", "Rent and utilities", AccountType.EXPENSE),
    ("5500", "Taxes and duties: stamp duty (imposta di bollo)", AccountType.EXPENSE),
    ("5900", "Bank and card fees", AccountType.EXPENSE),
)


# The welfare fund accrues its share of every income entry as Dr contribution /
# Cr payable (welfare_fund.md), and pays out of the payable.
WELFARE_FUND_PAYABLE_ACCOUNT = "2400"
WELFARE_FUND_CONTRIBUTION_ACCOUNT = "5000"

# The chart's class of revenue accounts (see `ChartOfAccounts.open_account`).
REVENUE_CLASS = "4"

# Accounts a process posts to on its own, following the log: were one closed, the
# process's next entry would be refused and the projections would stop behind it.
ALWAYS_OPEN_ACCOUNTS: dict[str, str] = {
    WELFARE_FUND_PAYABLE_ACCOUNT: "the welfare fund accrues its share of income to it",
    WELFARE_FUND_CONTRIBUTION_ACCOUNT: "the welfare fund accrues its share of income to it",
}


@dataclass(frozen=True)
class KeptAccount:
    """An account a context keeps in step with its own records: its balance is, at any
    date, a figure that context reports. Only that context's commands post to it; a
    hand posting (`postJournalEntry`) would move the balance without the figure, and
    nothing would ever bring them back together."""

    code: str
    kept_by: str  # the context, as users know it
    figure: str  # what the balance equals
    use_instead: str  # the commands that post to it


# Only accounts whose docs state such an invariant. Not kept (hand entries are how
# they are settled or corrected): VAT and tourist tax payable (paid by hand), cash,
# bank and card clearing, guest receivables and deposits (their invariants are per
# booking, not per account), pass-through items payable (paid out by hand, funding.md),
# and the public bodies' receivables (1110): the contracts report's outstanding equals
# it, but with no credit notes yet a hand entry is the only way to correct a wrong
# invoice or write off a bad debt, and refusing it would leave no way at all.
KEPT_ACCOUNTS: tuple[KeptAccount, ...] = (
    KeptAccount(
        WELFARE_FUND_PAYABLE_ACCOUNT,
        "the welfare fund",
        "accrued minus paid (welfare_fund.md)",
        "accruals follow the income postings, so correct the income and the fund accrues "
        "the difference; payments are payDisbursement and reverseDisbursementPayment",
    ),
)


@dataclass(frozen=True)
class BooksClosing:
    """The books are closed through `through`: no entry is dated on or before it."""

    through: date
    closed_by: str
    closed_at: datetime


def check_account_code(code: str, *, field: str, max_length: int) -> None:
    if not code:
        raise ValidationError(field, "account code must not be empty")
    if len(code) > max_length:
        raise ValidationError(field, f"account code must be at most {max_length} characters")
    if not _CODE_PATTERN.fullmatch(code):
        raise ValidationError(field, "account code uses digits, capital letters, '.' and '-'")


class ChartOfAccounts(Aggregate):
    class Created(Aggregate.Created):
        pass

    class AccountOpened(Aggregate.Event):
        code: str
        name: str
        account_type: str

        def apply(self, aggregate: Any) -> None:
            assert isinstance(aggregate, ChartOfAccounts)
            aggregate.accounts[self.code] = Account(
                self.code, self.name, AccountType(self.account_type)
            )

    class AccountClosedEvent(Aggregate.Event):
        code: str

        def apply(self, aggregate: Any) -> None:
            assert isinstance(aggregate, ChartOfAccounts)
            account = aggregate.accounts[self.code]
            aggregate.accounts[self.code] = Account(
                account.code, account.name, account.account_type, is_open=False
            )

    class BooksClosed(Aggregate.Event):
        # On the chart because every posting reads the chart already (from the cache,
        # its version checked in the write transaction): the close costs postings
        # nothing, and a posting racing it either lands before it or is re-checked.
        through: date
        actor: str

        def apply(self, aggregate: Any) -> None:
            assert isinstance(aggregate, ChartOfAccounts)
            aggregate.closing_state = (self.through, self.actor, self.timestamp)

    # (through, by, at), plain values so that snapshots transcode it. A class
    # attribute, not set in __init__: charts (and their snapshots) from before closing
    # existed have no such attribute of their own and read this default.
    closing_state: tuple[date, str, datetime] | None = None

    def __init__(self) -> None:
        self.accounts: dict[str, Account] = {}

    @classmethod
    def start(cls) -> ChartOfAccounts:
        return cls._create(cls.Created, id=CHART_ID)

    def open_account(
        self, code: str, name: str, account_type: AccountType, *, max_code_length: int
    ) -> None:
        check_account_code(code, field="code", max_length=max_code_length)
        name = name.strip()
        if not name:
            raise ValidationError("name", "must not be empty")
        if len(name) > MAX_ACCOUNT_NAME_LENGTH:
            raise ValidationError("name", f"must be at most {MAX_ACCOUNT_NAME_LENGTH} characters")
        if code in self.accounts:
            raise Conflict(f"account {code!r} already exists")
        # Class 4 is revenue, and only revenue: the welfare fund's base is the income
        # of class-4 accounts (its policies map prefixes of them). An expense opened
        # as 4190 would have cut the base; revenue opened as 7110 was never in it.
        if (account_type is AccountType.REVENUE) != code.startswith(REVENUE_CLASS):
            raise ValidationError(
                "type" if code.startswith(REVENUE_CLASS) else "code",
                f"revenue accounts are class {REVENUE_CLASS} of the chart (their code "
                f"starts with {REVENUE_CLASS}) and class {REVENUE_CLASS} holds revenue only: "
                "the welfare fund's share is of class-4 income",
            )
        self.trigger_event(
            self.AccountOpened, code=code, name=name, account_type=account_type.value
        )

    def close_account(
        self, code: str, *, kept_open: Mapping[str, str] = ALWAYS_OPEN_ACCOUNTS
    ) -> None:
        """`kept_open`: the accounts the contexts post to on their own, each with why
        (a closed account is never opened again: their commands would stop for good)."""
        account = self.accounts.get(code)
        if account is None:
            # The account is the command's subject, not one of its values (as a
            # posting's account is): NOT_FOUND, as accountBalance(code) answers.
            raise NotFound(f"account {code!r} does not exist")
        if not account.is_open:
            raise AccountClosed("code", code)
        if code in kept_open:
            raise AccountKeptOpen("code", code, kept_open[code])
        self.trigger_event(self.AccountClosedEvent, code=code)

    @property
    def closed_through(self) -> date | None:
        """The last day of the closed period, or None while the books were never closed."""
        return None if self.closing_state is None else self.closing_state[0]

    @property
    def closing(self) -> BooksClosing | None:
        return None if self.closing_state is None else BooksClosing(*self.closing_state)

    def close_books(self, through: date, *, actor: str, today: date, books_opened_on: date) -> None:
        """Close the books through `through`: from then on no entry is dated on or
        before it. Only forward, only a period that has ended; never reopened (its
        figures were filed: VAT returns, the approved accounts)."""
        if through >= today:
            raise ValidationError(
                "through",
                f"only a period that has ended can be closed: close through "
                f"{(today - timedelta(days=1)).isoformat()} at the latest",
            )
        if through < books_opened_on:
            raise ValidationError(
                "through",
                f"is before the books opened ({books_opened_on.isoformat()}, COOP_BOOKS_OPENED_ON)",
            )
        current = self.closed_through
        if current is not None and through <= current:
            raise ValidationError(
                "through",
                f"the books are already closed through {current.isoformat()}; a close "
                f"moves forward only: close through a day after {current.isoformat()}",
            )
        self.trigger_event(self.BooksClosed, through=through, actor=actor)

    def postable(self, code: str, *, field: str, correcting: bool = False) -> Account:
        """The account, if an entry may post to it. `correcting`: the posting undoes
        one of an earlier entry (a refund of a sale to the sale's own accounts), which
        a closed account still takes, as it takes a reversal: a correction must always
        be possible."""
        account = self.accounts.get(code)
        if account is None:
            raise UnknownAccount(field, code)
        if not account.is_open and not correcting:
            raise AccountClosed(field, code)
        return account
