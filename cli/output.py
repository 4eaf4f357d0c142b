"""Plain-text tables that line up with Korean text, and JSON for machines."""

from __future__ import annotations

import json
import shutil
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, tzinfo
from typing import Any, TextIO

ELLIPSIS = "…"
# Columns between two table columns.
COLUMN_GAP = 2
# A table's text column is never cut narrower than this (nor than its header).
MIN_TEXT_WIDTH = 12
# The width of output that goes to no terminal (a pipe, a file) without $COLUMNS.
DEFAULT_WIDTH = 120


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


def terminal_width() -> int:
    """Columns the output may take: ``$COLUMNS`` when set, else the terminal's width,
    else (output piped) `DEFAULT_WIDTH`."""
    return shutil.get_terminal_size(fallback=(DEFAULT_WIDTH, 24)).columns


def render_table(
    headers: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    width: int | None = None,
    anchors: Mapping[int, str] | None = None,
    zone: tzinfo | None = None,
) -> str:
    """Rows under headers in aligned columns, `COLUMN_GAP` apart, each line at most
    `width` columns (default `terminal_width`) where text allows.

    Cells go through `format_cell` (None blank, times in `zone`) on one line. When the table is too
    wide, its widest text columns (a column with a `str` value: a title, a snippet)
    shrink, widest first, never below `MIN_TEXT_WIDTH` nor their header; their cells
    are cut with an ellipsis by `fit`, or by `fit_around` the mark ``anchors[index]``
    (e.g. a search snippet's highlight). Numbers, dates and times are never cut."""
    values = [list(row) for row in rows]
    cells = [[" ".join(format_cell(value, zone).split()) for value in row] for row in values]
    natural = [
        max([display_width(header), *(display_width(row[index]) for row in cells)])
        for index, header in enumerate(headers)
    ]
    text_columns = {
        index for index in range(len(headers)) if any(isinstance(row[index], str) for row in values)
    }
    floors = {
        index: min(natural[index], max(MIN_TEXT_WIDTH, display_width(headers[index])))
        for index in text_columns
    }
    widths = _shrunk(natural, floors, terminal_width() if width is None else width)
    marks = anchors or {}
    for row in cells:
        for index in text_columns:
            if widths[index] < natural[index]:
                row[index] = (
                    fit_around(row[index], widths[index], marks[index])
                    if index in marks
                    else fit(row[index], widths[index])
                )
    gap = " " * COLUMN_GAP
    lines = [
        gap.join(pad(cell, size) for cell, size in zip(row, widths, strict=True)).rstrip()
        for row in [list(headers), ["-" * size for size in widths], *cells]
    ]
    return "\n".join(lines)


def _shrunk(natural: Sequence[int], floors: Mapping[int, int], width: int) -> list[int]:
    """Column widths for a table of `width` columns at most: one column at a time off
    the widest shrinkable column (`floors`: index -> its least width; the leftmost of
    equals), until the table fits or every one is at its floor."""
    widths = list(natural)
    excess = sum(widths) + COLUMN_GAP * (len(widths) - 1) - width
    while excess > 0:
        shrinkable = [index for index in sorted(floors) if widths[index] > floors[index]]
        if not shrinkable:
            break
        widest = max(shrinkable, key=lambda index: widths[index])
        widths[widest] -= 1
        excess -= 1
    return widths


def format_cell(value: Any, zone: tzinfo | None = None) -> str:
    """A value as a table cell: times to the minute (in `zone`, else as they are),
    None as empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return in_zone(value, zone).strftime("%Y-%m-%d %H:%M")
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def in_zone(moment: datetime, zone: tzinfo | None) -> datetime:
    """An aware `moment` as the same instant in `zone` (None: unchanged)."""
    if zone is None or moment.tzinfo is None:
        return moment
    return moment.astimezone(zone)


def zone_label(zone: tzinfo) -> str:
    """A short name for headers: the zone's abbreviation when it never changes with
    the seasons (``KST``, ``UTC``), else its IANA name (``Europe/Berlin``)."""
    key = str(zone)
    winter, summer = (datetime(2026, month, 1, tzinfo=zone).tzname() for month in (1, 7))
    return winter if winter and winter == summer else key


def zone_description(zone: tzinfo) -> str:
    """The zone for a sentence: ``KST, Asia/Seoul``, ``UTC``, ``Europe/Berlin``."""
    label, key = zone_label(zone), str(zone)
    return label if label == key else f"{label}, {key}"


def to_jsonable(value: Any, zone: tzinfo | None = None) -> Any:
    """`value` with datetimes and dates as ISO 8601 strings, times in `zone` (else as
    they are) with their UTC offset (``2026-11-24T08:30:00+09:00``)."""
    if isinstance(value, datetime):
        return in_zone(value, zone).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: to_jsonable(item, zone) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(item, zone) for item in value]
    return value


def write_json(value: Any, stream: TextIO, zone: tzinfo | None = None) -> None:
    """`value` as indented UTF-8 JSON (Hangul as is, not escaped) and a newline;
    times in `zone`."""
    json.dump(to_jsonable(value, zone), stream, ensure_ascii=False, indent=2)
    stream.write("\n")
