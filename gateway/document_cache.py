"""Parse and validate each distinct query text once per schema.

A till sends the same `ringSale` text hundreds of times a day; parsing and validating
it (with the depth, alias, token and introspection rules) was measured at a sixth of
the mutation's time under load. strawberry's own ParserCache/ValidationCache cannot be
used here: they key on the validation rules, and the limiters build new rule classes
for every request, so they would never hit.

Only documents that parsed and validated without error are kept; the rules are fixed
when the schema is built, so a kept document has passed the same rules a new parse
would apply. Invalid queries are parsed and refused every time, as before. The cache
is bounded (least recently used out), so many distinct texts cost memory only up to
`max_documents`.

The limits (depth, aliases, tokens, no introspection in production) are applied by
the same extension, with rule classes built once per schema: strawberry's limiter
extensions each build a new rule class for every request, and each extension adds
context managers to every request; together they were a sixth of a trivial
request's CPU in a worker. A cached document skips them, as it skips validation.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from graphql import (
    BREAK,
    ASTValidationRule,
    DocumentNode,
    GraphQLError,
    OperationDefinitionNode,
    OperationType,
    Visitor,
    visit,
)
from strawberry.extensions import SchemaExtension

from gateway.unstorable_text import carries_unstorable_text, unstorable_text_error


class DocumentCache:
    def __init__(self, max_documents: int) -> None:
        self.max_documents = max_documents
        self._documents: OrderedDict[str, DocumentNode] = OrderedDict()

    def get(self, query: str) -> DocumentNode | None:
        document = self._documents.get(query)
        if document is not None:
            self._documents.move_to_end(query)
        return document

    def keep(self, query: str, document: DocumentNode) -> None:
        self._documents[query] = document
        self._documents.move_to_end(query)
        while len(self._documents) > self.max_documents:
            self._documents.popitem(last=False)

    def __len__(self) -> int:
        return len(self._documents)

    def extension(
        self, rules: Sequence[type[ASTValidationRule]], max_tokens: int | None
    ) -> Callable[[], SchemaExtension]:
        """A factory for the schema's `extensions` (one instance per request) that
        applies `rules` and `max_tokens` to the documents it has not seen."""
        limits = _Limits(tuple(rules), max_tokens)
        return lambda: CheckedDocuments(self, limits)


@dataclass(frozen=True)
class _Limits:
    rules: tuple[type[ASTValidationRule], ...]
    max_tokens: int | None


class CheckedDocuments(SchemaExtension):
    def __init__(self, cache: DocumentCache, limits: _Limits) -> None:
        super().__init__()
        self.cache = cache
        self.limits = limits
        self.hit = False

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        document = self.cache.get(context.query) if context.query is not None else None
        if document is not None:
            # strawberry parses only when no document is set yet.
            context.graphql_document = document
            self.hit = True
        else:
            context.validation_rules = context.validation_rules + self.limits.rules
            if self.limits.max_tokens is not None:
                context.parse_options["max_tokens"] = self.limits.max_tokens
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        if carries_unstorable_text(context.variables):
            # Errors set here are the answer: strawberry then neither validates nor
            # executes (gateway/unstorable_text.py).
            context.pre_execution_errors = [unstorable_text_error()]
        elif (
            context._provided_operation_name is None
            and _operation_count(context.graphql_document) > 1
        ):
            # strawberry ran the first one (its `operation_name` falls back to the
            # first operation's, hence the field it was given); the spec says refuse.
            context.pre_execution_errors = [
                GraphQLError(
                    "Must provide operation name if query contains multiple operations.",
                    extensions={"code": "BAD_REQUEST"},
                )
            ]
        elif self.hit:
            # strawberry validates only while `pre_execution_errors` is None.
            context.pre_execution_errors = []
        yield
        if (
            not self.hit
            and context.query is not None
            and context.graphql_document is not None
            and context.pre_execution_errors == []
            and not _mutation_with_typed_text(context.graphql_document)
        ):
            self.cache.keep(context.query, context.graphql_document)


def _mutation_with_typed_text(document: DocumentNode) -> bool:
    """A mutation with text typed inline, not in variables: a case note, a guest's name
    or document number would stay in the cache (the query text is its key) after
    forgetBeneficiary or eraseGuestData. Such a text is one request's anyway, seldom
    sent again; a till's ringSale, with variables, is what the cache is for."""
    if not any(
        isinstance(d, OperationDefinitionNode) and d.operation is OperationType.MUTATION
        for d in document.definitions
    ):
        return False
    found = False

    class TypedText(Visitor):
        def enter_string_value(self, *_args: object) -> object:
            nonlocal found
            found = True
            return BREAK

    visit(document, TypedText())
    return found


def _operation_count(document: DocumentNode | None) -> int:
    if document is None:
        return 0
    return sum(isinstance(d, OperationDefinitionNode) for d in document.definitions)
