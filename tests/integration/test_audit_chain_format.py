"""Chain format 2: an export withholds a beneficiary's events and still verifies, and a
store chained in format 1 is rechained on upgrade with its old heads still checked."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from datetime import date
from pathlib import Path
from uuid import UUID

import pytest
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    LargeBinary,
    MetaData,
    String,
    Table,
    Uuid,
    insert,
    select,
    text,
)
from typer.testing import CliRunner

from gateway.cli import app as cli
from gateway.runtime import Runtime
from services.audit.domain import (
    CHAIN_FORMAT,
    GENESIS_HASH,
    PublishedHead,
    StoredRecord,
    chain,
    head_id_for,
    link_hash_v1,
    verify,
)
from services.audit.projections.tables import audit_chain, audit_published_heads
from services.audit.store import ChainHead, iter_records, published_heads
from services.common.settings import Settings
from services.ledger.domain import Posting, Side
from services.ledger.domain.donations import DonationMethod
from services.welfare_fund.domain import Beneficiary, DisbursementKind, Program, Stream
from tests.integration.test_audit_chain import events_sql, post
from tests.integration.test_audit_cli_and_exports import cli_env  # noqa: F401 (fixture)

ROOT = Path(__file__).resolve().parents[2]
CASE_NOTE = "Semi-autonomy flat, Via Nascosta 3"


def _records(runtime: Runtime) -> list[StoredRecord]:
    with runtime.audit.read_engine.connect() as conn:
        return list(iter_records(conn, runtime.settings))


def enrol_an_intern(runtime: Runtime, *, attended_days: int, case_note: str | None) -> Beneficiary:
    """One intern enrolled on 1 March 2025 with March's attendance (of 20 days),
    projected."""
    beneficiary = runtime.welfare.enroll(
        key="enrol",
        actor="person:officer",
        program=Program.INTERNSHIP,
        enrolled_on=date(2025, 3, 1),
        case_note=case_note,
    ).result
    runtime.welfare.record_attendance(
        key="attendance",
        actor="person:officer",
        beneficiary_id=beneficiary.id,
        month="2025-03",
        scheduled_days=20,
        attended_days=attended_days,
        meals_provided=False,
        part_time=False,
    )
    runtime.projector.run_until_caught_up()
    return beneficiary


def _fund_with_a_beneficiary(settings: Settings) -> UUID:
    """Income, a policy, one intern with attendance and a committed stipend."""
    runtime = Runtime(settings)
    try:
        runtime.welfare.set_policy(
            key="policy",
            actor="person:officer",
            effective_from=date(2025, 1, 1),
            shares=[(Stream.SHOP, 500_000)],
        )
        runtime.ledger.post_entry(
            key="sale",
            actor="person:till",
            effective_date=date(2025, 3, 3),
            description="Shop sale",
            postings=[
                Posting("1000", Side.DEBIT, 200_000),
                Posting("4100", Side.CREDIT, 200_000),
            ],
        )
        beneficiary = enrol_an_intern(runtime, attended_days=20, case_note=CASE_NOTE)
        runtime.welfare.commit(
            key="stipend",
            actor="person:officer",
            beneficiary_id=beneficiary.id,
            kind=DisbursementKind.STIPEND,
            month="2025-03",
            amount_cents=None,
            committed_on=date(2025, 4, 1),
        )
        runtime.projector.run_until_caught_up()
        return beneficiary.id
    finally:
        runtime.close_sync()


def _run_script(events: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "docs" / "verify_chain.py"), str(events)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_export_withholds_a_beneficiary_and_still_verifies_whole(
    cli_env: Settings,  # noqa: F811
    tmp_path: Path,
) -> None:
    beneficiary_id = _fund_with_a_beneficiary(cli_env)
    out = tmp_path / "export"
    exported = CliRunner().invoke(cli, ["audit", "export", str(out)])
    assert exported.exit_code == 0, exported.output
    events = out / "events.jsonl"
    lines = [json.loads(line) for line in events.read_text().splitlines()]

    # Nothing in the file names her or tells her story: not her id (in any spelling),
    # not her program, months or days, not the commands run on her.
    withheld = [line for line in lines if "withheld" in line]
    shown = [line for line in lines if "withheld" not in line]
    plain = "\n".join(
        [json.dumps(line) for line in lines]
        + [base64.b64decode(line["state"]).decode("utf-8", "replace") for line in shown]
    )
    secrets = [str(beneficiary_id), beneficiary_id.hex, "Beneficiary", "attended_days"]
    secrets += ["StipendCommitted", "enrollBeneficiary", "recordAttendance"]
    # The commitment's claim too: its request digest, with her reference and the
    # commitment's readable fields, would confirm which disbursement is hers.
    secrets += ["commitDisbursement"]
    for secret in secrets:
        assert secret not in plain, secret
    # Withheld: her enrolment, attendance and stipend, the commitment that names her,
    # and the idempotency claims of the enrolment, the attendance and the commitment.
    assert len(withheld) == 7
    assert {line["withheld"] for line in withheld} == {"beneficiary"}
    assert all(set(line) == {"position", "withheld", "event_sha256", "hash"} for line in withheld)
    # The fund's own facts stay in full: the money reserved for the commitment.
    topics = {line["topic"].rsplit(":", 1)[-1] for line in shown}
    assert {"WelfareFund.FundsReserved", "JournalEntry.Posted"} <= topics

    # The auditor's script recomputes the whole chain from the file alone.
    script = _run_script(events)
    assert script.returncode == 0, script.stdout + script.stderr
    assert script.stdout.strip().endswith(f"{lines[-1]['position']}:{lines[-1]['hash']}")

    # A withheld event's digest cannot be swapped, nor a shown event's bytes changed.
    victim = withheld[0]["position"]
    forged = [
        {**line, "event_sha256": "00" * 32} if line["position"] == victim else line
        for line in lines
    ]
    events.write_text("".join(json.dumps(line) + "\n" for line in forged))
    refused = _run_script(events)
    assert refused.returncode != 0
    assert f"MISMATCH at position {victim}" in refused.stderr
    other = shown[-1]["position"]
    state = base64.b64encode(base64.b64decode(shown[-1]["state"]) + b" ").decode()
    forged = [{**line, "state": state} if line["position"] == other else line for line in lines]
    events.write_text("".join(json.dumps(line) + "\n" for line in forged))
    refused = _run_script(events)
    assert f"MISMATCH at position {other}" in refused.stderr


DONOR = "Ermenegilda Pozzobon"
REVERSAL_REASON = "Pozzobon asked to stay anonymous"


def test_the_export_withholds_what_names_a_donor_and_still_verifies_whole(
    cli_env: Settings,  # noqa: F811
    tmp_path: Path,
) -> None:
    """A donor's name and a reversal's reason are for admins only (docs/funding.md):
    the export handed to auditors withholds the events (and the claims) that may hold
    them; what names nobody stays in full, and the money stays in the journal."""
    runtime = Runtime(cli_env)
    try:
        funding = runtime.funding
        given = funding.record_donation(
            key="gift", actor="person:admin", amount_cents=25_000, restricted=False,
            method=DonationMethod.CASH, donor=DONOR, purpose=None,
            received_on=date(2025, 3, 8),
        ).result  # fmt: skip
        funding.reverse_donation(
            key="gift-back", actor="person:admin", donation_id=given.id,
            reversed_on=date(2025, 3, 9), reason=REVERSAL_REASON,
        )  # fmt: skip
        funding.record_donation(
            key="anonymous", actor="person:admin", amount_cents=4_000, restricted=False,
            method=DonationMethod.CASH, donor=None, purpose=None,
            received_on=date(2025, 3, 10),
        )  # fmt: skip
        funding.record_in_kind_donation(
            key="coats", actor="person:admin", description="Winter coats",
            fair_value_cents=12_000, restricted=False, donor=DONOR,
            received_on=date(2025, 3, 11),
        )  # fmt: skip
        funding.record_volunteer_time(
            key="hours", actor="person:admin", activity="Sorting", minutes=120,
            hourly_fair_value_cents=1_000, worked_on=date(2025, 3, 12),
        )  # fmt: skip
        runtime.projector.run_until_caught_up()
    finally:
        runtime.close_sync()
    out = tmp_path / "export"
    exported = CliRunner().invoke(cli, ["audit", "export", str(out), "--as-of", "2025-12-31"])
    assert exported.exit_code == 0, exported.output
    events = out / "events.jsonl"
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    shown = [line for line in lines if "withheld" not in line]
    plain = "\n".join(
        [json.dumps(line) for line in lines]
        + [base64.b64decode(line["state"]).decode("utf-8", "replace") for line in shown]
    )
    for secret in (DONOR, "Pozzobon", "recordDonation", "reverseDonation"):
        assert secret not in plain, secret
    # Withheld: the named gift, its reversal, the coats, and the claims of the four
    # commands that may have named someone (three records and a reversal).
    assert [line["withheld"] for line in lines if "withheld" in line] == ["donor"] * 7
    topics = [line["topic"].rsplit(":", 1)[-1] for line in shown]
    # Named by nobody, the anonymous gift and the volunteer's hours stay in full.
    assert topics.count("Donation.Recorded") == 1
    assert topics.count("NonCashContribution.Recorded") == 1
    # The money stays auditable: the gift, its reversal and the anonymous gift.
    journal = (out / "journal.csv").read_text()
    assert journal.count("250.00") == 4
    assert "40.00" in journal
    script = _run_script(events)
    assert script.returncode == 0, script.stdout + script.stderr


def _as_a_format_1_store(runtime: Runtime) -> ChainHead:
    """Turn `runtime`'s store into what the release before chain format 2 left: a
    published head without a format in its event, and the chain and heads tables in
    their old shape, holding format-1 hashes. Returns that head."""
    records = _records(runtime)
    v1_hash = GENESIS_HASH
    for record in records:
        v1_hash = link_hash_v1(v1_hash, record)
    held = ChainHead(records[-1].position, v1_hash)
    runtime.audit.save(
        PublishedHead._create(
            PublishedHead.Published,
            id=head_id_for(held.position),
            position=held.position,
            head_hash=held.hash.hex(),
            actor="person:old-auditor",
            chain_format=1,
        )
    )
    # The old release never wrote the field: take it out of the stored bytes.
    table, position = events_sql(runtime.settings)
    with runtime.sync_engine.begin() as conn:
        last = conn.execute(text(f"SELECT max({position}) FROM {table}")).scalar_one()
        stored = conn.execute(
            text(f"SELECT state FROM {table} WHERE {position} = :p"), {"p": last}
        ).scalar_one()
        state = json.loads(bytes(stored))
        del state["chain_format"]
        conn.execute(
            text(f"UPDATE {table} SET state = :s WHERE {position} = :p"),
            {"s": json.dumps(state, separators=(",", ":")).encode(), "p": last},
        )
    rows = []
    v1_hash = GENESIS_HASH
    for record in _records(runtime):
        v1_hash = link_hash_v1(v1_hash, record)
        rows.append({"position": record.position, "hash": v1_hash})
    old = MetaData()
    old_chain = Table(
        "audit_chain",
        old,
        Column("position", BigInteger, primary_key=True),
        Column("hash", LargeBinary(32), nullable=False),
    )
    Table(
        "audit_published_heads",
        old,
        Column("position", BigInteger, primary_key=True),
        Column("hash", String(64), nullable=False),
        Column("published_at", DateTime(timezone=True), nullable=False),
        Column("actor", String(200), nullable=False),
        Column("head_id", Uuid, nullable=False),
    )
    with runtime.sync_engine.begin() as conn:
        audit_chain.drop(conn)
        audit_published_heads.drop(conn)
        old.create_all(conn)
        conn.execute(insert(old_chain), rows)
    return held


def test_a_format_1_store_is_rechained_and_its_heads_still_verify(settings: Settings) -> None:
    runtime = Runtime(settings)
    try:
        post(runtime, 6)
        runtime.projector.run_until_caught_up()
        held = _as_a_format_1_store(runtime)
    finally:
        runtime.close_sync()

    upgraded = Runtime(settings)  # its projector finds the old shapes and starts over
    try:
        upgraded.projector.run_until_caught_up()
        records = _records(upgraded)
        with upgraded.audit.read_engine.connect() as conn:
            stored = conn.execute(
                select(audit_chain.c.hash, audit_chain.c.chain_format).order_by(
                    audit_chain.c.position
                )
            ).all()
            heads = published_heads(conn)
        assert [bytes(h) for h, _ in stored] == list(chain(records))
        assert {f for _, f in stored} == {CHAIN_FORMAT}
        assert [(h.position, h.hash, h.chain_format) for h in heads] == [
            (held.position, held.hash.hex(), 1)
        ]

        everything = upgraded.audit.verify()
        assert everything.ok, everything.reason
        assert everything.events_checked == len(records)
        assert upgraded.audit.verify(expect=held).ok  # the head the auditor kept
        # No head in the current format yet: a run "from the head" starts at event 0.
        from_head = upgraded.audit.verify(from_published_head=True)
        assert from_head.ok
        assert from_head.start_position == 0

        # A format-1 head someone kept without publishing it is met too.
        kept = GENESIS_HASH
        for record in records[:3]:
            kept = link_hash_v1(kept, record)
        assert upgraded.audit.verify(expect=ChainHead(records[2].position, kept)).ok

        # A format-1 head that the chain does not pass through is still caught.
        wrong = ChainHead(held.position, bytes([held.hash[0] ^ 1]) + held.hash[1:])
        caught = upgraded.audit.verify(expect=wrong)
        assert not caught.ok
        assert caught.first_bad_position == held.position
        unkept = ChainHead(records[2].position, bytes(32))
        assert upgraded.audit.verify(expect=unkept).first_bad_position == records[2].position

        new = upgraded.audit.publish_head(key="head-2", actor="person:auditor").result
        upgraded.projector.run_until_caught_up()
        from_new = upgraded.audit.verify(from_published_head=True)
        assert from_new.ok
        assert from_new.start_position == new.position
        assert new.chain_format == CHAIN_FORMAT
    finally:
        upgraded.close_sync()


def test_a_format_1_hash_is_met_only_where_format_1_is_recomputed() -> None:
    records = [StoredRecord(p, UUID(int=p), 1, "t", b"state %d" % p) for p in range(1, 5)]
    stored = list(zip((r.position for r in records), chain(records), strict=True))
    v1 = GENESIS_HASH
    for record in records[:3]:
        v1 = link_hash_v1(v1, record)
    assert v1 != stored[2][1]  # the two formats differ

    assert verify(records, stored, expected={3: [v1]}, v1_until=3).ok
    assert verify(records, stored, expected={3: [stored[2][1], v1]}, v1_until=4).ok
    # Beyond v1_until, or from a published head, only the current format counts.
    assert not verify(records, stored, expected={3: [v1]}).ok
    later = verify(
        records[1:], stored[1:], start_position=1, start_hash=stored[0][1], expected={3: [v1]},
        v1_until=3,
    )  # fmt: skip
    assert not later.ok
    assert later.first_bad_position == 3


@pytest.mark.parametrize("position", [1, 4])
def test_a_current_format_head_is_met_at_its_position(position: int) -> None:
    records = [StoredRecord(p, UUID(int=p), 1, "t", b"x") for p in range(1, 5)]
    hashes = list(chain(records))
    stored = list(zip(range(1, 5), hashes, strict=True))
    assert verify(records, stored, expected={position: [hashes[position - 1]]}).ok
    assert not verify(records, stored, expected={position: [hashes[position - 2]]}).ok


def test_a_format_1_head_kept_but_never_published_is_met(runtime: Runtime) -> None:
    # Nothing published: only the auditor's copy says the head predates format 2.
    post(runtime, 4)
    runtime.projector.run_until_caught_up()
    records = _records(runtime)
    kept = GENESIS_HASH
    for record in records[:3]:
        kept = link_hash_v1(kept, record)
    assert runtime.audit.verify(expect=ChainHead(records[2].position, kept)).ok
    other = link_hash_v1(kept, records[3])  # the next position's hash, held at this one
    missed = runtime.audit.verify(expect=ChainHead(records[2].position, other))
    assert not missed.ok
    assert missed.first_bad_position == records[2].position
