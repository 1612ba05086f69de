"""Ledger domain: pure Python, no I/O."""

from services.ledger.domain.accounts import (
    CHART_ID,
    DEFAULT_ACCOUNTS,
    Account,
    AccountType,
    ChartOfAccounts,
)
from services.ledger.domain.errors import (
    AccountClosed,
    EntryAlreadyReversed,
    EntryNotFound,
    UnbalancedEntry,
    UnknownAccount,
)
from services.ledger.domain.journal import (
    Cause,
    JournalEntry,
    LedgerLimits,
    Posting,
    Side,
    check_postings,
    entry_id_for_cause,
    manual_cause_id,
)

__all__ = [
    "CHART_ID",
    "DEFAULT_ACCOUNTS",
    "Account",
    "AccountClosed",
    "AccountType",
    "Cause",
    "ChartOfAccounts",
    "EntryAlreadyReversed",
    "EntryNotFound",
    "JournalEntry",
    "LedgerLimits",
    "Posting",
    "Side",
    "UnbalancedEntry",
    "UnknownAccount",
    "check_postings",
    "entry_id_for_cause",
    "manual_cause_id",
]
