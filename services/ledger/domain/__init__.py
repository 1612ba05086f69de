"""Ledger domain: pure Python, no I/O."""

from services.ledger.domain.accounts import (
    CHART_ID,
    DEFAULT_ACCOUNTS,
    KEPT_ACCOUNTS,
    Account,
    AccountType,
    ChartOfAccounts,
    KeptAccount,
)
from services.ledger.domain.errors import (
    AccountClosed,
    AccountKeptByContext,
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
    check_hand_postings,
    check_postings,
    entry_id_for_cause,
    kept_accounts_in,
    manual_cause_id,
)

__all__ = [
    "CHART_ID",
    "DEFAULT_ACCOUNTS",
    "KEPT_ACCOUNTS",
    "Account",
    "AccountClosed",
    "AccountKeptByContext",
    "AccountType",
    "Cause",
    "ChartOfAccounts",
    "EntryAlreadyReversed",
    "EntryNotFound",
    "JournalEntry",
    "KeptAccount",
    "LedgerLimits",
    "Posting",
    "Side",
    "UnbalancedEntry",
    "UnknownAccount",
    "check_hand_postings",
    "check_postings",
    "entry_id_for_cause",
    "kept_accounts_in",
    "manual_cause_id",
]
