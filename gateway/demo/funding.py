"""Demo year of grants, donations and the reception contract, through the funding services.

- a restricted foundation grant in two tranches: the first paid in March before its
  condition (an advance), recognised when the interim report is accepted in June;
  the second expected the next year;
- a municipal grant (public: it counts for the 30 June publication duty);
- bank donations on random days, clothes given in kind, volunteer shifts at the shop;
- a reception contract with the Prefecture: presence recorded every day (a correction
  on the 10th of each month), invoiced on the next month's first day, paid about 45 days later.
Figures that are contract terms or fair values (rates, pocket money, hourly value) are
the demo's inputs here, as a user would type them.
"""

from __future__ import annotations

import calendar
import random
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID

from gateway.demo.steps import DEMO_ACTOR, DemoStep, days_of
from services.common.idempotency import Outcome
from services.ledger.domain.contracts import (
    Address,
    PassThroughItem,
    contract_id_for,
    invoice_id_for,
)
from services.ledger.domain.donations import DonationMethod
from services.ledger.domain.grants import TrancheTerms, grant_id_for

if TYPE_CHECKING:
    from gateway.runtime import Runtime

CONTRACT_VAT_BP = 500
CONTRACT_DAILY_RATE_CENTS = 2900
POCKET_MONEY_PER_PERSON_DAY_CENTS = 250
CONTRACT_CAPACITY = 16
VOLUNTEER_HOURLY_FAIR_VALUE_CENTS = 1500


def _step(day: date, command: Callable[[Runtime], Outcome[Any]]) -> DemoStep:
    def run(runtime: Runtime) -> bool:
        if day > runtime.funding.today():
            return False  # the demo never records the future (the services refuse it)
        return not command(runtime).replayed

    return DemoStep(day, run)


def steps(year: int, rng: random.Random) -> Iterator[DemoStep]:
    yield from _grants(year)
    for today in days_of(year):
        if rng.random() < 0.08:
            yield _donation(today, rng.choice((2000, 5000, 10000, 25000)))
        if today.weekday() == 5:  # Saturday shifts stand for the week's (keeps the demo quick)
            yield _volunteer_shifts(today, rng.randint(6, 12) * 60)
        if today.day == 5 and today.month in (3, 10, 11):
            yield _clothes_in_kind(today)
    yield from _contract(year, rng)


def _donation(today: date, amount_cents: int) -> DemoStep:
    return _step(
        today,
        lambda rt: rt.funding.record_donation(
            key=f"demo:{today}:donation",
            actor=DEMO_ACTOR,
            amount_cents=amount_cents,
            restricted=False,
            method=DonationMethod.BANK,
            donor=None,
            purpose=None,
            received_on=today,
        ),
    )


def _volunteer_shifts(today: date, minutes: int) -> DemoStep:
    return _step(
        today,
        lambda rt: rt.funding.record_volunteer_time(
            key=f"demo:{today}:volunteer-shifts",
            actor=DEMO_ACTOR,
            activity="Charity shop shifts",
            minutes=minutes,
            hourly_fair_value_cents=VOLUNTEER_HOURLY_FAIR_VALUE_CENTS,
            worked_on=today,
        ),
    )


def _clothes_in_kind(today: date) -> DemoStep:
    return _step(
        today,
        lambda rt: rt.funding.record_in_kind_donation(
            key=f"demo:{today}:clothes-in-kind",
            actor=DEMO_ACTOR,
            description="Donated clothes and shoes for the charity shop",
            fair_value_cents=45_000,
            restricted=False,
            donor=None,
            received_on=today,
        ),
    )


def _grants(year: int) -> Iterator[DemoStep]:
    foundation_key = f"demo:{year}:grant:foundation"
    foundation = grant_id_for(foundation_key)
    yield _step(
        date(year, 1, 20),
        lambda rt: rt.funding.award_grant(
            key=foundation_key,
            actor=DEMO_ACTOR,
            funder="Fondazione della Comunità Bresciana",
            purpose="Internships for women at risk of social exclusion",
            amount_cents=3_000_000,
            restricted=True,
            public_funder=False,
            awarded_on=date(year, 1, 20),
            tranches=[
                TrancheTerms(1_500_000, "Interim report accepted", date(year, 3, 15)),
                TrancheTerms(1_500_000, "Final report approved", date(year + 1, 3, 31)),
            ],
        ),
    )
    yield _step(
        date(year, 3, 15),
        lambda rt: rt.funding.receive_grant_tranche(
            key=f"{foundation_key}:tranche-1",
            actor=DEMO_ACTOR,
            grant_id=foundation,
            tranche=1,
            received_on=date(year, 3, 15),
        ),
    )
    yield _step(
        date(year, 6, 30),
        lambda rt: rt.funding.meet_grant_condition(
            key=f"{foundation_key}:condition-1",
            actor=DEMO_ACTOR,
            grant_id=foundation,
            tranche=1,
            met_on=date(year, 6, 30),
        ),
    )
    town_key = f"demo:{year}:grant:municipality"
    town = grant_id_for(town_key)
    yield _step(
        date(year, 2, 10),
        lambda rt: rt.funding.award_grant(
            key=town_key,
            actor=DEMO_ACTOR,
            funder="Comune di Breno",
            purpose="Work integration at the charity shop",
            amount_cents=1_200_000,
            restricted=False,
            public_funder=True,
            awarded_on=date(year, 2, 10),
            tranches=[TrancheTerms(1_200_000, "Activity report filed", date(year, 9, 30))],
        ),
    )
    yield _step(
        date(year, 9, 15),
        lambda rt: rt.funding.meet_grant_condition(
            key=f"{town_key}:condition-1",
            actor=DEMO_ACTOR,
            grant_id=town,
            tranche=1,
            met_on=date(year, 9, 15),
        ),
    )
    yield _step(
        date(year, 10, 20),
        lambda rt: rt.funding.receive_grant_tranche(
            key=f"{town_key}:tranche-1",
            actor=DEMO_ACTOR,
            grant_id=town,
            tranche=1,
            received_on=date(year, 10, 20),
        ),
    )


def _contract(year: int, rng: random.Random) -> Iterator[DemoStep]:
    # A CIG is 10 capital letters or digits; one demo contract per year.
    cig = f"D{year}CAS00"
    contract = contract_id_for(cig)
    yield _step(
        date(year, 1, 1),
        lambda rt: rt.funding.set_invoicing_profile(
            key="demo:invoicing-profile",
            actor=DEMO_ACTOR,
            name="K-Pax Cooperativa Sociale Onlus",
            vat_number="03012345678",
            tax_code=None,
            tax_regime="RF01",
            address=Address("Via Mazzini 12", "25043", "Breno", "BS"),
            iban="IT60X0542811101000000123456",
        ),
    )
    yield _step(
        date(year, 1, 1),
        lambda rt: rt.funding.register_contract(
            key=f"demo:{year}:contract",
            actor=DEMO_ACTOR,
            authority="Prefettura di Brescia",
            authority_tax_code="80012345676",
            authority_office_code="UFA7KD",
            authority_address=Address("Piazza Paolo VI 16", "25121", "Brescia", "BS"),
            cig=cig,
            agreement_reference=f"Conv. CAS {year}",
            daily_rate_cents=CONTRACT_DAILY_RATE_CENTS,
            vat_rate_bp=CONTRACT_VAT_BP,
            vat_nature=None,
            split_payment=True,
            capacity=CONTRACT_CAPACITY,
            starts_on=date(year, 1, 1),
            ends_on=date(year, 12, 31),
            pass_through_items=[PassThroughItem("Pocket money", POCKET_MONEY_PER_PERSON_DAY_CENTS)],
        ),
    )
    for month in range(1, 13):
        days = calendar.monthrange(year, month)[1]
        for day_number in range(1, days + 1):
            day = date(year, month, day_number)
            persons = rng.randint(12, 14)
            yield _presence(contract, day, persons, "")
            if day_number == 10:
                # Someone left in the night: the register is corrected, not edited.
                yield _presence(contract, day, persons - 1, ":correction")
        period = f"{year}-{month:02d}"
        # Invoiced once the month is over: invoicing closes its presence register.
        issued_on = date(year, month, days) + timedelta(days=1)
        yield _invoice(contract, period, issued_on)
        paid_on = issued_on + timedelta(days=44)
        if paid_on.year == year:
            yield _payment(invoice_id_for(contract, period), period, paid_on)


def _invoice(contract: UUID, period: str, issued_on: date) -> DemoStep:
    return _step(
        issued_on,
        lambda rt: rt.funding.invoice_contract(
            key=f"demo:{period}:contract-invoice",
            actor=DEMO_ACTOR,
            contract_id=contract,
            month=period,
            issued_on=issued_on,
        ),
    )


def _payment(invoice: UUID, period: str, paid_on: date) -> DemoStep:
    return _step(
        paid_on,
        lambda rt: rt.funding.record_contract_payment(
            key=f"demo:{period}:contract-payment",
            actor=DEMO_ACTOR,
            invoice_id=invoice,
            amount_cents=rt.funding.invoice(invoice).payable_cents,
            paid_on=paid_on,
        ),
    )


def _presence(contract: UUID, day: date, persons: int, suffix: str) -> DemoStep:
    return _step(
        day,
        lambda rt: rt.funding.record_presence(
            key=f"demo:{day}:presence{suffix}",
            actor=DEMO_ACTOR,
            contract_id=contract,
            day=day,
            persons_present=persons,
        ),
    )
