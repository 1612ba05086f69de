"""No text a store cannot hold: U+0000, or an unpaired surrogate.

PostgreSQL's text cannot hold the NUL character. A string with one was accepted,
stored as an event, and then stopped every projector at that event for good (a
donor's name did: each later mutation and query answered PROJECTION_LAG). An
unpaired surrogate (JSON's "\\ud800" alone) is no character at all: UTF-8 cannot
encode it, so sealing a case note with one failed as an internal error. The gateway
refuses both before execution, whatever field they are in: in a literal of the query
(a validation rule) and in the variables (CheckedDocuments), over HTTP and WebSocket
alike. The error names no value.
"""

from __future__ import annotations

import re
from typing import Any

from graphql import ASTValidationRule, GraphQLError, StringValueNode

UNSTORABLE_MESSAGE = (
    "text may not contain the NUL character (U+0000) or an unpaired surrogate (U+D800 to U+DFFF)"
)
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def unstorable_text_error(node: StringValueNode | None = None) -> GraphQLError:
    return GraphQLError(UNSTORABLE_MESSAGE, node, extensions={"code": "BAD_REQUEST"})


def carries_unstorable_text(value: Any) -> bool:
    """Whether a decoded JSON value holds unstorable text in any string, key or item."""
    if isinstance(value, str):
        return _UNSTORABLE.search(value) is not None
    if isinstance(value, dict):
        return any(
            carries_unstorable_text(k) or carries_unstorable_text(v) for k, v in value.items()
        )
    if isinstance(value, list):
        return any(carries_unstorable_text(item) for item in value)
    return False


class NoUnstorableText(ASTValidationRule):
    def enter_string_value(self, node: StringValueNode, *_args: object) -> None:
        if _UNSTORABLE.search(node.value):
            self.report_error(unstorable_text_error(node))
