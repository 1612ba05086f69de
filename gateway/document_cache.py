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
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator

from graphql import DocumentNode
from strawberry.extensions import SchemaExtension


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

    def extension(self) -> Callable[[], SchemaExtension]:
        """A factory for the schema's `extensions` (one instance per request)."""
        return lambda: CachedDocuments(self)


class CachedDocuments(SchemaExtension):
    def __init__(self, cache: DocumentCache) -> None:
        super().__init__()
        self.cache = cache
        self.hit = False

    def on_parse(self) -> Iterator[None]:
        query = self.execution_context.query
        if query is not None:
            document = self.cache.get(query)
            if document is not None:
                # strawberry parses only when no document is set yet.
                self.execution_context.graphql_document = document
                self.hit = True
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        if self.hit:
            # strawberry validates only while `pre_execution_errors` is None.
            context.pre_execution_errors = []
        yield
        if (
            not self.hit
            and context.query is not None
            and context.graphql_document is not None
            and context.pre_execution_errors == []
        ):
            self.cache.keep(context.query, context.graphql_document)
