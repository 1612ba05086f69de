"""The ledger: chart of accounts, double-entry journal, and (issue 5) grants and contracts."""
