"""Ledger read models: accounts, journal, current and daily balances."""
