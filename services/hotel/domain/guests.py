"""Guests as the police reporting (Alloggiati Web) and ISTAT need them.

Personal data: validation messages name the field (e.g. `guests[1].surname`), never
the value, so nothing a guest typed ends up in a log line or an error.

A `Guest` is split in two for storage (see docs/hotel.md, "Guests and personal data"):
- `GuestFacts`, the facts the accounts and statistics need for years (age on arrival
  for the tourist tax, residence for the tax and ISTAT, whether an exemption reason was
  given), recorded in clear;
- the identity (`identity_state`: name, sex, birth, citizenship, document, the
  exemption reason's text), sealed under the booking's key and gone when it is erased.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from typing import Any, Self

from services.common.errors import ValidationError
from services.common.text import collapsed_text

# Alloggiati Web code of Italy in its table of States: Italian birth places and
# residences need a municipality code and a province; foreign ones must not have one.
ITALY_CODE = "100000100"
MAX_GUESTS = 20  # no room holds more; bounds the input

_CODE9 = re.compile(r"^[0-9]{9}$")
_PROVINCE = re.compile(r"^[A-Z]{2}$")
_DOCUMENT_TYPE = re.compile(r"^[A-Z0-9]{5}$")
_DOCUMENT_NUMBER = re.compile(r"^[A-Z0-9]{1,20}$")
# Latin letters (with the accents of the Latin-1 range the record file is written in),
# spaces, apostrophes and hyphens.
_NAME = re.compile(r"^[A-Za-zÀ-ÖØ-öø-ÿ][A-Za-zÀ-ÖØ-öø-ÿ '\-]*$")
MAX_EXEMPTION_REASON_LENGTH = 200
_TYPOGRAPHIC_MARKS = str.maketrans(
    {
        "\u2019": "'",  # right single quotation mark, the usual "smart" apostrophe
        "\u2018": "'",
        "\u02bc": "'",  # modifier letter apostrophe
        "\u00b4": "'",  # acute accent, sometimes typed for an apostrophe
        "`": "'",
        "\u2010": "-",  # hyphen
        "\u2011": "-",  # non-breaking hyphen
        "\u2012": "-",
        "\u2013": "-",  # en dash
    }
)


@dataclass(frozen=True)
class Guest:
    # Immutable values: the repository cache's defensive copy of a booking need not
    # rebuild them (measured: most of a cached booking's copy time).
    def __deepcopy__(self, memo: dict[int, Any]) -> Self:
        return self

    surname: str
    given_name: str
    sex: str  # "M" or "F" (the record's 1 / 2)
    birth_date: date
    birth_country_code: str
    birth_municipality_code: str | None
    birth_province: str | None
    citizenship_code: str
    residence_country_code: str
    residence_municipality_code: str | None
    residence_province: str | None
    document_type: str | None
    document_number: str | None
    document_issue_place_code: str | None
    tax_exemption_reason: str | None

    def age_on(self, day: date) -> int:
        years = day.year - self.birth_date.year
        if (day.month, day.day) < (self.birth_date.month, self.birth_date.day):
            years -= 1
        return years

    @property
    def residence(self) -> str:
        return residence_key(self.residence_country_code, self.residence_province)

    def facts(self, arrival: date) -> GuestFacts:
        return GuestFacts(
            age_on_arrival=self.age_on(arrival),
            residence_country_code=self.residence_country_code,
            residence_municipality_code=self.residence_municipality_code,
            residence_province=self.residence_province,
            has_exemption_reason=bool(self.tax_exemption_reason),
        )

    def identity_state(self) -> dict[str, Any]:
        """What only the police report needs: sealed, never recorded in clear."""
        state = self.as_state()
        for name in RESIDENCE_FIELDS:
            del state[name]
        return state

    @classmethod
    def from_parts(cls, identity: dict[str, Any], facts: GuestFacts) -> Guest:
        return cls.from_state(
            {
                **identity,
                "residence_country_code": facts.residence_country_code,
                "residence_municipality_code": facts.residence_municipality_code,
                "residence_province": facts.residence_province,
            }
        )

    def as_state(self) -> dict[str, Any]:
        return {
            "surname": self.surname,
            "given_name": self.given_name,
            "sex": self.sex,
            "birth_date": self.birth_date.isoformat(),
            "birth_country_code": self.birth_country_code,
            "birth_municipality_code": self.birth_municipality_code,
            "birth_province": self.birth_province,
            "citizenship_code": self.citizenship_code,
            "residence_country_code": self.residence_country_code,
            "residence_municipality_code": self.residence_municipality_code,
            "residence_province": self.residence_province,
            "document_type": self.document_type,
            "document_number": self.document_number,
            "document_issue_place_code": self.document_issue_place_code,
            "tax_exemption_reason": self.tax_exemption_reason,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Guest:
        values = dict(state)
        values["birth_date"] = date.fromisoformat(state["birth_date"])
        return cls(**values)


def residence_key(country_code: str, province: str | None) -> str:
    """ISTAT groups arrivals by country, and Italians by province."""
    if country_code == ITALY_CODE and province:
        return f"IT-{province}"
    return country_code


RESIDENCE_FIELDS = ("residence_country_code", "residence_municipality_code", "residence_province")


@dataclass(frozen=True)
class GuestFacts:
    """A guest as the booking keeps it: no name, no birth date, no document."""

    def __deepcopy__(self, memo: dict[int, Any]) -> Self:
        return self

    age_on_arrival: int
    residence_country_code: str
    residence_municipality_code: str | None
    residence_province: str | None
    has_exemption_reason: bool

    @property
    def residence(self) -> str:
        return residence_key(self.residence_country_code, self.residence_province)

    def as_state(self) -> dict[str, Any]:
        return {
            "age_on_arrival": self.age_on_arrival,
            "residence_country_code": self.residence_country_code,
            "residence_municipality_code": self.residence_municipality_code,
            "residence_province": self.residence_province,
            "has_exemption_reason": self.has_exemption_reason,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> GuestFacts:
        return cls(**state)


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value or None


def _name(value: str, field: str, max_length: int) -> str:
    # Composed first: "Müller" typed as u + combining diaeresis (as macOS and many web
    # forms send it) is the same name as the one-letter ü of the record file.
    # (Composed before its length is checked: decomposed, it is longer than it is.)
    value = collapsed_text(unicodedata.normalize("NFC", value), field=field, max_length=max_length)
    # D'Amico typed with the curly apostrophe (U+2019) of phones and word processors,
    # or Jean-Luc with U+2010, is the same name: the record file holds the plain marks.
    value = value.translate(_TYPOGRAPHIC_MARKS)
    if not _NAME.fullmatch(value):
        if any(ord(c) > 0xFF and c.isalpha() for c in value):
            raise ValidationError(
                field,
                "letters of the Latin-1 range only, as the police record file takes them: "
                "write others as the guest's document does in Latin letters (Ł as L)",
            )
        raise ValidationError(field, "letters, spaces, apostrophes and hyphens only")
    return value


def _code(value: str | None, field: str) -> str:
    if value is None or not _CODE9.fullmatch(value):
        raise ValidationError(field, "must be a 9-digit Alloggiati Web code")
    return value


def _place(
    country: str, municipality: str | None, province: str | None, prefix: str
) -> tuple[str | None, str | None]:
    municipality, province = _clean(municipality), _clean(province)
    if country == ITALY_CODE:
        _code(municipality, f"{prefix}MunicipalityCode")
        if province is None or not _PROVINCE.fullmatch(province):
            raise ValidationError(f"{prefix}Province", "two capital letters, e.g. BS")
        return municipality, province
    if municipality is not None:
        raise ValidationError(f"{prefix}MunicipalityCode", "only for places in Italy")
    if province is not None:
        raise ValidationError(f"{prefix}Province", "only for places in Italy")
    return None, None


def make_guest(
    *,
    index: int,
    is_leader: bool,
    arrival: date,
    surname: str,
    given_name: str,
    sex: str,
    birth_date: date,
    birth_country_code: str,
    birth_municipality_code: str | None,
    birth_province: str | None,
    citizenship_code: str,
    residence_country_code: str,
    residence_municipality_code: str | None,
    residence_province: str | None,
    document_type: str | None,
    document_number: str | None,
    document_issue_place_code: str | None,
    tax_exemption_reason: str | None,
) -> Guest:
    """A validated guest; `index` names the input (guests[index].field) in errors."""
    p = f"guests[{index}]."
    if sex not in ("M", "F"):
        raise ValidationError(f"{p}sex", "M or F")
    if birth_date > arrival:
        raise ValidationError(f"{p}birthDate", "must not be after the arrival")
    if birth_date.year < 1900:
        raise ValidationError(f"{p}birthDate", "must be in 1900 or later")
    birth_country = _code(birth_country_code, f"{p}birthCountryCode")
    birth_municipality, birth_prov = _place(
        birth_country, birth_municipality_code, birth_province, f"{p}birth"
    )
    residence_country = _code(residence_country_code, f"{p}residenceCountryCode")
    residence_municipality, residence_prov = _place(
        residence_country, residence_municipality_code, residence_province, f"{p}residence"
    )
    doc_type = _clean(document_type)
    doc_number = _clean(document_number)
    doc_place = _clean(document_issue_place_code)
    if is_leader:
        # The head of a family or group (or a single guest) shows a document.
        if doc_type is None or not _DOCUMENT_TYPE.fullmatch(doc_type):
            raise ValidationError(f"{p}documentType", "a 5-character code, e.g. IDENT or PASOR")
        if doc_number is None or not _DOCUMENT_NUMBER.fullmatch(doc_number):
            raise ValidationError(f"{p}documentNumber", "1 to 20 capital letters or digits")
        _code(doc_place, f"{p}documentIssuePlaceCode")
    elif doc_type or doc_number or doc_place:
        raise ValidationError(f"{p}documentType", "only the leader's document is recorded")
    reason = _clean(tax_exemption_reason)
    if reason is not None and len(reason) > MAX_EXEMPTION_REASON_LENGTH:
        raise ValidationError(
            f"{p}taxExemptionReason", f"must be at most {MAX_EXEMPTION_REASON_LENGTH} characters"
        )
    return Guest(
        surname=_name(surname, f"{p}surname", 50),
        given_name=_name(given_name, f"{p}givenName", 30),
        sex=sex,
        birth_date=birth_date,
        birth_country_code=birth_country,
        birth_municipality_code=birth_municipality,
        birth_province=birth_prov,
        citizenship_code=_code(citizenship_code, f"{p}citizenshipCode"),
        residence_country_code=residence_country,
        residence_municipality_code=residence_municipality,
        residence_province=residence_prov,
        document_type=doc_type,
        document_number=doc_number,
        document_issue_place_code=doc_place,
        tax_exemption_reason=reason,
    )
