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
# "..., found: {'surname': ...}", "... Did you mean 'surname'? Found: {...}": the value
# runs to the end of the message, and it may hold "; " and capitals itself.
_FOUND = re.compile(r",? (?i:found):? .*$", re.DOTALL)
# "String cannot represent a non string value: <the value>", "Value cannot represent a
# Date: "<the value>". Invalid isoformat string: '<the value>'": the refusal always
# ends the message, and a value's repr may hold any quote, ". " or "; " (a surname
# "D'Angelo" is shown in double quotes), so everything after the kind of fault goes.
_CANNOT_REPRESENT = re.compile(r"(cannot represent [^:.]*?)\s*[:.].*$", re.DOTALL)
# What a scalar's parser said, kept when it is one of these (never the value itself).
_PARSER_FAULTS = (
    "Invalid isoformat string",
    "day is out of range for month",
    "month must be in 1..12",
    "Expected a string",
)
# graphql-core quotes the value in single quotes without escaping any inside it.
_ENUM_VALUE = re.compile(r"Value '.*' does not exist(?= in '\w+' enum)", re.DOTALL)
# "Cannot query field 'beneficiar' on type 'Query'. Did you mean 'beneficiary'?":
# with introspection off, suggestions would map the schema for anyone, unsigned-in.
_SUGGESTION = re.compile(r"\s*Did you mean [^?]*\?")


_OPERATION_REFUSALS = (MissingQueryError, CannotGetOperationTypeError, InvalidOperationTypeError)


def without_values(message: str) -> str:
    """A request error's message without the values it quoted."""
    message = _ENUM_VALUE.sub("The value does not exist", message)
    message = _FOUND.sub("", message)
    return _CANNOT_REPRESENT.sub(_fault_only, message)


def _fault_only(refusal: re.Match[str]) -> str:
    faults = [fault for fault in _PARSER_FAULTS if fault in refusal[0]]
    return refusal[1] + (f". {faults[0]}" if faults else "")


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


def _processed(error: GraphQLError, *, hide_suggestions: bool = False) -> GraphQLError:
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
        message = without_values(error.message)
        return GraphQLError(
            _SUGGESTION.sub("", message) if hide_suggestions else message,
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
    """`hide_suggestions`: take graphql-core's "Did you mean ...?" out of request
    errors (in production, where introspection is off too)."""

    def __init__(self, *, hide_suggestions: bool = False) -> None:
        super().__init__()
        self.hide_suggestions = hide_suggestions

    def _each_processed(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        return [_processed(error, hide_suggestions=self.hide_suggestions) for error in errors]

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is not None and result.errors:
            result.errors = self._each_processed(result.errors)

    def on_stream_result(self, result: StreamExecutionResult) -> Iterator[None]:
        # Over WebSocket each result is sent before the operation ends, so
        # on_operation would process them too late: a subscription's WrongTill went
        # out without its code, and an unexpected error unmasked.
        if isinstance(result, ExecutionResult) and result.errors:
            result.errors = self._each_processed(result.errors)
        yield
