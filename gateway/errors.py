"""Error handling at the edge: expected errors keep their message and get a code;
anything else is masked as "Internal error" with an error id that is also logged.

Logged details are the exception type and traceback, never request variables:
those may carry personal data.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterator

from graphql import GraphQLError
from strawberry.exceptions import MissingQueryError
from strawberry.extensions import SchemaExtension
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types import ExecutionResult, StreamExecutionResult

from gateway.runtime import ProjectionLag
from services.common.errors import CoopError, ValidationError
from services.common.graphql import error_code

log = logging.getLogger("coop.gateway.errors")


# graphql-core's coercion and validation messages quote the value they refused: a
# guest's whole input ("found: {'surname': ...}"), a birth date, a document number.
# The answer names the place (".guests[0].birthDate") and the kind of fault only.
_FOUND = re.compile(r",? found:? .*?(?=; [A-Z]|$)", re.DOTALL)
_CANNOT_REPRESENT = re.compile(r"(cannot represent [^:]*?): .*?(?=\. |; |$)", re.DOTALL)
_ENUM_VALUE = re.compile(r"Value '(?:[^'\\]|\\.)*' does not exist")
# A scalar's own parse error follows "cannot represent a Date." and may quote the
# input: "Invalid isoformat string: '<what was typed>'", "got '<part of it>'".
_SCALAR_DETAIL = re.compile(r"(cannot represent an? \w+\.)([^;]*)")
_QUOTED = re.compile(r"(?:,? got)?,?:? ?'(?:[^'\\]|\\.)*'")


_OPERATION_REFUSALS = (MissingQueryError, CannotGetOperationTypeError, InvalidOperationTypeError)


def without_values(message: str) -> str:
    """A request error's message without the values it quoted."""
    message = _ENUM_VALUE.sub("The value does not exist", message)
    message = _CANNOT_REPRESENT.sub(r"\1", message)
    message = _SCALAR_DETAIL.sub(lambda m: m[1] + _QUOTED.sub("", m[2]), message)
    return _FOUND.sub("", message)


def _is_about_the_request(error: GraphQLError) -> bool:
    """Parse, validation and variable-coercion errors, and strawberry's refusals of an
    operation (a query without a document, a mutation over GET): they locate a piece
    of the document or have no cause of ours. An exception out of a subscription's
    source has neither path nor location, and is not one of them."""
    original = error.original_error
    if original is None:
        return True
    if error.path is not None:
        return False
    return bool(error.nodes) or isinstance(original, _OPERATION_REFUSALS)


def _processed(error: GraphQLError) -> GraphQLError:
    original = error.original_error
    if isinstance(original, CoopError):
        coded: dict[str, object] = {"code": error_code(original)}
        if isinstance(original, ValidationError):
            coded["field"] = original.field  # as a union's ValidationError names it
        return GraphQLError(original.message, nodes=error.nodes, path=error.path, extensions=coded)
    if isinstance(original, ProjectionLag):
        return GraphQLError(
            str(original),
            nodes=error.nodes,
            path=error.path,
            extensions={"code": "PROJECTION_LAG", "position": original.position},
        )
    if original is None or _is_about_the_request(error):
        extensions = dict(error.extensions or {})
        extensions.setdefault("code", "BAD_REQUEST")
        return GraphQLError(
            without_values(error.message),
            nodes=error.nodes,
            path=error.path,
            extensions=extensions,
        )
    if isinstance(original, GraphQLError) and original.extensions:
        # Our own coded refusals (UNAUTHENTICATED, FORBIDDEN, RATE_LIMITED) are raised
        # without a place; the error graphql-core located around them has it. Returning
        # the raised one lost `path` and `locations`, so a client could not tell which
        # field of a query was refused.
        return GraphQLError(
            original.message, nodes=error.nodes, path=error.path, extensions=original.extensions
        )
    error_id = uuid.uuid4().hex
    log.error(
        "internal error %s in %s",
        error_id,
        ".".join(str(p) for p in error.path or ["(subscription source)"]),
        exc_info=(type(original), original, original.__traceback__),
    )
    return GraphQLError(
        "Internal error",
        nodes=error.nodes,
        path=error.path,
        extensions={"code": "INTERNAL", "errorId": error_id},
    )


class MaskUnexpectedErrors(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is not None and result.errors:
            result.errors = [_processed(error) for error in result.errors]

    def on_stream_result(self, result: StreamExecutionResult) -> Iterator[None]:
        # Over WebSocket each result is sent before the operation ends, so
        # on_operation would process them too late: a subscription's WrongTill went
        # out without its code, and an unexpected error unmasked.
        if isinstance(result, ExecutionResult) and result.errors:
            result.errors = [_processed(error) for error in result.errors]
        yield
