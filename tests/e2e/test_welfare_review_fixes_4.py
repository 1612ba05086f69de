"""A forget interrupted between its Forgotten event and the key's deletion (the
process died) is finished by the next attempt, whatever its idempotency key: the
case note in the event log must not stay readable for good."""

from __future__ import annotations

from uuid import UUID

import pytest

from services.common.auth import Role
from services.common.sealing import unseal
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


async def test_an_interrupted_forget_is_finished_by_a_later_attempt(
    app_client: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    officer = app_client.as_person(Role.FUND_OFFICER)
    enroll = {"idempotencyKey": "e1", "program": "HOUSING", "enrolledOn": "2025-02-01",
              "caseNote": NOTE}  # fmt: skip
    ref = UUID(
        (await officer.data(ENROLL, {"input": enroll}))["enrollBeneficiary"]["beneficiaryRef"]
    )
    welfare = app_client.runtime.welfare
    sealed = welfare.get_beneficiary(ref).case_note_sealed
    assert sealed is not None

    def die(_subject: object) -> None:
        raise OSError("the process died here")

    with monkeypatch.context() as patched:
        patched.setattr(welfare.keys, "delete", die)
        body = await officer.execute(
            FORGET, {"input": {"idempotencyKey": "forget-1", "beneficiaryRef": str(ref)}}
        )
        assert body["errors"][0]["extensions"]["code"] == "INTERNAL"
    assert welfare.get_beneficiary(ref).forgotten
    key = welfare.keys.get(ref)
    assert key is not None
    assert unseal(key, ref, sealed) == NOTE  # the window

    # The officer asks again, as a new request: "already forgotten", and finished.
    again = {"idempotencyKey": "forget-2", "beneficiaryRef": str(ref)}
    answer = (await officer.data(FORGET, {"input": again}))["forgetBeneficiary"]
    assert answer["__typename"] == "Conflict", answer
    assert welfare.keys.get(ref) is None


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
