"""The replay's fast comparison of two COPY streams, however the chunks fall."""

from __future__ import annotations

from services.audit.replay import _count_if_same_bytes

ROWS = b"1\\tsale 0\\t100\n2\\tsale 1\\t200\n3\\tsale 2\\t300\n"


def chunks(data: bytes, *sizes: int) -> list[bytes]:
    out, start = [], 0
    for size in sizes:
        out.append(data[start : start + size])
        start += size
    out.append(data[start:])
    return [c for c in out if c]


def test_identical_streams_count_their_rows_whatever_the_chunking() -> None:
    assert _count_if_same_bytes(iter(chunks(ROWS, 5)), iter(chunks(ROWS, 1, 2, 30))) == 3
    assert _count_if_same_bytes(iter([ROWS]), iter(chunks(ROWS, 7, 7, 7))) == 3
    assert _count_if_same_bytes(iter([]), iter([])) == 0


def test_any_difference_is_not_identical() -> None:
    edited = ROWS.replace(b"sale 1", b"sale 9")
    assert _count_if_same_bytes(iter(chunks(ROWS, 4)), iter(chunks(edited, 9))) is None
    shorter = ROWS[: ROWS.rindex(b"3")]
    assert _count_if_same_bytes(iter([ROWS]), iter([shorter])) is None
    assert _count_if_same_bytes(iter([shorter]), iter(chunks(ROWS, 3))) is None
    assert _count_if_same_bytes(iter([]), iter([b"1\\tx\n"])) is None
