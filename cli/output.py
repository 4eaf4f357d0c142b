"""Plain-text tables that line up with Korean text, and JSON for machines; times in
the display time zone (the ``DISPLAY_TIME_ZONE`` setting) wherever they are shown."""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable, Sequence
from datetime import date, datetime, tzinfo
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
    zone: tzinfo | None = None,
) -> str:
    """Rows under headers in aligned columns two spaces apart; cells go through
    `format_cell` (times in `zone`) and are cut to ``max_widths[column index]``
    columns if given."""
    limits = max_widths or {}
    cells = [
        [
            fit(format_cell(value, zone), limits[index])
            if index in limits
            else format_cell(value, zone)
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
