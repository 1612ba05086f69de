"""Bounded contexts of the cooperative backend (ledger, hotel, shop, welfare fund)."""
