"""Parsed and validated documents are reused per query text; refused ones never are."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import strawberry.schema.schema as strawberry_schema
from graphql import DocumentNode, parse

from gateway.document_cache import DocumentCache
from gateway.schema import build_schema
from tests.conftest import make_settings

TYPENAME = "{ __typename }"


@pytest.fixture
def parse_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    original = strawberry_schema.parse  # type: ignore[attr-defined]

    def counting_parse(source: Any, **options: Any) -> DocumentNode:
        calls.append(str(source))
        return original(source, **options)

    monkeypatch.setattr(strawberry_schema, "parse", counting_parse)
    return calls


async def test_a_repeated_query_is_parsed_and_validated_once(
    tmp_path: Path, parse_calls: list[str]
) -> None:
    schema = build_schema(make_settings("sqlite", tmp_path))
    for _ in range(3):
        result = await schema.execute(TYPENAME)
        assert result.errors is None
        assert result.data == {"__typename": "Query"}
    assert parse_calls == [TYPENAME]


async def test_a_refused_query_is_refused_every_time_and_not_kept(
    tmp_path: Path, parse_calls: list[str]
) -> None:
    schema = build_schema(make_settings("sqlite", tmp_path, max_query_depth=2))
    too_deep = "{ journal { nodes { lines { account } } } }"
    for _ in range(2):
        result = await schema.execute(too_deep)
        assert result.errors is not None
        assert "exceeds maximum operation depth" in result.errors[0].message
    assert parse_calls == [too_deep, too_deep]


async def test_each_schema_keeps_its_own_documents(tmp_path: Path, parse_calls: list[str]) -> None:
    # A document accepted under lax limits must not pass a stricter schema unchecked.
    lax = build_schema(make_settings("sqlite", tmp_path / "lax"))
    strict = build_schema(make_settings("sqlite", tmp_path / "strict", max_query_depth=2))
    query = "{ journal { nodes { lines { account } } } }"
    accepted = await lax.execute(query)  # no store behind it: it fails only when run
    assert not any("depth" in error.message for error in accepted.errors or [])
    result = await strict.execute(query)
    assert result.errors is not None
    assert "exceeds maximum operation depth" in result.errors[0].message


def test_the_least_recently_used_document_goes_first() -> None:
    cache = DocumentCache(max_documents=2)
    cache.keep("a", parse("{ a }"))
    cache.keep("b", parse("{ b }"))
    assert cache.get("a") is not None  # a is now the most recently used
    cache.keep("c", parse("{ c }"))
    assert cache.get("b") is None
    assert cache.get("a") is not None
    assert cache.get("c") is not None
    assert len(cache) == 2


async def test_a_mutation_with_text_typed_inline_is_not_kept(
    tmp_path: Path, parse_calls: list[str]
) -> None:
    """Review privacy #4: a case note or a guest's name typed into the query text stayed
    in the cache, keyed by that text, after the person's data was erased."""
    schema = build_schema(make_settings("sqlite", tmp_path))
    inline = (
        'mutation { enrollBeneficiary(input: {idempotencyKey: "e1", program: "HOUSING", '
        'caseNote: "Refuge in Via Segreta 7"}) { __typename } }'
    )
    with_variables = (
        "mutation($i: EnrollBeneficiaryInput!) { enrollBeneficiary(input: $i) { __typename } }"
    )
    note = {"i": {"idempotencyKey": "e1", "program": "HOUSING", "caseNote": "Refuge"}}
    for _ in range(2):
        await schema.execute(inline)  # refused for want of credentials: parsed all the same
        await schema.execute(with_variables, variable_values=note)
    assert parse_calls == [inline, with_variables, inline]
