"""No U+0000 in any text a request carries.

PostgreSQL's text cannot hold the NUL character. A string with one was accepted,
stored as an event, and then stopped every projector at that event for good (a
donor's name did: each later mutation and query answered PROJECTION_LAG). So the
gateway refuses it before execution, whatever field it is in: in a literal of the
query (a validation rule) and in the variables (CheckedDocuments), over HTTP and
WebSocket alike. The error names no value.
"""

from __future__ import annotations

from typing import Any

from graphql import ASTValidationRule, GraphQLError, StringValueNode

NUL_MESSAGE = "text may not contain the NUL character (U+0000)"


def nul_error(node: StringValueNode | None = None) -> GraphQLError:
    return GraphQLError(NUL_MESSAGE, node, extensions={"code": "BAD_REQUEST"})


def carries_nul(value: Any) -> bool:
    """Whether a decoded JSON value holds U+0000 in any string, key or item."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(carries_nul(k) or carries_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(carries_nul(item) for item in value)
    return False


class NoNulInStrings(ASTValidationRule):
    def enter_string_value(self, node: StringValueNode, *_args: object) -> None:
        if "\x00" in node.value:
            self.report_error(nul_error(node))
