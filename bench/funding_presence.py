"""Figures, not a test: presence records and a monthly invoice through the funding service.

    python -m bench.funding_presence            # SQLite in a temporary directory
    COOP_DATABASE_URL=postgresql://... python -m bench.funding_presence

Records a year of daily presence for one contract (one command per day, as the front
office does), then invoices each month; prints commands per second.
"""

from __future__ import annotations

import os
import tempfile
import time
from datetime import date, timedelta

from services.common.settings import Settings
from services.ledger.application import LedgerApplication
from services.ledger.domain.contracts import Address, PassThroughItem
from services.ledger.funding import FundingApplication

YEAR = 2024  # a leap year: 366 presence days


def main() -> None:
    url = os.environ.get("COOP_DATABASE_URL") or (
        f"sqlite:///{tempfile.mkdtemp(prefix='coop-bench-')}/bench.db"
    )
    settings = Settings(database_url=url)
    ledger = LedgerApplication(settings)
    ledger.ensure_chart()
    funding = FundingApplication(settings, ledger)
    run = f"bench-{time.time_ns()}"
    funding.set_invoicing_profile(
        key=f"{run}:profile",
        actor="bench",
        name="K-Pax",
        vat_number="03012345678",
        tax_code=None,
        tax_regime="RF01",
        address=Address("Via Mazzini 12", "25043", "Breno", "BS"),
        iban=None,
    )
    cig = f"B{time.time_ns() % 10**9:09d}"
    contract = funding.register_contract(
        key=f"{run}:contract",
        actor="bench",
        authority="Prefettura di Brescia",
        authority_tax_code="80012345676",
        authority_office_code="UFA7KD",
        authority_address=Address("Piazza Paolo VI 16", "25121", "Brescia", "BS"),
        cig=cig,
        agreement_reference=None,
        daily_rate_cents=2900,
        vat_rate_bp=500,
        vat_nature=None,
        split_payment=True,
        capacity=20,
        starts_on=date(YEAR, 1, 1),
        ends_on=None,
        pass_through_items=[PassThroughItem("Pocket money", 250)],
    ).result
    started = time.perf_counter()
    day = date(YEAR, 1, 1)
    count = 0
    while day.year == YEAR:
        funding.record_presence(
            key=f"{run}:{day}", actor="bench", contract_id=contract.id, day=day, persons_present=14
        )
        day += timedelta(days=1)
        count += 1
    presence_s = time.perf_counter() - started
    started = time.perf_counter()
    for month in range(1, 13):
        funding.invoice_contract(
            key=f"{run}:invoice:{month}",
            actor="bench",
            contract_id=contract.id,
            month=f"{YEAR}-{month:02d}",
            issued_on=date(YEAR + 1, 1, 10),
        )
    invoice_s = time.perf_counter() - started
    print(f"{count} presence records: {count / presence_s:.0f}/s ({presence_s:.2f}s)")
    print(f"12 monthly invoices: {12 / invoice_s:.0f}/s ({invoice_s:.2f}s)")
    funding.close()
    ledger.close()


if __name__ == "__main__":
    main()
