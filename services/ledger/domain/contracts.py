"""Public reception contracts (CAS): presence register, monthly invoices, payments.

- A contract pays a daily rate per person present, plus pass-through items per
  person per day (pocket money), which the cooperative hands on and which are
  outside the VAT base (FatturaPA nature N1 by default).
- The presence register is one aggregate per contract-month. A correction is a new
  record for the day that supersedes the earlier one (its revision grows); records
  are never edited. Invoicing the month is an event on the same aggregate, so a
  correction and an invoice of that month cannot both win.
- One invoice per contract-month: its id is derived from (contract, month), so a
  second issue collides in the store. Invoice numbers come from a yearly sequence
  aggregate saved with the invoice: gapless, and exactly one invoice gets a number.
- Split payment (art. 17-ter DPR 633/72): the public body pays the VAT straight to
  the Treasury. The invoice posts receivable = net + VAT + pass-through; the VAT part
  of the receivable is then closed against the VAT liability, so what stays
  receivable is what the body will actually pay us.
- Stamp duty (imposta di bollo): an invoice whose amounts outside VAT (N1) exceed a
  threshold owes a fixed duty, decided at issue with the rule in force (settings) and
  recorded on the invoice; the cooperative bears it (expense, payable to the State).
- A payment recorded wrong (amount, date, invoice) is reversed, never edited: the
  invoice records that payment N is reversed (at most once) and the payment's journal
  entry is reversed by the ledger in the same save; the right payment is recorded anew.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate

from services.common.errors import Conflict, NotFound, ValidationError
from services.common.money import check_positive_amount, format_cents
from services.common.months import month_bounds
from services.ledger.domain.facts import (
    LedgerFact,
    check_not_future,
    checked_reversal,
    checked_text,
    credit,
    debit,
    short_id,
)
from services.ledger.domain.funding_accounts import FundingAccounts
from services.ledger.domain.journal import entry_id_for_cause, reversal_cause_id

CONTRACT_NAMESPACE = uuid5(NAMESPACE_URL, "urn:coop:funding:contract")
PRESENCE_NAMESPACE = uuid5(NAMESPACE_URL, "urn:coop:funding:presence-month")
INVOICE_NAMESPACE = uuid5(NAMESPACE_URL, "urn:coop:funding:contract-invoice")
SEQUENCE_NAMESPACE = uuid5(NAMESPACE_URL, "urn:coop:funding:invoice-sequence")

# CIG (Codice Identificativo Gara): 10 characters, digits and capital letters.
CIG_PATTERN = re.compile(r"^[0-9A-Z]{10}$")
# FatturaPA field formats (Schema 1.2.2): see docs/funding.md. The schema only says
# [A-Z0-9]{11,16} for a tax code; the SdI also checks the Italian codes themselves, so
# they are checked here in full (check_vat_number, check_tax_code).
VAT_NUMBER_PATTERN = re.compile(r"^[0-9]{11}$")
# A person's codice fiscale: surname, name, birth year, month letter, day (+40 for
# women), birthplace code, check letter; a digit may be swapped for a letter
# (LMNPQRSTUV) when two people would share a code (omocodia).
PERSON_TAX_CODE_PATTERN = re.compile(
    r"^[A-Z]{6}[0-9LMNPQRSTUV]{2}[ABCDEHLMPRST][0-9LMNPQRSTUV]{2}[A-Z][0-9LMNPQRSTUV]{3}[A-Z]$"
)
OFFICE_CODE_PATTERN = re.compile(r"^[A-Z0-9]{6}$")
POSTCODE_PATTERN = re.compile(r"^[0-9]{5}$")
PROVINCE_PATTERN = re.compile(r"^[A-Z]{2}$")
IBAN_PATTERN = re.compile(r"^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$")
NATURE_CODES = frozenset(
    {
        "N1", "N2.1", "N2.2", "N3.1", "N3.2", "N3.3", "N3.4", "N3.5", "N3.6",
        "N4", "N5", "N6.1", "N6.2", "N6.3", "N6.4", "N6.5", "N6.6", "N6.7", "N6.8", "N6.9", "N7",
    }
)  # fmt: skip
TAX_REGIMES = frozenset(f"RF{n:02d}" for n in range(1, 20) if n != 3)
MAX_CAPACITY = 10_000
MAX_PASS_THROUGH_ITEMS = 10
DEFAULT_PASS_THROUGH_NATURE = "N1"  # excluded from the VAT base, art. 15 DPR 633/72
# A monthly invoice is paid in a few transfers; corrections (a reversal and the right
# payment) add two each. The bound keeps an invoice's payment list one short page.
MAX_PAYMENTS_PER_INVOICE = 100


def contract_id_for(cig: str) -> UUID:
    """One contract per CIG: registering a CIG twice collides in the store."""
    return uuid5(CONTRACT_NAMESPACE, cig)


def presence_month_id(contract_id: UUID, month: str) -> UUID:
    return uuid5(PRESENCE_NAMESPACE, f"{contract_id}:{month}")


def invoice_id_for(contract_id: UUID, month: str) -> UUID:
    return uuid5(INVOICE_NAMESPACE, f"{contract_id}:{month}")


def sequence_id_for(year: int) -> UUID:
    return uuid5(SEQUENCE_NAMESPACE, f"contract-invoices:{year}")


def stamp_duty_cause_id(invoice_id: UUID) -> str:
    """The cause of an invoice's stamp duty entry (one per invoice, at issue)."""
    return f"funding:contract-invoice:{invoice_id}:stamp-duty"


def payment_cause_id(invoice_id: UUID, number: int) -> str:
    """Payment `number` (from 1) of an invoice: the cause of its journal entry."""
    return f"funding:contract-invoice:{invoice_id}:payment:{number}"


def payment_entry_id(invoice_id: UUID, number: int) -> UUID:
    return entry_id_for_cause(payment_cause_id(invoice_id, number))


def payment_reversal_entry_id(invoice_id: UUID, number: int) -> UUID:
    """The entry that reverses it: the ledger derives a reversal's id from the original's."""
    return entry_id_for_cause(reversal_cause_id(payment_entry_id(invoice_id, number)))


class PaymentAlreadyReversed(Conflict):
    pass


def month_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def last_day_of(month: str) -> date:
    return month_bounds(month)[1]


def latin_text(value: str, *, field: str, max_length: int, required: bool = True) -> str:
    """Text that goes into a FatturaPA document: Latin-1 only, bounded."""
    value = checked_text(value, field=field, max_length=max_length, required=required)
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        raise ValidationError(field, "use Latin characters only (e-invoice rule)") from None
    if any(ord(c) < 32 for c in value):
        raise ValidationError(field, "must not contain control characters")
    return value


def _numeric_code_error(code: str, *, what: str) -> str | None:
    """What is wrong with an 11-digit partita IVA or numeric codice fiscale, if anything.
    Both follow one rule (DM 23 December 1976): the first seven digits are the
    taxpayer's number (never all zero); the check digit is the 11th: digits in odd
    places count as they are, digits in even places doubled (less 9 when over 9), and
    the check digit makes the sum a multiple of 10."""
    if code[:7] == "0000000":
        return f"not a valid {what}: the first seven digits are all zero"
    total = 0
    for index, char in enumerate(code[:10]):
        digit = int(char)
        if index % 2 == 1:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    if (10 - total % 10) % 10 != int(code[10]):
        return f"not a valid {what}: the check digit does not match"
    return None


# A person's codice fiscale: the value of a character in an odd place (1st, 3rd, ...;
# a digit counts as the letter in its place, 0 as A); in an even place a digit counts
# its value and a letter its place in the alphabet from 0.
_ODD_LETTER_VALUES = (
    1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24, 23
)  # fmt: skip
_ODD_VALUES = {
    **{chr(ord("A") + i): value for i, value in enumerate(_ODD_LETTER_VALUES)},
    **{str(i): _ODD_LETTER_VALUES[i] for i in range(10)},
}


def _person_code_is_valid(code: str) -> bool:
    total = 0
    for index, char in enumerate(code[:15]):
        if index % 2 == 0:
            total += _ODD_VALUES[char]
        else:
            total += int(char) if char.isdigit() else ord(char) - ord("A")
    return code[15] == chr(ord("A") + total % 26)


def check_vat_number(value: str, *, field: str) -> str:
    """An Italian VAT number (partita IVA) the SdI accepts: 11 digits, check digit
    right. The message never repeats the value."""
    if not VAT_NUMBER_PATTERN.fullmatch(value):
        raise ValidationError(field, "a partita IVA is 11 digits")
    error = _numeric_code_error(value, what="partita IVA")
    if error is not None:
        raise ValidationError(field, error)
    return value


def check_tax_code(value: str, *, field: str) -> str:
    """An Italian tax code (codice fiscale) the SdI accepts: 11 digits for a body (a
    public administration's always is), with the partita IVA's check digit, or 16
    capital letters and digits for a person, with its check letter. The message never
    repeats the value."""
    if VAT_NUMBER_PATTERN.fullmatch(value):
        error = _numeric_code_error(value, what="codice fiscale")
        if error is not None:
            raise ValidationError(field, error)
        return value
    if len(value) == 16 and PERSON_TAX_CODE_PATTERN.fullmatch(value):
        if not _person_code_is_valid(value):
            raise ValidationError(
                field, "not a valid codice fiscale: the check letter does not match"
            )
        return value
    raise ValidationError(
        field,
        "a codice fiscale is 11 digits (a body) or 16 capital letters and digits (a person)",
    )


def _check_pattern(value: str, pattern: re.Pattern[str], *, field: str, rule: str) -> str:
    if not pattern.fullmatch(value):
        raise ValidationError(field, rule)
    return value


@dataclass(frozen=True)
class Address:
    street: str
    postcode: str
    municipality: str
    province: str | None
    country: str = "IT"

    def checked(self, field: str) -> Address:
        return Address(
            street=latin_text(self.street, field=f"{field}.street", max_length=60),
            postcode=_check_pattern(
                self.postcode, POSTCODE_PATTERN, field=f"{field}.postcode", rule="5 digits"
            ),
            municipality=latin_text(
                self.municipality, field=f"{field}.municipality", max_length=60
            ),
            province=None
            if self.province is None
            else _check_pattern(
                self.province, PROVINCE_PATTERN, field=f"{field}.province", rule="2 capital letters"
            ),
            country=_check_pattern(
                self.country,
                PROVINCE_PATTERN,
                field=f"{field}.country",
                rule="ISO 3166 code, e.g. IT",
            ),
        )

    def as_state(self) -> dict[str, Any]:
        return {
            "street": self.street,
            "postcode": self.postcode,
            "municipality": self.municipality,
            "province": self.province,
            "country": self.country,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Address:
        return cls(
            state["street"],
            state["postcode"],
            state["municipality"],
            state.get("province"),
            state.get("country", "IT"),
        )


@dataclass(frozen=True)
class PassThroughItem:
    """Money handed on per person per day (e.g. pocket money), reimbursed at cost."""

    description: str
    amount_per_person_day_cents: int
    vat_nature: str = DEFAULT_PASS_THROUGH_NATURE

    def as_state(self) -> dict[str, Any]:
        return {
            "description": self.description,
            "amount_per_person_day_cents": self.amount_per_person_day_cents,
            "vat_nature": self.vat_nature,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> PassThroughItem:
        return cls(
            state["description"], int(state["amount_per_person_day_cents"]), state["vat_nature"]
        )


# -- invoicing profile (who issues the invoices) ------------------------------

PROFILE_ID = uuid5(NAMESPACE_URL, "urn:coop:funding:invoicing-profile")


@dataclass(frozen=True)
class InvoicingProfileVersion:
    """The issuer's details as one setInvoicingProfile set them. It is what that
    command answers, and a retry of it too: the profile may have been set again since
    (by another admin), and a retry must not present those details as its own."""

    details: dict[str, Any]

    def as_state(self) -> dict[str, Any]:
        return dict(self.details)

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> InvoicingProfileVersion:
        return cls(dict(state))


class InvoicingProfile(Aggregate):
    """The cooperative as an invoice issuer. Changes apply to invoices issued later;
    each invoice keeps the profile it was issued with."""

    class Started(Aggregate.Created):
        pass

    class Set(Aggregate.Event):
        details: dict[str, Any]

        def apply(self, aggregate: Any) -> None:
            assert isinstance(aggregate, InvoicingProfile)
            aggregate.details = dict(self.details)

    def __init__(self) -> None:
        self.details: dict[str, Any] | None = None

    @classmethod
    def start(cls) -> InvoicingProfile:
        return cls._create(cls.Started, id=PROFILE_ID)

    def set(
        self,
        *,
        name: str,
        vat_number: str,
        tax_code: str | None,
        tax_regime: str,
        address: Address,
        iban: str | None,
    ) -> InvoicingProfileVersion:
        details = {
            "name": latin_text(name, field="name", max_length=80),
            "vat_number": check_vat_number(vat_number, field="vatNumber"),
            "tax_code": None if tax_code is None else check_tax_code(tax_code, field="taxCode"),
            "tax_regime": tax_regime
            if tax_regime in TAX_REGIMES
            else _raise(ValidationError("taxRegime", "a FatturaPA regime code, e.g. RF01")),
            "address": address.checked("address").as_state(),
            "iban": None
            if iban is None
            else _check_pattern(iban, IBAN_PATTERN, field="iban", rule="an IBAN without spaces"),
        }
        self.trigger_event(self.Set, details=details)
        return InvoicingProfileVersion(dict(details))


def _raise(exc: Exception) -> Any:
    raise exc


# -- contract -------------------------------------------------------------------


class Contract(Aggregate):
    class Registered(Aggregate.Created):
        authority: str
        authority_tax_code: str
        authority_office_code: str
        authority_address: dict[str, Any]
        cig: str
        agreement_reference: str
        daily_rate_cents: int
        vat_rate_bp: int
        vat_nature: str | None
        split_payment: bool
        capacity: int
        starts_on: date
        ends_on: date | None
        pass_through_items: list[dict[str, Any]]

    def __init__(
        self,
        authority: str,
        authority_tax_code: str,
        authority_office_code: str,
        authority_address: dict[str, Any],
        cig: str,
        agreement_reference: str,
        daily_rate_cents: int,
        vat_rate_bp: int,
        vat_nature: str | None,
        split_payment: bool,
        capacity: int,
        starts_on: date,
        ends_on: date | None,
        pass_through_items: list[dict[str, Any]],
    ) -> None:
        self.authority = authority
        self.authority_tax_code = authority_tax_code
        self.authority_office_code = authority_office_code
        self.authority_address = Address.from_state(authority_address)
        self.cig = cig
        self.agreement_reference = agreement_reference
        self.daily_rate_cents = daily_rate_cents
        self.vat_rate_bp = vat_rate_bp
        self.vat_nature = vat_nature
        self.split_payment = split_payment
        self.capacity = capacity
        self.starts_on = starts_on
        self.ends_on = ends_on
        self.pass_through_items = tuple(PassThroughItem.from_state(p) for p in pass_through_items)

    @classmethod
    def register(
        cls,
        *,
        authority: str,
        authority_tax_code: str,
        authority_office_code: str,
        authority_address: Address,
        cig: str,
        agreement_reference: str | None,
        daily_rate_cents: int,
        vat_rate_bp: int,
        vat_nature: str | None,
        split_payment: bool,
        capacity: int,
        starts_on: date,
        ends_on: date | None,
        pass_through_items: list[PassThroughItem],
        ceiling_cents: int,
        accounts: FundingAccounts,
    ) -> Contract:
        cig = _check_pattern(
            cig, CIG_PATTERN, field="cig", rule="a CIG is 10 characters: digits and capital letters"
        )
        authority = latin_text(authority, field="authority", max_length=80)
        authority_tax_code = check_tax_code(authority_tax_code, field="authorityTaxCode")
        authority_office_code = _check_pattern(
            authority_office_code,
            OFFICE_CODE_PATTERN,
            field="authorityOfficeCode",
            rule="the public body's 6-character office code (codice univoco ufficio)",
        )
        address = authority_address.checked("authorityAddress")
        reference = (
            cig
            if agreement_reference is None
            else latin_text(agreement_reference, field="agreementReference", max_length=20)
        )
        check_positive_amount(daily_rate_cents, field="dailyRate", ceiling_cents=ceiling_cents)
        if vat_rate_bp == 0:
            if vat_nature not in NATURE_CODES:
                raise ValidationError("vatNature", "a 0% contract names its VAT nature, e.g. N4")
        else:
            if vat_nature is not None:
                raise ValidationError("vatNature", "only a 0% contract has a VAT nature")
            if accounts.vat_payable(vat_rate_bp) is None:
                raise ValidationError("vatRate", "no VAT payable account for this rate")
        if not 1 <= capacity <= MAX_CAPACITY:
            raise ValidationError("capacity", f"must be between 1 and {MAX_CAPACITY}")
        if ends_on is not None and ends_on < starts_on:
            raise ValidationError("endDate", "must not be before the start date")
        if len(pass_through_items) > MAX_PASS_THROUGH_ITEMS:
            raise ValidationError(
                "passThroughItems", f"at most {MAX_PASS_THROUGH_ITEMS} pass-through items"
            )
        items: list[dict[str, Any]] = []
        for index, item in enumerate(pass_through_items):
            field = f"passThroughItems[{index}]"
            check_positive_amount(
                item.amount_per_person_day_cents,
                field=f"{field}.amountPerPersonDay",
                ceiling_cents=ceiling_cents,
            )
            if item.vat_nature not in NATURE_CODES:
                raise ValidationError(f"{field}.vatNature", "a FatturaPA nature code, e.g. N1")
            description = latin_text(item.description, field=f"{field}.description", max_length=200)
            items.append(
                PassThroughItem(
                    description, item.amount_per_person_day_cents, item.vat_nature
                ).as_state()
            )
        return cls._create(
            cls.Registered,
            id=contract_id_for(cig),
            authority=authority,
            authority_tax_code=authority_tax_code,
            authority_office_code=authority_office_code,
            authority_address=address.as_state(),
            cig=cig,
            agreement_reference=reference,
            daily_rate_cents=daily_rate_cents,
            vat_rate_bp=vat_rate_bp,
            vat_nature=vat_nature,
            split_payment=split_payment,
            capacity=capacity,
            starts_on=starts_on,
            ends_on=ends_on,
            pass_through_items=items,
        )

    def check_in_term(self, day: date, *, field: str) -> None:
        if day < self.starts_on or (self.ends_on is not None and day > self.ends_on):
            raise ValidationError(field, f"outside the term of contract {self.id}")


# -- presence register ----------------------------------------------------------


@dataclass(frozen=True)
class PresenceRecord:
    persons_present: int
    revision: int  # 1 = first record of the day; n > 1 supersedes revision n - 1


class PresenceMonth(Aggregate):
    class Opened(Aggregate.Created):
        contract_id: UUID
        month: str

    class PresenceRecorded(Aggregate.Event):
        contract_id: UUID  # carried so read models need not resolve the register id
        day: date
        persons_present: int
        revision: int

        def apply(self, aggregate: Any) -> None:
            assert isinstance(aggregate, PresenceMonth)
            aggregate.days[self.day] = PresenceRecord(self.persons_present, self.revision)

    class Invoiced(Aggregate.Event):
        invoice_id: UUID

        def apply(self, aggregate: Any) -> None:
            assert isinstance(aggregate, PresenceMonth)
            aggregate.invoice_id = self.invoice_id

    def __init__(self, contract_id: UUID, month: str) -> None:
        self.contract_id = contract_id
        self.month = month
        self.days: dict[date, PresenceRecord] = {}
        self.invoice_id: UUID | None = None

    @classmethod
    def open(cls, contract_id: UUID, month: str) -> PresenceMonth:
        return cls._create(
            cls.Opened,
            id=presence_month_id(contract_id, month),
            contract_id=contract_id,
            month=month,
        )

    @property
    def presence_days(self) -> int:
        """Person-days: the sum over days of the persons present (latest record of each)."""
        return sum(record.persons_present for record in self.days.values())

    def record(
        self, *, contract: Contract, day: date, persons_present: int, today: date
    ) -> PresenceRecord:
        if month_of(day) != self.month:
            raise ValidationError("date", f"not in {self.month}")
        check_not_future(day, today, field="date", what="presence")
        contract.check_in_term(day, field="date")
        if persons_present < 0:
            raise ValidationError("personsPresent", "must not be negative")
        if persons_present > contract.capacity:
            raise ValidationError(
                "personsPresent", f"exceeds the contract's capacity of {contract.capacity}"
            )
        if self.invoice_id is not None:
            raise Conflict(
                f"{self.month} of contract {contract.id} is already invoiced "
                f"({self.invoice_id}); its presence register is closed"
            )
        previous = self.days.get(day)
        revision = 1 if previous is None else previous.revision + 1
        self.trigger_event(
            self.PresenceRecorded,
            contract_id=self.contract_id,
            day=day,
            persons_present=persons_present,
            revision=revision,
        )
        return self.days[day]


# A year's last invoice number: its FatturaPA ProgressivoInvio, the year then the
# number (fatturapa.py), must fit the schema's 10 characters. A year's register of a
# small cooperative holds hundreds, not a million.
MAX_INVOICE_NUMBER = 999_999
# The last number another system issued that this one may go on from: one invoice at
# least must still be possible here.
MAX_CONTINUED_NUMBER = MAX_INVOICE_NUMBER - 1


def invoice_number(year: int, progressive: int) -> str:
    # FatturaPA Numero: at most 20 characters with at least one digit.
    return f"PA-{year}-{progressive:04d}"


@dataclass(frozen=True)
class ContinuedNumbering:
    """A year's numbering as continueInvoiceNumbering left it: what that command
    answers, and a retry of it too, after invoices numbered here moved it on."""

    year: int
    last_number: int
    # None only when a claim stored before answers from a sequence with no date in it
    # (an older snapshot).
    last_issued_on: date | None

    def number_of(self, progressive: int) -> str:
        return invoice_number(self.year, progressive)

    def as_state(self) -> dict[str, Any]:
        return {
            "year": self.year,
            "last_number": self.last_number,
            "last_issued_on": None
            if self.last_issued_on is None
            else self.last_issued_on.isoformat(),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ContinuedNumbering:
        last_issued_on = state["last_issued_on"]
        return cls(
            int(state["year"]),
            int(state["last_number"]),
            None if last_issued_on is None else date.fromisoformat(last_issued_on),
        )


class InvoiceSequence(Aggregate):
    """Contract invoice numbers of one year: 1, 2, 3... without gaps, in the order of
    their issue dates (Italian practice: a number never precedes an earlier one's
    date)."""

    class Started(Aggregate.Created):
        year: int

    class Numbered(Aggregate.Event):
        # v2 added `issued_on`; v1 events get None (their dates are on the invoices).
        class_version = 2
        invoice_id: UUID
        issued_on: date | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["issued_on"] = None

        def apply(self, aggregate: Any) -> None:
            assert isinstance(aggregate, InvoiceSequence)
            aggregate.last_number += 1
            if self.issued_on is not None:
                aggregate.last_issued_on = self.issued_on

    class Continued(Aggregate.Event):
        """The year's numbering carried on from another system's last invoice."""

        last_number: int
        last_issued_on: date

        def apply(self, aggregate: Any) -> None:
            assert isinstance(aggregate, InvoiceSequence)
            aggregate.last_number = self.last_number
            aggregate.last_issued_on = self.last_issued_on

    def __init__(self, year: int) -> None:
        self.year = year
        self.last_number = 0
        self.last_issued_on: date | None = None

    def continue_from(
        self, last_number: int, last_issued_on: date, *, today: date
    ) -> ContinuedNumbering:
        """A cooperative that goes live mid-year has numbered invoices elsewhere since
        January: a number may not repeat within the year (the SdI refuses a duplicate),
        so this year's numbers go on from the last one issued there."""
        if self.last_number > 0:
            raise Conflict(
                f"{self.last_number} invoice(s) of {self.year} were numbered already "
                f"(last {self.number_of(self.last_number)}): numbering is continued only "
                "before the year's first invoice here"
            )
        if not 1 <= last_number <= MAX_CONTINUED_NUMBER:
            raise ValidationError("lastNumber", f"must be between 1 and {MAX_CONTINUED_NUMBER}")
        if last_issued_on.year != self.year:
            raise ValidationError("lastIssuedOn", f"must be a day of {self.year}")
        if last_issued_on > today:
            raise ValidationError("lastIssuedOn", "must not be in the future")
        self.trigger_event(self.Continued, last_number=last_number, last_issued_on=last_issued_on)
        return self.numbering()

    def numbering(self) -> ContinuedNumbering:
        """The numbering as it is now."""
        last = getattr(self, "last_issued_on", None)  # absent from older snapshots
        return ContinuedNumbering(self.year, self.last_number, last)

    def number_of(self, progressive: int) -> str:
        return invoice_number(self.year, progressive)

    @classmethod
    def start(cls, year: int) -> InvoiceSequence:
        return cls._create(cls.Started, id=sequence_id_for(year), year=year)

    def next_number(self, invoice_id: UUID, issued_on: date) -> str:
        last = getattr(self, "last_issued_on", None)  # absent from older snapshots
        if last is not None and issued_on < last:
            raise ValidationError(
                "issueDate",
                f"invoice {self.year} number {self.last_number} is dated {last.isoformat()}: "
                "the next one cannot be dated before it",
            )
        if self.last_number >= MAX_INVOICE_NUMBER:
            # Refused rather than issued as a document the SdI would reject.
            raise Conflict(
                f"the {self.year} invoice numbering is exhausted at "
                f"{self.number_of(self.last_number)}: the SdI's transmission number holds "
                f"at most {MAX_INVOICE_NUMBER} invoices a year"
            )
        self.trigger_event(self.Numbered, invoice_id=invoice_id, issued_on=issued_on)
        return self.number_of(self.last_number)


# -- invoice ----------------------------------------------------------------------


def vat_cents(net_cents: int, rate_bp: int) -> int:
    """VAT on a net amount, rounded half up to the cent."""
    return (2 * net_cents * rate_bp + 10_000) // 20_000


# Natures whose amounts count towards the stamp duty threshold: N1, excluded from the
# VAT base under art. 15 DPR 633/72 (the pass-through items). Exempt (N4) and other
# non-VAT amounts can owe the duty by law too; not counted yet (docs/funding.md).
STAMP_DUTY_NATURES = frozenset({"N1"})


@dataclass(frozen=True)
class StampDutyRule:
    """Imposta di bollo on an invoice (DPR 642/1972, Tariffa art. 13; DM 17/6/2014): an
    invoice whose amounts outside VAT exceed the threshold owes the duty, paid
    virtually. Both figures are settings (the law changes them), fixed on each invoice
    at issue, so a later change never alters an invoice already issued."""

    threshold_cents: int
    duty_cents: int

    def duty_on(self, excluded_cents: int) -> int:
        """The duty owed by an invoice with `excluded_cents` outside VAT: strictly over
        the threshold (EUR 77.47 owes nothing, 77.48 owes it)."""
        return self.duty_cents if excluded_cents > self.threshold_cents else 0


@dataclass
class ContractPayment:
    number: int  # 1-based, in the order recorded (reversed ones keep their number)
    paid_on: date
    amount_cents: int
    reversed_on: date | None = None
    reversal_reason: str | None = None


class ContractInvoice(Aggregate):
    class Issued(Aggregate.Created):
        contract_id: UUID
        month: str
        number: str
        progressive: int
        issued_on: date
        presence_days: int
        days_with_presence: int
        daily_rate_cents: int
        net_cents: int
        vat_rate_bp: int
        vat_nature: str | None
        vat_cents: int
        split_payment: bool
        pass_through: list[
            dict[str, Any]
        ]  # description, quantity, unit_cents, amount_cents, vat_nature
        pass_through_cents: int
        total_cents: int
        payable_cents: int
        issuer: dict[str, Any]
        customer: dict[str, Any]
        cig: str
        agreement_reference: str
        # Stamp duty the cooperative owes on the invoice (0: none). Added later: events
        # recorded before it have no such field and decode as 0 (this default), so
        # their documents render as they always did.
        stamp_duty_cents: int = 0
        # The service period the invoice states: the month, within the contract's
        # term (a contract from 10 March is not invoiced for 1 March). None in events
        # recorded before it was kept: their documents state the whole month, as
        # they always did.
        period_from: date | None = None
        period_to: date | None = None

        def apply(self, aggregate: Any) -> None:
            assert isinstance(aggregate, ContractInvoice)
            aggregate.contract_id = self.contract_id
            aggregate.month = self.month
            aggregate.number = self.number
            aggregate.issued_on = self.issued_on
            aggregate.presence_days = self.presence_days
            aggregate.net_cents = self.net_cents
            aggregate.vat_rate_bp = self.vat_rate_bp
            aggregate.vat_cents = self.vat_cents
            aggregate.split_payment = self.split_payment
            aggregate.pass_through_cents = self.pass_through_cents
            aggregate.total_cents = self.total_cents
            aggregate.payable_cents = self.payable_cents
            aggregate.stamp_duty_cents = self.stamp_duty_cents

    class PaymentRecorded(Aggregate.Event):
        payment_number: int
        paid_on: date
        amount_cents: int

        def apply(self, aggregate: Any) -> None:
            assert isinstance(aggregate, ContractInvoice)
            aggregate.paid_cents += self.amount_cents
            aggregate.payments += 1
            aggregate.payment_records[self.payment_number] = ContractPayment(
                self.payment_number, self.paid_on, self.amount_cents
            )

    class PaymentReversed(Aggregate.Event):
        payment_number: int
        reversed_on: date
        amount_cents: int  # the payment's, carried so read models need not look it up
        reason: str
        reversal_entry_id: UUID

        def apply(self, aggregate: Any) -> None:
            assert isinstance(aggregate, ContractInvoice)
            aggregate.paid_cents -= self.amount_cents
            payment = aggregate.payment_records[self.payment_number]
            payment.reversed_on = self.reversed_on
            payment.reversal_reason = self.reason

    contract_id: UUID
    month: str
    number: str
    issued_on: date
    presence_days: int
    net_cents: int
    vat_rate_bp: int
    vat_cents: int
    split_payment: bool
    pass_through_cents: int
    total_cents: int
    payable_cents: int
    stamp_duty_cents: int

    def __init__(self) -> None:
        # The Issued event carries many fields; its apply() copies them.
        self.paid_cents = 0  # net of reversed payments
        self.payments = 0  # payments recorded, reversed or not: the last one's number
        self.payment_records: dict[int, ContractPayment] = {}

    @classmethod
    def issue(
        cls,
        *,
        contract: Contract,
        register: PresenceMonth,
        sequence: InvoiceSequence,
        profile: InvoicingProfile,
        issued_on: date,
        today: date,
        stamp_duty: StampDutyRule,
    ) -> ContractInvoice:
        # Invoicing closes the month's presence register: on the month's last day that
        # day's presence may still be recorded or corrected, and once invoiced it never
        # could be, nor billed. So a month is invoiced from the next month's first day.
        # (Compared with the month's last day: December 9999 has no next day.)
        month_end = last_day_of(register.month)
        if issued_on <= month_end:
            raise ValidationError(
                "issueDate",
                f"{register.month} is not over on {issued_on.isoformat()}: it can be "
                + (
                    f"invoiced from {(month_end + timedelta(days=1)).isoformat()}"
                    if month_end < date.max
                    else "invoiced on no day"
                ),
            )
        check_not_future(issued_on, today, field="issueDate", what="an invoice")
        if register.invoice_id is not None:
            raise Conflict(f"{register.month} of contract {contract.id} is already invoiced")
        presence_days = register.presence_days
        if presence_days == 0:
            raise ValidationError("month", f"no presence recorded in {register.month}")
        if profile.details is None:
            raise Conflict("set the invoicing profile (setInvoicingProfile) before invoicing")
        invoice_id = invoice_id_for(contract.id, register.month)
        net = presence_days * contract.daily_rate_cents
        vat = vat_cents(net, contract.vat_rate_bp)
        pass_through: list[dict[str, Any]] = [
            {
                "description": item.description,
                "quantity": presence_days,
                "unit_cents": item.amount_per_person_day_cents,
                "amount_cents": presence_days * item.amount_per_person_day_cents,
                "vat_nature": item.vat_nature,
            }
            for item in contract.pass_through_items
        ]
        pass_through_cents = sum(int(p["amount_cents"]) for p in pass_through)
        excluded_cents = sum(
            int(p["amount_cents"]) for p in pass_through if p["vat_nature"] in STAMP_DUTY_NATURES
        ) + (net if contract.vat_nature in STAMP_DUTY_NATURES else 0)
        # The cooperative bears the duty: it is not an invoice line, so the total and
        # what the body pays are unchanged (a recharge to the body is not built).
        duty = stamp_duty.duty_on(excluded_cents)
        total = net + vat + pass_through_cents
        payable = total - vat if contract.split_payment else total
        number = sequence.next_number(invoice_id, issued_on)
        register.trigger_event(register.Invoiced, invoice_id=invoice_id)
        return cls._create(
            cls.Issued,
            id=invoice_id,
            contract_id=contract.id,
            month=register.month,
            number=number,
            progressive=sequence.last_number,
            issued_on=issued_on,
            presence_days=presence_days,
            days_with_presence=sum(1 for r in register.days.values() if r.persons_present),
            daily_rate_cents=contract.daily_rate_cents,
            net_cents=net,
            vat_rate_bp=contract.vat_rate_bp,
            vat_nature=contract.vat_nature,
            vat_cents=vat,
            split_payment=contract.split_payment,
            pass_through=pass_through,
            pass_through_cents=pass_through_cents,
            total_cents=total,
            payable_cents=payable,
            issuer=dict(profile.details),
            customer={
                "name": contract.authority,
                "tax_code": contract.authority_tax_code,
                "office_code": contract.authority_office_code,
                "address": contract.authority_address.as_state(),
            },
            cig=contract.cig,
            agreement_reference=contract.agreement_reference,
            stamp_duty_cents=duty,
            period_from=max(month_end.replace(day=1), contract.starts_on),
            period_to=month_end if contract.ends_on is None else min(month_end, contract.ends_on),
        )

    @property
    def outstanding_cents(self) -> int:
        return self.payable_cents - self.paid_cents

    def ledger_facts(self, accounts: FundingAccounts) -> list[LedgerFact]:
        """The invoice entry, with split payment the VAT settlement entry, and the
        stamp duty's entry when the invoice owes it."""
        vat_account = accounts.vat_payable(self.vat_rate_bp)
        postings = [
            debit(accounts.public_body_receivables, self.total_cents),
            credit(accounts.contract_revenue, self.net_cents),
        ]
        if self.vat_cents:
            assert vat_account is not None  # checked when the contract was registered
            postings.append(credit(vat_account, self.vat_cents))
        if self.pass_through_cents:
            postings.append(credit(accounts.pass_through_payable, self.pass_through_cents))
        facts = [
            LedgerFact(
                cause_id=f"funding:contract-invoice:{self.id}",
                effective_date=self.issued_on,
                description=f"Reception contract invoice {self.number} ({self.month}), "
                f"{self.presence_days} presence days",
                postings=tuple(postings),
            )
        ]
        if self.split_payment and self.vat_cents:
            assert vat_account is not None
            facts.append(
                LedgerFact(
                    cause_id=f"funding:contract-invoice:{self.id}:split-payment",
                    effective_date=self.issued_on,
                    description=f"Split payment on invoice {self.number}: "
                    "VAT paid by the public body to the Treasury",
                    postings=(
                        debit(vat_account, self.vat_cents),
                        credit(accounts.public_body_receivables, self.vat_cents),
                    ),
                )
            )
        if self.stamp_duty_cents:
            # The cooperative's cost, owed to the State (paid quarterly with F24), not
            # the public body's: the receivable does not move.
            facts.append(
                LedgerFact(
                    cause_id=stamp_duty_cause_id(self.id),
                    effective_date=self.issued_on,
                    description=f"Stamp duty (imposta di bollo, virtual) on invoice {self.number}",
                    postings=(
                        debit(accounts.stamp_duty_expense, self.stamp_duty_cents),
                        credit(accounts.stamp_duty_payable, self.stamp_duty_cents),
                    ),
                )
            )
        return facts

    def record_payment(
        self,
        *,
        paid_on: date,
        amount_cents: int,
        today: date,
        ceiling_cents: int,
        accounts: FundingAccounts,
    ) -> LedgerFact:
        check_positive_amount(amount_cents, field="amount", ceiling_cents=ceiling_cents)
        check_not_future(paid_on, today, field="date", what="a payment")
        if paid_on < self.issued_on:
            raise ValidationError("date", "a payment cannot be dated before the invoice")
        if amount_cents > self.outstanding_cents:
            raise ValidationError(
                "amount",
                f"exceeds the {format_cents(self.outstanding_cents)} outstanding on invoice "
                f"{self.number}",
            )
        if self.payments >= MAX_PAYMENTS_PER_INVOICE:
            raise Conflict(
                f"invoice {self.number} already has {MAX_PAYMENTS_PER_INVOICE} payments "
                "(reversed ones included)"
            )
        self.trigger_event(
            self.PaymentRecorded,
            payment_number=self.payments + 1,
            paid_on=paid_on,
            amount_cents=amount_cents,
        )
        return LedgerFact(
            cause_id=payment_cause_id(self.id, self.payments),
            effective_date=paid_on,
            description=f"Payment received on contract invoice {self.number} "
            f"(invoice {short_id(self.id)})",
            postings=(
                debit(accounts.bank, amount_cents),
                credit(accounts.public_body_receivables, amount_cents),
            ),
        )

    def payment(self, number: int) -> ContractPayment:
        payment = self.payment_records.get(number)
        if payment is None:
            raise NotFound(f"invoice {self.number} has no payment {number}")
        return payment

    def reverse_payment(self, number: int, *, reversed_on: date, reason: str, today: date) -> str:
        """Record that payment `number` is reversed: the amount is outstanding again.
        Return the description of the reversing journal entry, which the caller makes
        with `JournalEntry.reverse` on `payment_entry_id(...)` and saves with this
        invoice (so they never disagree).

        At most once per payment: a second reversal, even a concurrent one, collides here.
        """
        payment = self.payment(number)
        if payment.reversed_on is not None:
            raise PaymentAlreadyReversed(
                f"payment {number} of invoice {self.number} was already reversed on "
                f"{payment.reversed_on.isoformat()}"
            )
        reason = checked_reversal(
            reversed_on, reason, recorded_on=payment.paid_on, today=today, what="payment"
        )
        self.trigger_event(
            self.PaymentReversed,
            payment_number=number,
            reversed_on=reversed_on,
            amount_cents=payment.amount_cents,
            reason=reason,
            reversal_entry_id=payment_reversal_entry_id(self.id, number),
        )
        # Ids only, as the payment's own entry: never the reason.
        return (
            f"Reversal of payment {number} on contract invoice {self.number} "
            f"(invoice {short_id(self.id)})"
        )
