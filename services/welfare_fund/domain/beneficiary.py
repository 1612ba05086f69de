"""Beneficiaries: a pseudonymous reference, a program, attendance. Nothing that names
a person: an optional case note arrives here already encrypted with the
beneficiary's own key (kept outside the event store; see keystore.py)."""

from __future__ import annotations

import calendar
import re
from datetime import date
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from services.common.errors import Conflict, NotFound, ValidationError
from services.welfare_fund.domain.policy import Program, StipendRules, Support

_MONTH_PATTERN = re.compile(r"^(19|20|21)[0-9]{2}-(0[1-9]|1[0-2])$")


def check_month(month: str, *, field: str = "month") -> date:
    """ "2025-06" -> date(2025, 6, 1)."""
    if not isinstance(month, str) or not _MONTH_PATTERN.fullmatch(month):
        raise ValidationError(field, 'a month as "YYYY-MM", e.g. "2025-06"')
    return date(int(month[:4]), int(month[5:]), 1)


class Beneficiary(Aggregate):
    class Enrolled(Aggregate.Created):
        program: str
        enrolled_on: date
        case_note_sealed: str | None

    class AttendanceRecorded(Aggregate.Event):
        month: str
        scheduled_days: int
        attended_days: int
        meals_provided: bool
        part_time: bool
        stipend_cents: int

        def apply(self, aggregate: Any) -> None:
            assert isinstance(aggregate, Beneficiary)
            aggregate.stipends[self.month] = self.stipend_cents

    class StipendCommitted(Aggregate.Event):
        month: str
        disbursement_id: UUID

        def apply(self, aggregate: Any) -> None:
            assert isinstance(aggregate, Beneficiary)
            aggregate.committed_stipends[self.month] = str(self.disbursement_id)

    class StipendReleased(Aggregate.Event):
        month: str

        def apply(self, aggregate: Any) -> None:
            assert isinstance(aggregate, Beneficiary)
            aggregate.committed_stipends.pop(self.month, None)

    class Forgotten(Aggregate.Event):
        def apply(self, aggregate: Any) -> None:
            assert isinstance(aggregate, Beneficiary)
            aggregate.forgotten = True

    def __init__(self, program: str, enrolled_on: date, case_note_sealed: str | None) -> None:
        self.program = Program(program)
        self.enrolled_on = enrolled_on
        self.case_note_sealed = case_note_sealed
        self.stipends: dict[str, int] = {}
        self.committed_stipends: dict[str, str] = {}
        self.forgotten = False

    @classmethod
    def enroll(
        cls, beneficiary_id: UUID, program: Program, enrolled_on: date, case_note_sealed: str | None
    ) -> Beneficiary:
        return cls._create(
            cls.Enrolled,
            id=beneficiary_id,
            program=str(program),
            enrolled_on=enrolled_on,
            case_note_sealed=case_note_sealed,
        )

    @property
    def ref(self) -> str:
        return str(self.id)

    def _check_active(self) -> None:
        if self.forgotten:
            raise Conflict(f"beneficiary {self.ref} was forgotten; nothing new can be recorded")

    def check_within_enrolment(self, month: str, *, on: date | None = None) -> None:
        """Money or attendance for `month`, dated `on`: neither may precede the
        enrolment (a commitment dated before it made the program's balance as of
        then negative)."""
        if check_month(month) < self.enrolled_on.replace(day=1):
            raise ValidationError("month", "is before the beneficiary's enrolment")
        if on is not None and on < self.enrolled_on:
            raise ValidationError("effectiveDate", "is before the beneficiary's enrolment")

    def record_attendance(
        self,
        *,
        month: str,
        scheduled_days: int,
        attended_days: int,
        meals_provided: bool,
        part_time: bool,
        rules: StipendRules,
        support: Support,
        today: date,
    ) -> int:
        """`support` is what the beneficiary's program pays (from the configuration);
        `today` the cooperative's day: a month that has not begun has no attendance."""
        self._check_active()
        if support is not Support.STIPEND:
            raise ValidationError(
                "beneficiaryRef", "attendance is recorded only in programs that pay stipends"
            )
        first_day = check_month(month)
        if first_day > today:
            raise ValidationError("month", "has not begun yet")
        self.check_within_enrolment(month)
        rules.check_within_duration(first_day, self.enrolled_on)
        # The month's own length, not 31: February's 31 scheduled days made 24 days
        # attended look like 77% and pay pro rata instead of in full. And only the
        # internship's days of it: the first month from the enrolment day, the last
        # to the internship's last day (20 days scheduled in a month it ends on the
        # 1st paid a thirteenth full stipend for a twelve-month internship).
        last_of_month = first_day.replace(
            day=calendar.monthrange(first_day.year, first_day.month)[1]
        )
        start = max(first_day, self.enrolled_on)
        end = min(last_of_month, rules.last_day(self.enrolled_on))
        days_in_month = (end - start).days + 1
        if not 1 <= scheduled_days <= days_in_month:
            within = (
                f"the days in {month}"
                if (start, end) == (first_day, last_of_month)
                else f"the internship's days in {month} ({start.isoformat()} to {end.isoformat()})"
            )
            raise ValidationError("scheduledDays", f"must be 1 to {days_in_month}, {within}")
        if not 0 <= attended_days <= scheduled_days:
            raise ValidationError("attendedDays", "must be 0 to the scheduled days")
        if month in self.committed_stipends:
            # A stipend cancelled after a part of it was paid keeps its month (released,
            # the whole stipend could be committed again): "cancel it first" sent the
            # officer to a cancellation already made.
            raise Conflict(
                f"the stipend for {month} is already committed "
                f"(disbursement {self.committed_stipends[month]}); unless it was cancelled "
                "after a part was paid (its month then stays closed), cancel it first"
            )
        stipend_cents = rules.stipend_cents(
            scheduled_days=scheduled_days,
            attended_days=attended_days,
            meals_provided=meals_provided,
            part_time=part_time,
            internship_days=days_in_month,
            month_days=last_of_month.day,
        )
        self.trigger_event(
            self.AttendanceRecorded,
            month=month,
            scheduled_days=scheduled_days,
            attended_days=attended_days,
            meals_provided=meals_provided,
            part_time=part_time,
            stipend_cents=stipend_cents,
        )
        return stipend_cents

    def commit_stipend(self, month: str, disbursement_id: UUID) -> int:
        """Mark the month's stipend committed; returns its amount."""
        self._check_active()
        if month not in self.stipends:
            raise NotFound(f"no attendance recorded for {self.ref} in {month}")
        if month in self.committed_stipends:
            raise Conflict(
                f"the stipend for {month} is already committed "
                f"(disbursement {self.committed_stipends[month]})"
            )
        self.trigger_event(self.StipendCommitted, month=month, disbursement_id=disbursement_id)
        return self.stipends[month]

    def release_stipend(self, month: str) -> None:
        if month in self.committed_stipends:
            self.trigger_event(self.StipendReleased, month=month)

    def forget(self) -> None:
        if self.forgotten:
            raise Conflict(f"beneficiary {self.ref} was already forgotten")
        self.trigger_event(self.Forgotten)
