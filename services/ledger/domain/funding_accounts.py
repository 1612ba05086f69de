"""Which accounts of the default chart the funding facts post to.

One place, so a cooperative with another chart changes a mapping, not the rules.
"""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class FundingAccounts:
    cash: str = "1000"
    bank: str = "1010"
    public_body_receivables: str = "1110"
    grants_receivable: str = "1120"
    refundable_grant_advances: str = "2300"
    pass_through_payable: str = "2500"
    grant_revenue_unrestricted: str = "4200"
    grant_revenue_restricted: str = "4210"
    contract_revenue: str = "4300"
    donations_unrestricted: str = "4400"
    donations_restricted: str = "4410"
    # Stamp duty (imposta di bollo) on contract invoices: the cooperative's cost, owed
    # to the State until paid (quarterly, F24).
    stamp_duty_expense: str = "5500"
    stamp_duty_payable: str = "2110"
    # VAT payable per rate in basis points; a contract at a rate without an account
    # here is refused at registration, so an invoice can always post.
    vat_payable_by_rate_bp: tuple[tuple[int, str], ...] = (
        (500, "2020"),
        (1000, "2010"),
        (2200, "2000"),
    )

    def grant_revenue(self, *, restricted: bool) -> str:
        return self.grant_revenue_restricted if restricted else self.grant_revenue_unrestricted

    def donations(self, *, restricted: bool) -> str:
        return self.donations_restricted if restricted else self.donations_unrestricted

    def vat_payable(self, rate_bp: int) -> str | None:
        return dict(self.vat_payable_by_rate_bp).get(rate_bp)

    def codes(self) -> frozenset[str]:
        """Every account the funding commands post to."""
        named = {
            getattr(self, f.name) for f in fields(self) if isinstance(getattr(self, f.name), str)
        }
        return frozenset(named | {code for _rate, code in self.vat_payable_by_rate_bp})


DEFAULT_FUNDING_ACCOUNTS = FundingAccounts()
