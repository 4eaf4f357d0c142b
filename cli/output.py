"""Plain-text tables that line up with Korean text, and JSON for machines."""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any, TextIO

ELLIPSIS = "…"


def display_width(text: str) -> int:
    """Terminal columns `text` takes: Hangul and other East Asian wide or
    full-width characters take two, combining marks none."""
    width = 0
    for character in text:
        if unicodedata.combining(character):
            continue
        width += 2 if unicodedata.east_asian_width(character) in ("W", "F") else 1
    return width


def fit(text: str, width: int) -> str:
    """`text` on one line, cut to at most `width` columns with an ellipsis."""
    text = " ".join(text.split())
    if display_width(text) <= width:
        return text
    kept: list[str] = []
    used = 0
    for character in text:
        columns = display_width(character)
        if used + columns > width - 1:
            break
        kept.append(character)
        used += columns
    return "".join(kept) + ELLIPSIS


def fit_around(text: str, width: int, anchor: str) -> str:
    """`fit`, but when `anchor` (e.g. a highlight mark) would be cut off, drop
    text on the left instead so that it shows about a third of the way in."""
    text = " ".join(text.split())
    position = text.find(anchor)
    if position < 0 or display_width(text[:position]) < width // 3:
        return fit(text, width)
    start = position
    while start > 0 and display_width(text[start - 1 : position]) <= width // 3:
        start -= 1
    return fit(ELLIPSIS + text[start:].lstrip(ELLIPSIS), width)


def pad(text: str, width: int) -> str:
    """`text` followed by spaces up to `width` columns."""
    return text + " " * max(width - display_width(text), 0)


def render_table(
    headers: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    max_widths: dict[int, int] | None = None,
) -> str:
    """Rows under headers in aligned columns two spaces apart; cells go through
    `format_cell` and are cut to ``max_widths[column index]`` columns if given."""
    limits = max_widths or {}
    cells = [
        [
            fit(format_cell(value), limits[index]) if index in limits else format_cell(value)
            for index, value in enumerate(row)
        ]
        for row in rows
    ]
    widths = [
        max([display_width(header), *(display_width(row[index]) for row in cells)])
        for index, header in enumerate(headers)
    ]
    lines = [
        "  ".join(pad(cell, width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [list(headers), ["-" * width for width in widths], *cells]
    ]
    return "\n".join(lines)


def format_cell(value: Any) -> str:
    """A value as a table cell: times in UTC to the minute, None as empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def to_jsonable(value: Any) -> Any:
    """`value` with datetimes and dates as ISO 8601 strings (UTC offset kept)."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: to_jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(item) for item in value]
    return value


def write_json(value: Any, stream: TextIO) -> None:
    """`value` as indented UTF-8 JSON (Hangul as is, not escaped) and a newline."""
    json.dump(to_jsonable(value), stream, ensure_ascii=False, indent=2)
    stream.write("\n")
