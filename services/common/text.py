"""Free text typed by a person: whitespace collapsed, never empty, bounded."""

from __future__ import annotations

from services.common.errors import ValidationError


def collapsed_text(value: str, *, field: str, max_length: int) -> str:
    """Runs of whitespace become one space; errors name the field, never the value."""
    value = " ".join(value.split())
    if not value:
        raise ValidationError(field, "must not be empty")
    if len(value) > max_length:
        raise ValidationError(field, f"must be at most {max_length} characters")
    return value
