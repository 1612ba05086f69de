"""Alloggiati Web records (TULPS art. 109): one 168-character line per guest + CRLF.

    type(2) arrival(10 dd/mm/yyyy) days(2) surname(50) name(30) sex(1: 1 M, 2 F)
    birth date(10) birth municipality(9, Italy only) birth province(2, Italy only)
    birth country(9) citizenship(9) document type(5) document number(20)
    document issue place(9)

Types: 16 single guest, 17 head of family, 18 group leader, 19 family member,
20 group member. Members follow their leader, with the same arrival date; members
carry no document. Records are validated before they leave the system: an accepted
record cannot be corrected through the service, so a bad one must never be sent.
Validation messages name the record and the field, never its content.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from uuid import UUID

from services.common.errors import ValidationError
from services.hotel.domain.guests import ITALY_CODE, Guest

RECORD_LENGTH = 168
# The portal's file: a line break after every record but the last (a trailing one
# reads as an empty record), its bytes in Latin-1, the letters guests' names may hold.
LINE_END = "\r\n"
FILE_ENCODING = "latin-1"
MAX_DAYS = 30  # the field holds at most 30 days of stay
SINGLE, HEAD_OF_FAMILY, GROUP_LEADER, FAMILY_MEMBER, GROUP_MEMBER = "16", "17", "18", "19", "20"
LEADER_OF = {FAMILY_MEMBER: HEAD_OF_FAMILY, GROUP_MEMBER: GROUP_LEADER}
# Reporting deadlines from the arrival: 24 h, or 6 h when the stay lasts at most 24 h.
DEADLINE = timedelta(hours=24)
SHORT_STAY_DEADLINE = timedelta(hours=6)

# (name, width) in record order; the widths add up to RECORD_LENGTH.
FIELDS: tuple[tuple[str, int], ...] = (
    ("type", 2),
    ("arrival", 10),
    ("days", 2),
    ("surname", 50),
    ("givenName", 30),
    ("sex", 1),
    ("birthDate", 10),
    ("birthMunicipalityCode", 9),
    ("birthProvince", 2),
    ("birthCountryCode", 9),
    ("citizenshipCode", 9),
    ("documentType", 5),
    ("documentNumber", 20),
    ("documentIssuePlaceCode", 9),
)
assert sum(width for _, width in FIELDS) == RECORD_LENGTH

_CODE9 = re.compile(r"^[0-9]{9}$")
_DATE = re.compile(r"^[0-9]{2}/[0-9]{2}/[0-9]{4}$")


@dataclass(frozen=True)
class StayGuest:
    """A guest of a stay, in the order the booking lists them (the leader first)."""

    booking_id: UUID
    position: int
    party_type: str  # FAMILY or GROUP
    party_size: int
    arrival: date
    nights: int
    guest: Guest


def record_type(party_type: str, party_size: int, position: int) -> str:
    if party_size == 1:
        return SINGLE
    if party_type == "GROUP":
        return GROUP_LEADER if position == 0 else GROUP_MEMBER
    return HEAD_OF_FAMILY if position == 0 else FAMILY_MEMBER


def arrived_at(recorded_at: datetime, checked_in_on: date, zone: tzinfo) -> datetime:
    """When the guests arrived, as far as the front desk says: when the check-in was
    recorded, or, for a check-in recorded on a later day than its businessDate, the
    end of that day (the latest they can have arrived). Counted from the recording, a
    check-in typed in a week late was never overdue."""
    end_of_day = datetime.combine(checked_in_on + timedelta(days=1), time(), tzinfo=zone)
    return min(recorded_at, end_of_day)


def nights_reported(arrived_on: date, stay_end: date) -> int:
    """The nights of stay the police report counts: from the day the guests arrived
    (the check-in, not the booked arrival: a late arrival staying one night is a short
    stay) to the end of the stay, at least one."""
    return max((stay_end - arrived_on).days, 1)


def deadline_for(arrived: datetime, nights: int) -> datetime:
    # A one-night stay lasts at most 24 hours (arrival afternoon, departure morning).
    # Real hours: added to the instant, not to the wall clock (an aware datetime plus a
    # timedelta keeps the wall clock, an hour off across a change to or from summer
    # time). Shown in the arrival's own zone.
    hours = SHORT_STAY_DEADLINE if nights <= 1 else DEADLINE
    return (arrived.astimezone(UTC) + hours).astimezone(arrived.tzinfo)


def _fmt(day: date) -> str:
    return day.strftime("%d/%m/%Y")


def format_record(stay: StayGuest) -> str:
    guest = stay.guest
    kind = record_type(stay.party_type, stay.party_size, stay.position)
    with_document = kind in (SINGLE, HEAD_OF_FAMILY, GROUP_LEADER)
    values = {
        "type": kind,
        "arrival": _fmt(stay.arrival),
        "days": f"{min(stay.nights, MAX_DAYS):02d}",
        "surname": guest.surname,
        "givenName": guest.given_name,
        "sex": "1" if guest.sex == "M" else "2",
        "birthDate": _fmt(guest.birth_date),
        "birthMunicipalityCode": guest.birth_municipality_code or "",
        "birthProvince": guest.birth_province or "",
        "birthCountryCode": guest.birth_country_code,
        "citizenshipCode": guest.citizenship_code,
        "documentType": (guest.document_type or "") if with_document else "",
        "documentNumber": (guest.document_number or "") if with_document else "",
        "documentIssuePlaceCode": (guest.document_issue_place_code or "") if with_document else "",
    }
    return "".join(values[name].ljust(width)[:width] for name, width in FIELDS)


def parse_record(line: str) -> dict[str, str]:
    out: dict[str, str] = {}
    offset = 0
    for name, width in FIELDS:
        out[name] = line[offset : offset + width].rstrip()
        offset += width
    return out


def _valid_date(text: str) -> bool:
    if not _DATE.fullmatch(text):
        return False
    try:
        datetime.strptime(text, "%d/%m/%Y")
    except ValueError:
        return False
    return True


def validate_records(records: Sequence[tuple[UUID, str]]) -> None:
    """Refuse the whole file if any record is malformed (booking id and field named)."""
    leader: tuple[UUID, str, str] | None = None  # (booking, type, arrival) of the last leader
    for index, (booking_id, line) in enumerate(records):

        def fail(field: str, message: str, index: int = index, booking: UUID = booking_id) -> None:
            raise ValidationError(f"records[{index}].{field}", f"booking {booking}: {message}")

        if len(line) != RECORD_LENGTH or "\r" in line or "\n" in line:
            fail("length", f"a record is exactly {RECORD_LENGTH} characters")
        values = parse_record(line)
        kind = values["type"]
        if kind not in (SINGLE, HEAD_OF_FAMILY, GROUP_LEADER, FAMILY_MEMBER, GROUP_MEMBER):
            fail("type", "unknown record type")
        if not _valid_date(values["arrival"]):
            fail("arrival", "not a dd/mm/yyyy date")
        if not values["days"].isdigit() or not 1 <= int(values["days"]) <= MAX_DAYS:
            fail("days", f"days of stay are 01 to {MAX_DAYS}")
        for name in ("surname", "givenName"):
            if not values[name]:
                fail(name, "missing")
        if values["sex"] not in ("1", "2"):
            fail("sex", "1 or 2")
        if not _valid_date(values["birthDate"]):
            fail("birthDate", "not a dd/mm/yyyy date")
        for name in ("birthCountryCode", "citizenshipCode"):
            if not _CODE9.fullmatch(values[name]):
                fail(name, "missing or not a 9-digit code")
        born_in_italy = values["birthCountryCode"] == ITALY_CODE
        if born_in_italy != bool(_CODE9.fullmatch(values["birthMunicipalityCode"])):
            fail("birthMunicipalityCode", "present exactly for births in Italy")
        if born_in_italy != (len(values["birthProvince"]) == 2):
            fail("birthProvince", "present exactly for births in Italy")
        if kind in LEADER_OF:
            if (
                values["documentType"]
                or values["documentNumber"]
                or values["documentIssuePlaceCode"]
            ):
                fail("documentType", "members carry no document")
            if leader is None or leader[0] != booking_id or leader[1] != LEADER_OF[kind]:
                fail("type", "a member must follow its leader")
            elif leader[2] != values["arrival"]:
                fail("arrival", "a member arrives with its leader")
        else:
            if len(values["documentType"]) != 5:
                fail("documentType", "missing")
            if not values["documentNumber"]:
                fail("documentNumber", "missing")
            if not _CODE9.fullmatch(values["documentIssuePlaceCode"]):
                fail("documentIssuePlaceCode", "missing or not a 9-digit code")
            leader = (booking_id, kind, values["arrival"]) if kind != SINGLE else None


def build_records(stays: Sequence[StayGuest]) -> list[str]:
    """The day's lines, each booking's leader first, validated."""
    ordered = sorted(stays, key=lambda s: (s.arrival, str(s.booking_id), s.position))
    records = [(s.booking_id, format_record(s)) for s in ordered]
    validate_records(records)
    return [line for _, line in records]


def file_content(records: list[str]) -> str:
    """The records as the portal's file reads them (see LINE_END)."""
    return LINE_END.join(records)


def file_bytes(records: list[str]) -> bytes:
    """The file to save and upload: a 168-character record is 168 bytes only in
    Latin-1 (saved as UTF-8, every accented letter shifts the fields after it)."""
    return file_content(records).encode(FILE_ENCODING)
