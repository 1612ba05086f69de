"""Hotel application service: load, call the aggregates, save (with ledger entries).

Every command that moves money saves the booking's event, the room-night claims it
changes and its journal entries in ONE save, together with the idempotency claim:
all of it commits, or none of it does.
"""

from __future__ import annotations

import contextlib
import hmac
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, JSONTranscoder

from services.common.errors import Conflict, IdempotencyKeyReused, ValidationError
from services.common.eventstore import AsState, CoopApplication, eventsourcing_env
from services.common.idempotency import (
    Decision,
    Outcome,
    execute_idempotent,
    key_hint,
    ref_with_state,
    state_in_ref,
)
from services.common.sealing import KeyStore, keyed_digest, seal, unseal
from services.common.settings import Settings
from services.hotel.domain import (
    CONFIG_ID,
    DEFAULT_POLICIES,
    DEFAULT_ROOMS,
    Booking,
    BookingNotFound,
    Guest,
    GuestFacts,
    HotelConfiguration,
    HotelPolicy,
    HotelPolicyChange,
    IllegalTransition,
    PartyType,
    Room,
    RoomNight,
    booking_id_for_key,
    room_night_id,
)
from services.hotel.domain.accounting import (
    charge_postings,
    checkout_postings,
    closing_postings,
    deposit_postings,
    payment_postings,
)
from services.hotel.domain.config import DEFAULT_ACCOUNTS as ROLE_ACCOUNTS
from services.hotel.domain.config import percent
from services.hotel.domain.folio import DEPOSIT, DEPOSIT_REFUND, REFUND, FolioLine, Payment
from services.ledger.application import ConfiguredAccounts, LedgerApplication
from services.ledger.domain import (
    ENTRY_DATE_FIELD,
    AccountType,
    Cause,
    ChartOfAccounts,
    JournalEntry,
    Posting,
    check_not_kept,
    entry_id_for_cause,
)
from services.ledger.domain.facts import check_not_future

MAX_BOOKINGS_PER_REPORT = 100
# In a guest-sealing command's claim: its guests' identities, digested under the
# booking's key (see `_run`). Claims stored before it have none and replay as before.
IDENTITIES_DIGEST = "identities_digest"


# What configuration snapshots hold besides plain data, encoded as their events' state.
# The audit's verification encodes snapshots the same way, so it registers these too.
SNAPSHOT_TRANSCODINGS = (AsState(HotelPolicy, "hotel_policy"), AsState(Room, "hotel_room"))


class HotelApplication(CoopApplication):
    # The configuration is read by every command and lives for years: snapshot it
    # and keep it (and busy bookings) in the fast-forwarded repository cache.
    snapshotting_intervals: ClassVar[dict[type[Any], int]] = {HotelConfiguration: 50}

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        # Without these the 50th configuration change recorded its event and then
        # failed taking the snapshot (HotelPolicy is not JSON), and so every 50th.
        super().register_transcodings(transcoder)
        for transcoding in SNAPSHOT_TRANSCODINGS:
            transcoder.register(transcoding)

    def __init__(
        self,
        settings: Settings,
        ledger: LedgerApplication,
        guest_keys: KeyStore,
        *,
        create_table: bool = True,
    ) -> None:
        self.ledger = ledger
        # Its role accounts cannot be changed through the API: closed, every later
        # check-out, deposit refund or no-show would be refused for good.
        ledger.keep_open(
            set(ROLE_ACCOUNTS.values()),
            "the hotel posts to it on its own (its role accounts cannot be changed)",
        )
        ledger.keep_open_while_configured(self._vat_accounts_in_use)
        # Guests' identities are sealed under a key per booking (hotel_guest_keys),
        # kept outside the log.
        self.guest_keys = guest_keys
        self.ceiling_cents = settings.amount_ceiling_cents
        # One store, one connection pool (measured: a second pool per process
        # exhausted PostgreSQL's connections under 20 concurrent requests).
        super().__init__(settings, create_table=create_table, share_store_with=ledger)

    def construct_env(self, name: str, env: Any = None) -> Any:
        merged = dict(env or eventsourcing_env(self.settings))
        merged.setdefault("AGGREGATE_CACHE_MAXSIZE", "1000")
        return super().construct_env(name, merged)

    def business_day(self, on: date | None) -> date:
        """The day a front-desk fact is dated: `on`, or today. Back-dating is normal
        (yesterday's dinner posted this morning); a day after today is a mistyped
        year or month, which would otherwise go to the ledger as it is."""
        today = self.today()
        if on is None:
            return today
        check_not_future(on, today, field="businessDate", what="a front-desk fact")
        return on

    # -- configuration -----------------------------------------------------------

    def ensure_configuration(self) -> HotelConfiguration:
        """Seed Hotel Giardino's rooms and policies on an empty store; a no-op later."""
        try:
            return self.configuration()
        except AggregateNotFoundError:
            pass
        config = HotelConfiguration.start()
        for policy in DEFAULT_POLICIES:
            config.set_policy(policy)
        for room in DEFAULT_ROOMS:
            config.define_room(room, ceiling_cents=self.ceiling_cents)
        with contextlib.suppress(IntegrityError):
            self.save(config)  # a collision means another process seeded it first
        return self.configuration()

    def configuration(self, *, read_only: bool = True) -> HotelConfiguration:
        """Commands on bookings only read it: skip the cache's defensive deep copy
        (measured: a fifth of a command's time). Changes ask for `read_only=False`."""
        config: HotelConfiguration = self.repository.get(
            CONFIG_ID, deepcopy_from_cache=not read_only
        )
        return config

    def set_policy(
        self, *, key: str, actor: str, change: HotelPolicyChange
    ) -> Outcome[HotelPolicy]:
        def decide() -> Decision[HotelPolicy]:
            config = self.configuration(read_only=False)
            policy = change.completed_from(config.policy_on(change.sent.effective_from))
            config.set_policy(policy)
            self.ledger.guard_on_chart(config, partial(self._check_vat_accounts, policy))
            # The version may be set again for its date later: a retry answers with
            # what this request set, kept in the claim, not with what replaced it.
            ref = ref_with_state(
                {"effective_from": policy.effective_from.isoformat()}, policy.as_state()
            )
            return Decision((config,), policy, ref)

        def load(ref: Mapping[str, str]) -> HotelPolicy:
            state = state_in_ref(ref)
            if state is not None:
                return HotelPolicy.from_state(state)
            # A claim stored before it kept the state: the version in force on its date.
            return self.configuration().policy_on(date.fromisoformat(ref["effective_from"]))

        return execute_idempotent(
            self,
            key=key,
            operation="setHotelPolicy",
            request={"policy": change.as_request(), "actor": actor},
            decide=decide,
            load_result=load,
            # Releases before HotelPolicyChange fingerprinted the completed version;
            # completed again now, it is the same while its version is in force.
            earlier_requests=lambda: [
                {
                    "policy": change.completed_from(
                        self.configuration().policy_on(change.sent.effective_from)
                    ).as_state(),
                    "actor": actor,
                }
            ],
        )

    def _check_vat_accounts(self, policy: HotelPolicy, chart: ChartOfAccounts) -> None:
        """The VAT accounts the policy's rates post to are open liability accounts of
        the chart: a typo would otherwise surface only at a charge or a check-out."""
        for rate_bp in sorted(set(policy.vat_bp_by_kind.values())):
            code = policy.vat_account(rate_bp)
            check_not_kept(
                code, self.ledger.kept_accounts, field="vatAccounts", context="the hotel"
            )
            account = chart.accounts.get(code)
            if account is None or not account.is_open:
                raise ValidationError(
                    "vatAccounts",
                    f"account {code!r} for the {percent(rate_bp)}% rate is not an open "
                    "account of the chart (open it with openAccount first)",
                )
            if account.account_type is not AccountType.LIABILITY:
                raise ValidationError(
                    "vatAccounts",
                    f"account {code!r} for the {percent(rate_bp)}% rate is not a liability account",
                )

    def _vat_accounts_in_use(self) -> ConfiguredAccounts | None:
        """The VAT accounts of the policies in force on any day a fact can still be dated
        (the front desk posts yesterday's dinner this morning, by yesterday's policy):
        from the books' first open day on. Closed, every charge and check-out at that
        rate on those days would be refused for good."""
        try:
            config = self.configuration()
        except AggregateNotFoundError:  # not seeded yet: it posts nowhere
            return None
        closed_through = self.ledger.chart(read_only=True).closed_through
        first_open_day = self.ledger.limits.books_opened_on
        if closed_through is not None:
            first_open_day = max(first_open_day, closed_through + timedelta(days=1))
        in_use: dict[str, str] = {}
        for policy in config.policies_from(first_open_day):
            for rate_bp in sorted(set(policy.vat_bp_by_kind.values())):
                in_use.setdefault(
                    policy.vat_account(rate_bp),
                    f"the hotel's policy from {policy.effective_from.isoformat()} posts its "
                    f"{percent(rate_bp)}% VAT to it, and facts may still be dated in its days "
                    f"(the books are open from {first_open_day.isoformat()}): name another "
                    "account in vatAccounts, then close the books past its last day",
                )
        return ConfiguredAccounts(CONFIG_ID, config.version, in_use)

    def define_room(self, *, key: str, actor: str, room: Room) -> Outcome[Room]:
        def decide() -> Decision[Room]:
            config = self.configuration(read_only=False)
            config.define_room(room, ceiling_cents=self.ceiling_cents)
            ref = {"number": room.number, "effective_from": room.effective_from.isoformat()}
            # As for the policy: a later defineRoom for the same date replaces this
            # version, and a retry still answers with this one.
            return Decision((config,), room, ref_with_state(ref, room.as_state()))

        def load(ref: Mapping[str, str]) -> Room:
            state = state_in_ref(ref)
            if state is not None:
                return Room.from_state(state)
            # A claim stored before it kept the state: the version defined for its date.
            versions = self.configuration().rooms[ref["number"]]
            return next(
                r for r in versions if r.effective_from.isoformat() == ref["effective_from"]
            )

        return execute_idempotent(
            self,
            key=key,
            operation="defineRoom",
            request={"room": room.as_state(), "actor": actor},
            decide=decide,
            load_result=load,
        )

    # -- bookings ----------------------------------------------------------------

    def get_booking(self, booking_id: UUID) -> Booking:
        return self.get_as(
            Booking, booking_id, BookingNotFound(f"booking {booking_id} does not exist")
        )

    def _load_booking(self, ref: Mapping[str, str]) -> Booking:
        return self.get_booking(UUID(ref["booking_id"]))

    def _room_night(self, room_number: str, night: date) -> RoomNight | None:
        try:
            claim: RoomNight = self.repository.get(room_night_id(room_number, night))
        except AggregateNotFoundError:
            return None
        return claim

    def _release(
        self, booking: Booking, nights: Sequence[date], room_number: str | None = None
    ) -> list[RoomNight]:
        released = []
        for night in nights:
            claim = self._room_night(room_number or booking.room_number, night)
            if claim is not None and claim.booking_id == booking.id:
                claim.release(booking.id)
                released.append(claim)
        return released

    def _claim(self, booking: Booking, nights: Sequence[date]) -> list[RoomNight]:
        return [
            RoomNight.claim(
                self._room_night(booking.room_number, night),
                room_number=booking.room_number,
                night=night,
                booking_id=booking.id,
            )
            for night in nights
        ]

    def _guests_arriving(self, booking: Booking, arrival: date) -> list[GuestFacts]:
        """The booking's guests as facts on another arrival day (ages change): read from
        their identities, opened with the booking's key."""
        if arrival == booking.arrival:
            return booking.guests
        guests = self._guests_on(booking, arrival)
        if guests is None:
            raise IllegalTransition(
                f"{booking.label}: its guests' data cannot be read, so the arrival cannot move",
                booking.status.value,
            )
        return guests

    def _guests_on(self, booking: Booking, day: date) -> list[GuestFacts] | None:
        """The booking's guests as facts on `day`, from their identities; None if
        those cannot be read (erased, or the key is gone)."""
        identities = booking.legacy_identities
        if identities is None and booking.sealed_identities is not None:
            key = self.guest_keys.get(booking.id)
            text = None if key is None else unseal(key, booking.id, booking.sealed_identities)
            identities = None if text is None else json.loads(text)
        if identities is None:
            return None
        return [
            Guest.from_parts(identity, facts).facts(day)
            for identity, facts in zip(identities, booking.guests, strict=True)
        ]

    def _entry(
        self, *, cause_id: str, actor: str, on: date, description: str, postings: list[Posting]
    ) -> JournalEntry:
        with _business_date_named():
            return self.ledger.prepare_entry(
                effective_date=on,
                description=description,
                postings=postings,
                cause=Cause(cause_id, actor),
            )

    def _payment_entry(
        self, booking: Booking, payment: Payment, *, actor: str, on: date, note: str = ""
    ) -> JournalEntry:
        """The entry of the booking's payment, deposit or refund just recorded (its last)."""
        what = {REFUND: "refund", DEPOSIT: "deposit"}.get(payment.kind, "payment")
        policy = self.configuration().policy_on(on)
        return self._entry(
            cause_id=f"hotel:{what}:{booking.id}:{len(booking.payments)}",
            actor=actor,
            on=on,
            description=f"Hotel booking {booking.id}: {payment.method.lower()} {what}{note}",
            postings=(
                deposit_postings(policy, payment)
                if payment.kind == DEPOSIT
                else payment_postings(policy, payment)
            ),
        )

    def _run(
        self,
        *,
        key: str,
        operation: str,
        request: dict[str, Any],
        decide: Callable[[], tuple[Booking, Sequence[Aggregate]]],
        guests: Sequence[Guest] | None = None,
    ) -> Outcome[Booking]:
        """`guests`: for a command that seals them, whose `request` holds their facts
        only. Their identities are bound to the key's claim by a digest under the
        booking's key, so a retry with the same key and a corrected document number is
        a different request (IdempotencyKeyReused), not a replay that drops it."""

        def decision() -> Decision[Booking]:
            booking, others = decide()
            ref = {"booking_id": str(booking.id)}
            digest = None if guests is None else self._identities_digest(booking.id, guests)
            if digest is not None:
                ref[IDENTITIES_DIGEST] = digest
            return Decision((booking, *others), booking, ref)

        def load_result(ref: Mapping[str, str]) -> Booking:
            booking = self._load_booking(ref)
            claimed = ref.get(IDENTITIES_DIGEST)
            if guests is not None and claimed is not None:
                # None once the booking's key is shredded: nothing left to compare.
                digest = self._identities_digest(booking.id, guests)
                if digest is not None and not hmac.compare_digest(digest, claimed):
                    raise IdempotencyKeyReused(key_hint(key))
            return booking

        return execute_idempotent(
            self,
            key=key,
            operation=operation,
            request=request,
            decide=decision,
            load_result=load_result,
        )

    def _identities_digest(self, booking_id: UUID, guests: Sequence[Guest]) -> str | None:
        key = self.guest_keys.get(booking_id)
        if key is None:
            return None
        identities = json.dumps([g.identity_state() for g in guests], sort_keys=True, default=str)
        return keyed_digest(key, booking_id, identities)

    def create_booking(
        self,
        *,
        key: str,
        actor: str,
        room_number: str,
        arrival: date,
        departure: date,
        guests: Sequence[Guest],
        party_type: PartyType = PartyType.FAMILY,
        nightly_rate_cents: int | None = None,
        deposit_cents: int | None = None,
        deposit_method: str = "CARD",
        on: date | None = None,
    ) -> Outcome[Booking]:
        booking_id = booking_id_for_key(key)

        def decide() -> tuple[Booking, Sequence[Aggregate]]:
            if booking_id in self.repository:
                # A retry (the booking was saved with the key's claim, which answers
                # it): deciding again would seal the guests under the booking's key,
                # or create a new key for a booking whose key an erasure deleted.
                raise Conflict(f"booking {booking_id} was already created with this key")
            config = self.configuration()
            booked_on = self.business_day(on)
            booking = Booking.create(
                config,
                booking_id=booking_id,
                room_number=room_number,
                arrival=arrival,
                departure=departure,
                guests=guests,
                seal_identities=self._identity_sealer(booking_id),
                party_type=party_type,
                nightly_rate_cents=nightly_rate_cents,
                deposit_cents=deposit_cents,
                deposit_method=deposit_method,
                booked_on=booked_on,
                ceiling_cents=self.ceiling_cents,
            )
            others: list[Aggregate] = [*self._claim(booking, booking.nights)]
            if booking.payments:
                deposit = booking.payments[0]
                others.append(
                    self._entry(
                        cause_id=f"hotel:deposit:{booking_id}",
                        actor=actor,
                        on=booked_on,
                        description=f"Hotel booking {booking_id}: deposit taken",
                        postings=deposit_postings(config.policy_on(booked_on), deposit),
                    )
                )
            return booking, others

        return self._run(
            key=key,
            operation="createBooking",
            request={
                "room_number": room_number,
                "arrival": arrival.isoformat(),
                "departure": departure.isoformat(),
                # Facts only: the claim (and its hash) outlives an erasure, and a hash
                # of a name and birth date can be confirmed by anyone who guesses them.
                "guests": [g.facts(arrival).as_state() for g in guests],
                "party_type": party_type.value,
                "nightly_rate_cents": nightly_rate_cents,
                "deposit_cents": deposit_cents,
                "deposit_method": deposit_method,
                "on": on.isoformat() if on else None,
                "actor": actor,
            },
            decide=decide,
            guests=guests,
        )

    def _identity_sealer(self, booking_id: UUID) -> Callable[[list[dict[str, Any]]], str]:
        """Seals guests' identities under the booking's own key (created on first use;
        an erasure deletes it)."""

        def seal_identities(identities: list[dict[str, Any]]) -> str:
            key = self.guest_keys.get_or_create(booking_id)
            return seal(key, booking_id, json.dumps(identities))

        return seal_identities

    def change_guests(
        self,
        *,
        key: str,
        actor: str,
        booking_id: UUID,
        guests: Sequence[Guest],
        party_type: PartyType | None = None,
        on: date | None = None,
    ) -> Outcome[Booking]:
        """Replace the guest list (Booking.change_guests); `party_type` None keeps it."""
        # Facts only in the request, as for createBooking; aged on the booking's
        # arrival as it is now (a retry comes seconds later, not after a move).
        arrival = self.get_booking(booking_id).arrival

        def decide() -> tuple[Booking, Sequence[Aggregate]]:
            booking = self.get_booking(booking_id)
            booking.change_guests(
                self.configuration(),
                guests=guests,
                party_type=booking.party_type if party_type is None else party_type,
                seal_identities=self._identity_sealer(booking_id),
                on=self.business_day(on),
                ceiling_cents=self.ceiling_cents,
            )
            return booking, ()

        return self._run(
            key=key,
            operation="changeGuests",
            request={
                **_request(booking_id, on, actor),
                "guests": [g.facts(arrival).as_state() for g in guests],
                "party_type": None if party_type is None else party_type.value,
            },
            decide=decide,
            guests=guests,
        )

    def check_in(
        self, *, key: str, actor: str, booking_id: UUID, on: date | None = None
    ) -> Outcome[Booking]:
        def check_in(booking: Booking, config: HotelConfiguration, day: date) -> None:
            # A late arrival: the guests' ages on the day they came (a child who turned
            # the exemption age meanwhile pays the tourist tax). Unreadable identities
            # leave the booked facts: the guests are here, the check-in goes ahead.
            late = None if day <= booking.arrival else self._guests_on(booking, day)
            booking.check_in(config, on=day, guests_on_arrival=late)

        return self._unposted_step(
            "checkIn",
            check_in,
            key=key,
            actor=actor,
            booking_id=booking_id,
            on=on,
        )

    def undo_check_in(
        self, *, key: str, actor: str, booking_id: UUID, on: date | None = None
    ) -> Outcome[Booking]:
        """A check-in made by mistake, taken back (Booking.undo_check_in)."""

        def undo(booking: Booking, config: HotelConfiguration, day: date) -> None:
            late = booking.checked_in_on not in (None, booking.arrival)
            booking.undo_check_in(
                config,
                on=day,
                today=self.today(),
                guests_on_arrival=self._guests_on(booking, booking.arrival) if late else None,
            )

        return self._unposted_step(
            "undoCheckIn",
            undo,
            key=key,
            actor=actor,
            booking_id=booking_id,
            on=on,
        )

    def _unposted_step(
        self,
        operation: str,
        step: Callable[[Booking, HotelConfiguration, date], None],
        *,
        key: str,
        actor: str,
        booking_id: UUID,
        on: date | None,
    ) -> Outcome[Booking]:
        """A lifecycle step that posts nothing: the booking alone is saved."""

        def decide() -> tuple[Booking, Sequence[Aggregate]]:
            booking = self.get_booking(booking_id)
            step(booking, self.configuration(), self.business_day(on))
            return booking, ()

        return self._run(
            key=key,
            operation=operation,
            request=_request(booking_id, on, actor),
            decide=decide,
        )

    def change_stay(
        self,
        *,
        key: str,
        actor: str,
        booking_id: UUID,
        arrival: date | None = None,
        departure: date | None = None,
        room_number: str | None = None,
        nightly_rate_cents: int | None = None,
        on: date | None = None,
    ) -> Outcome[Booking]:
        """What is not given stays as it is (the agreed rate too, in another room)."""

        def decide() -> tuple[Booking, Sequence[Aggregate]]:
            config = self.configuration()
            booking = self.get_booking(booking_id)
            day = self.business_day(on)
            new_arrival = booking.arrival if arrival is None else arrival
            old_room, old_nights = booking.room_number, set(booking.nights)
            booking.change_stay(
                config,
                arrival=new_arrival,
                departure=booking.departure if departure is None else departure,
                room_number=booking.room_number if room_number is None else room_number,
                nightly_rate_cents=(
                    booking.nightly_rate_cents if nightly_rate_cents is None else nightly_rate_cents
                ),
                guests=self._guests_arriving(booking, new_arrival),
                on=day,
                ceiling_cents=self.ceiling_cents,
                today=self.today(),
            )
            same_room = booking.room_number == old_room
            kept = old_nights & set(booking.nights) if same_room else set()
            released = self._release(booking, sorted(old_nights - kept), old_room)
            claimed = self._claim(booking, sorted(set(booking.nights) - kept))
            return booking, (*released, *claimed)

        return self._run(
            key=key,
            operation="changeStay",
            request={
                **_request(booking_id, on, actor),
                "arrival": arrival.isoformat() if arrival else None,
                "departure": departure.isoformat() if departure else None,
                "room_number": room_number,
                "nightly_rate_cents": nightly_rate_cents,
            },
            decide=decide,
        )

    def post_charge(
        self,
        *,
        key: str,
        actor: str,
        booking_id: UUID,
        kind: str,
        description: str,
        amount_cents: int,
        on: date | None = None,
    ) -> Outcome[Booking]:
        def decide() -> tuple[Booking, Sequence[Aggregate]]:
            config = self.configuration()
            booking = self.get_booking(booking_id)
            day = self.business_day(on)
            line = booking.post_charge(
                config,
                kind=kind,
                description=description,
                amount_cents=amount_cents,
                on=day,
                ceiling_cents=self.ceiling_cents,
            )
            number = len(booking.extra_lines)
            entry = self._entry(
                cause_id=f"hotel:charge:{booking_id}:{number}",
                actor=actor,
                on=day,
                # The front desk's description may name a guest: the ledger gets none of it.
                description=f"Hotel booking {booking_id}: {kind.lower()} charge {number}",
                postings=charge_postings(config.policy_on(day), line),
            )
            return booking, (entry,)

        request = _request(booking_id, on, actor)
        request.update(kind=kind, description=description, amount_cents=amount_cents)
        return self._run(key=key, operation="postCharge", request=request, decide=decide)

    def void_charge(
        self,
        *,
        key: str,
        actor: str,
        booking_id: UUID,
        number: int,
        reason: str,
        on: date | None = None,
        refund_method: str | None = None,
    ) -> Outcome[Booking]:
        """Void extra charge `number`: a negative folio line, and the charge's journal
        entry reversed, in one save; after check-out also the refund and its entry
        (a credit note)."""

        def decide() -> tuple[Booking, Sequence[Aggregate]]:
            booking = self.get_booking(booking_id)
            day = self.business_day(on)
            _line, refund = booking.void_charge(
                number=number, reason=reason, on=day, refund_method=refund_method
            )
            with _business_date_named():
                original, reversal = self.ledger.prepare_reversal(
                    entry_id_for_cause(f"hotel:charge:{booking_id}:{number}"),
                    effective_date=day,
                    # As with charges, the front desk's reason stays out of the ledger.
                    description=f"Hotel booking {booking_id}: void of charge {number}",
                    actor=actor,
                )
            if refund is None:
                return booking, (original, reversal)
            refund_entry = self._payment_entry(
                booking, refund, actor=actor, on=day, note=f" of voided charge {number}"
            )
            return booking, (original, reversal, refund_entry)

        request = _request(booking_id, on, actor)
        request.update(number=number, reason=reason, refund_method=refund_method)
        return self._run(key=key, operation="voidCharge", request=request, decide=decide)

    def record_payment(
        self,
        *,
        key: str,
        actor: str,
        booking_id: UUID,
        method: str,
        amount_cents: int,
        on: date | None = None,
        refund: bool = False,
    ) -> Outcome[Booking]:
        def decide() -> tuple[Booking, Sequence[Aggregate]]:
            booking = self.get_booking(booking_id)
            day = self.business_day(on)
            record = booking.record_refund if refund else booking.record_payment
            payment = record(
                method=method, amount_cents=amount_cents, on=day, ceiling_cents=self.ceiling_cents
            )
            return booking, (self._payment_entry(booking, payment, actor=actor, on=day),)

        request = _request(booking_id, on, actor)
        request.update(method=method, amount_cents=amount_cents)
        operation = "recordRefund" if refund else "recordPayment"
        return self._run(key=key, operation=operation, request=request, decide=decide)

    def check_out(
        self, *, key: str, actor: str, booking_id: UUID, on: date | None = None
    ) -> Outcome[Booking]:
        def decide() -> tuple[Booking, Sequence[Aggregate]]:
            config = self.configuration()
            booking = self.get_booking(booking_id)
            day = self.business_day(on)
            released_nights = booking.check_out(config, on=day)
            entry = self._entry(
                cause_id=f"hotel:checkout:{booking_id}",
                actor=actor,
                on=day,
                description=(
                    f"Hotel booking {booking_id}: check-out, "
                    f"{sum(1 for line in booking.stay_lines if line.kind == 'ROOM')} night(s)"
                ),
                postings=checkout_postings(
                    config.policy_on(day), booking.stay_lines, booking.deposit_cents
                ),
            )
            return booking, (entry, *self._release(booking, released_nights))

        return self._run(
            key=key, operation="checkOut", request=_request(booking_id, on, actor), decide=decide
        )

    def cancel_booking(
        self, *, key: str, actor: str, booking_id: UUID, on: date | None = None
    ) -> Outcome[Booking]:
        def decide() -> tuple[Booking, Sequence[Aggregate]]:
            config = self.configuration()
            booking = self.get_booking(booking_id)
            day = self.business_day(on)
            booking.cancel(config, on=day)
            return booking, self._closing(config, booking, "cancel", "cancelled", day, actor)

        return self._run(
            key=key,
            operation="cancelBooking",
            request=_request(booking_id, on, actor),
            decide=decide,
        )

    def mark_no_show(
        self, *, key: str, actor: str, booking_id: UUID, on: date | None = None
    ) -> Outcome[Booking]:
        def decide() -> tuple[Booking, Sequence[Aggregate]]:
            config = self.configuration()
            booking = self.get_booking(booking_id)
            day = self.business_day(on)
            booking.mark_no_show(config, on=day)
            return booking, self._closing(config, booking, "no-show", "no-show", day, actor)

        return self._run(
            key=key,
            operation="markNoShow",
            request=_request(booking_id, on, actor),
            decide=decide,
        )

    def waive_penalty(
        self, *, key: str, actor: str, booking_id: UUID, reason: str, on: date | None = None
    ) -> Outcome[Booking]:
        """Waive what is still due of a no-show penalty; its entry, in the same save,
        takes it back from the penalty revenue and the guest receivable."""

        def decide() -> tuple[Booking, Sequence[Aggregate]]:
            booking = self.get_booking(booking_id)
            day = self.business_day(on)
            waiver = booking.waive_penalty(reason=reason, on=day)
            assert booking.closed_on is not None
            # The accounts the penalty was posted to: those in force at the no-show.
            policy = self.configuration().policy_on(booking.closed_on)
            entry = self._entry(
                cause_id=f"hotel:penalty-waived:{booking.id}",
                actor=actor,
                on=day,
                # As with charges, the front desk's reason stays out of the ledger.
                description=f"Hotel booking {booking.id}: no-show penalty waived",
                postings=charge_postings(policy, waiver),
            )
            return booking, (entry,)

        request = _request(booking_id, on, actor)
        request.update(reason=reason)
        return self._run(key=key, operation="waiveNoShowPenalty", request=request, decide=decide)

    def _closing(
        self,
        config: HotelConfiguration,
        booking: Booking,
        cause: str,
        what: str,
        day: date,
        actor: str,
    ) -> list[Aggregate]:
        released: list[Aggregate] = [*self._release(booking, booking.nights)]
        closing_lines: list[FolioLine] = booking.stay_lines
        refunds = [p for p in booking.payments if p.kind == DEPOSIT_REFUND]
        postings = closing_postings(
            config.policy_on(day),
            deposit_cents=booking.deposit_cents,
            closing_lines=closing_lines,
            refunds=refunds,
        )
        if len(postings) >= 2:  # no deposit and no penalty: no money moved
            released.append(
                self._entry(
                    cause_id=f"hotel:{cause}:{booking.id}",
                    actor=actor,
                    on=day,
                    description=f"Hotel booking {booking.id}: {what}",
                    postings=postings,
                )
            )
        return released

    def erase_guest_data(
        self, *, key: str, actor: str, booking_id: UUID, on: date | None = None
    ) -> Outcome[Booking]:
        """Shred a closed booking's guest identities: record it, then delete the key."""

        def decide() -> tuple[Booking, Sequence[Aggregate]]:
            booking = self.get_booking(booking_id)
            booking.erase_guest_data(on=self.business_day(on))
            return booking, ()

        try:
            outcome = self._run(
                key=key,
                operation="eraseGuestData",
                request=_request(booking_id, on, actor),
                decide=decide,
            )
        except IllegalTransition:
            # "Already erased": if the process died between an earlier request's save
            # and its key delete, this request (whatever its idempotency key) finishes it.
            if self.get_booking(booking_id).guest_data_erased:
                self.guest_keys.delete(booking_id)
            raise
        # Also when the outcome is a retried request's, for the same reason.
        self.guest_keys.delete(booking_id)
        return outcome

    def mark_reported(
        self, *, key: str, actor: str, booking_ids: Sequence[UUID], reported_at: datetime
    ) -> Outcome[list[Booking]]:
        """Record that the Alloggiati Web portal accepted these bookings' records."""
        if not booking_ids:
            raise ValidationError("bookingIds", "name at least one booking")
        if len(booking_ids) > MAX_BOOKINGS_PER_REPORT:
            raise ValidationError("bookingIds", f"at most {MAX_BOOKINGS_PER_REPORT} per call")
        if reported_at.tzinfo is None:
            raise ValidationError("reportedAt", "must carry a UTC offset")
        unique = list(dict.fromkeys(booking_ids))

        def decide() -> Decision[list[Booking]]:
            bookings = [self.get_booking(booking_id) for booking_id in unique]
            now = datetime.now(UTC)
            for booking in bookings:
                booking.mark_reported(reported_at=reported_at, now=now, zone=self.settings.zone)
            ref = {"booking_ids": ",".join(str(b) for b in unique)}
            return Decision(tuple(bookings), bookings, ref)

        def load(ref: Mapping[str, str]) -> list[Booking]:
            return [self.get_booking(UUID(b)) for b in ref["booking_ids"].split(",")]

        return execute_idempotent(
            self,
            key=key,
            operation="markGuestsReported",
            request={
                "booking_ids": [str(b) for b in unique],
                "reported_at": reported_at.isoformat(),
                "actor": actor,
            },
            decide=decide,
            load_result=load,
        )


@contextlib.contextmanager
def _business_date_named() -> Iterator[None]:
    """The hotel's entries and reversals are dated on the command's business day: a
    ledger refusal of that date names the input the front desk sent."""
    try:
        yield
    except ValidationError as error:
        if error.field == ENTRY_DATE_FIELD:
            raise ValidationError("businessDate", error.message) from None
        raise


def _request(booking_id: UUID, on: date | None, actor: str) -> dict[str, Any]:
    return {
        "booking_id": str(booking_id),
        "on": on.isoformat() if on else None,
        "actor": actor,
    }
