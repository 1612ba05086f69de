"""A forget and its key: the key goes once the forget is stored; a forget interrupted
in between is finished by the next attempt; a refused one changes nothing; and the
deleted key is in none of the store's files."""

from __future__ import annotations

from datetime import date
from uuid import UUID

import pytest
from sqlalchemy import delete, select

from gateway.runtime import Runtime
from services.common.auth import Role
from services.common.database import projection_tracking
from services.common.sealing import unseal
from services.common.settings import Settings
from services.welfare_fund.domain import Program
from services.welfare_fund.process import ForgottenKeyShredder
from tests.e2e.conftest import GraphQLClient

NOTE = "Maria Rossi, via Roma 1, Breno: left a violent partner in March"
ENROLL = """
mutation E($input: EnrollBeneficiaryInput!) { enrollBeneficiary(input: $input) {
  __typename ... on Beneficiary { beneficiaryRef caseNote } } }
"""
FORGET = """
mutation F($input: ForgetBeneficiaryInput!) { forgetBeneficiary(input: $input) {
  __typename ... on Beneficiary { forgotten caseNote } ... on Conflict { message } } }
"""


async def _enrolled(officer: GraphQLClient) -> UUID:
    enroll = {"idempotencyKey": "e1", "program": "HOUSING", "enrolledOn": "2025-02-01",
              "caseNote": NOTE}  # fmt: skip
    return UUID(
        (await officer.data(ENROLL, {"input": enroll}))["enrollBeneficiary"]["beneficiaryRef"]
    )


async def test_a_refused_forget_leaves_her_note_readable(app_client: GraphQLClient) -> None:
    """Second reading: with the key deleted while the forget was decided, a forget then
    refused (here: its idempotency key was used for another beneficiary) answered that
    nothing happened, yet her note could never be opened again."""
    officer = app_client.as_person(Role.FUND_OFFICER)
    welfare = app_client.runtime.welfare
    first_ref = await _enrolled(officer)
    enroll = {"idempotencyKey": "e2", "program": "HOUSING", "enrolledOn": "2025-02-01",
              "caseNote": NOTE}  # fmt: skip
    other = UUID(
        (await officer.data(ENROLL, {"input": enroll}))["enrollBeneficiary"]["beneficiaryRef"]
    )
    forget = {"idempotencyKey": "forget-1", "beneficiaryRef": str(first_ref)}
    assert (await officer.data(FORGET, {"input": forget}))["forgetBeneficiary"]["forgotten"]
    reused = {"idempotencyKey": "forget-1", "beneficiaryRef": str(other)}
    body = await officer.execute(
        FORGET.replace("Conflict", "IdempotencyKeyReused"), {"input": reused}
    )
    assert body["data"]["forgetBeneficiary"]["__typename"] == "IdempotencyKeyReused", body
    assert not welfare.get_beneficiary(other).forgotten
    sealed = welfare.get_beneficiary(other).case_note_sealed
    assert sealed is not None
    assert unseal(welfare.keys.get(other) or b"", other, sealed) == NOTE


async def test_a_forget_stored_without_its_key_deleted_is_finished_from_the_log(
    app_client: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process that died between storing the event and deleting the key left her
    note readable until someone sent the forget again. The projector finishes it (the
    key shredder follows the log), before the forget's answer is even sent; a later
    attempt, whatever its idempotency key, answers "already forgotten"."""
    officer = app_client.as_person(Role.FUND_OFFICER)
    ref = await _enrolled(officer)
    welfare = app_client.runtime.welfare
    with monkeypatch.context() as patched:  # the forget's own delete never runs
        patched.setattr(welfare.keys, "delete", lambda *_args, **_kwargs: None)
        first = {"idempotencyKey": "forget-1", "beneficiaryRef": str(ref)}
        assert (await officer.data(FORGET, {"input": first}))["forgetBeneficiary"]["forgotten"]
        assert welfare.get_beneficiary(ref).case_note_sealed is not None
        assert welfare.keys.get(ref) is None

    again = {"idempotencyKey": "forget-2", "beneficiaryRef": str(ref)}
    answer = (await officer.data(FORGET, {"input": again}))["forgetBeneficiary"]
    assert answer["__typename"] == "Conflict", answer
    assert welfare.keys.get(ref) is None


def test_a_forget_left_unfinished_before_an_upgrade_is_finished_at_the_next_start(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store an earlier release followed to its head, whose forget died before
    deleting the key, and which had no key shredder: the first runtime of this release
    deletes the key as it starts, and the shredder starts where the read models are
    (from event 0 its walk of the log held back every read-your-writes wait)."""
    first = Runtime(settings)
    try:
        beneficiary = first.welfare.enroll(
            key="e1", actor="person:fo", program=Program.HOUSING, enrolled_on=date(2025, 2, 1),
            case_note=NOTE,
        ).result  # fmt: skip
        # As the earlier release: no delete after the forget, no shredder.
        monkeypatch.setattr(first.welfare.keys, "delete", lambda *_args, **_kwargs: None)
        monkeypatch.setattr(first.welfare.keys, "delete_existing", lambda *_args: 0)
        first.welfare.forget(key="f1", actor="person:fo", beneficiary_id=beneficiary.id)
        first.projector.run_until_caught_up()
        with first.sync_engine.begin() as conn:
            conn.execute(
                delete(projection_tracking).where(
                    projection_tracking.c.projection == ForgottenKeyShredder.name
                )
            )
        head = first.projector.head()
        assert first.welfare.keys.get(beneficiary.id) is not None  # the earlier release's gap
    finally:
        first.close_sync()
    second = Runtime(settings)
    try:
        assert second.welfare.keys.get(beneficiary.id) is None  # at start, no step yet
        t = projection_tracking.c
        with second.sync_engine.connect() as conn:
            positions = dict(conn.execute(select(t.projection, t.position)).all())
        assert positions[ForgottenKeyShredder.name] == positions["welfare_fund"] == head
    finally:
        second.close_sync()


ENROLL_ANSWER = """
mutation E($input: EnrollBeneficiaryInput!) { enrollBeneficiary(input: $input) {
  __typename ... on Beneficiary { beneficiaryRef } ... on IdempotencyKeyReused { message } } }
"""


async def test_a_key_reused_with_another_case_note_is_refused_not_answered(
    app_client: GraphQLClient,
) -> None:
    """The note is not in the request's hash (no derivative of it is stored): a retry
    with the same key and another note was answered with the first beneficiary, and
    the new note dropped without a word."""
    officer = app_client.as_person(Role.FUND_OFFICER)

    async def enroll(key: str, note: str | None) -> dict[str, str]:
        value = {"idempotencyKey": key, "program": "HOUSING", "enrolledOn": "2025-02-01"}
        if note is not None:
            value["caseNote"] = note
        answer: dict[str, str] = (await officer.data(ENROLL_ANSWER, {"input": value}))[
            "enrollBeneficiary"
        ]
        return answer

    first = await enroll("with-note", NOTE)
    assert (await enroll("with-note", NOTE)) == first  # a retry: the same answer
    without = await enroll("without-note", None)
    assert (await enroll("without-note", None)) == without
    head = app_client.head()
    for key, other in (
        ("with-note", "Referred by the shelter in Breno"),
        ("with-note", None),
        ("without-note", NOTE),
    ):
        assert (await enroll(key, other))["__typename"] == "IdempotencyKeyReused"
    assert app_client.head() == head  # nothing stored
    # Once she is forgotten, her note is gone: a retry has nothing to differ from.
    forget = {"idempotencyKey": "forget", "beneficiaryRef": first["beneficiaryRef"]}
    assert (await officer.data(FORGET, {"input": forget}))["forgetBeneficiary"]["forgotten"]
    assert (await enroll("with-note", NOTE)) == first


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_a_shredded_key_is_in_none_of_the_store_s_files(app_client: GraphQLClient) -> None:
    """Review privacy #3: after forgetBeneficiary the deleted key's bytes were still in
    the SQLite write-ahead log (and, without secure delete, in the database file), and
    they opened her note in the event log."""
    runtime = app_client.runtime
    officer = app_client.as_person(Role.FUND_OFFICER)
    ref = await _enrolled(officer)
    key = runtime.welfare.keys.get(ref)
    assert key is not None
    forgotten = {"idempotencyKey": "forget-1", "beneficiaryRef": str(ref)}
    assert (await officer.data(FORGET, {"input": forgotten}))["forgetBeneficiary"]["forgotten"]
    store = runtime.settings.sqlite_path
    files = [path for path in store.parent.glob(store.name + "*") if path.is_file()]
    assert store in files
    assert [path.name for path in files if key in path.read_bytes()] == []
