"""Column types shared by the archive's tables: UTC timestamps and cleaned text."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.types import DateTime, Text, TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that goes in and comes out as a timezone-aware UTC `datetime`.

    Binding a naive datetime raises `ValueError`: a naive value's zone is a guess,
    and a guessed zone silently shifts publication times by hours.  Aware values
    in any zone are converted to UTC.  PostgreSQL stores them as ``timestamptz``;
    SQLite has no time zone support, so it stores naive UTC in SQLAlchemy's text
    form (``YYYY-MM-DD HH:MM:SS.ffffff``), which also sorts correctly as text.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"UTCDateTime expects a datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
            raise ValueError(f"naive datetime {value.isoformat()} has no time zone; refusing")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            # SQLite's DATETIME text form drops any offset; store the UTC wall time.
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            # Only SQLite hands back naive values, and we stored them as UTC.
            return value.replace(tzinfo=UTC)
        # PostgreSQL answers in the session's TimeZone; normalise.
        return value.astimezone(UTC)


# C0 and C1 control characters but tab and newline, and lone surrogates: PostgreSQL
# refuses NUL in text and surrogates in UTF-8, and none of them belong in an archive.
_UNWANTED = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def clean_text(value: str) -> str:
    """`value` without control characters (tab and newline kept); a lone surrogate
    becomes U+FFFD.  The one cleaning every text bound for the database goes through."""
    if _UNWANTED.search(value) is None:
        return value
    return _UNWANTED.sub(_replacement, value)


def _replacement(match: re.Match[str]) -> str:
    return "\ufffd" if "\ud800" <= match.group() <= "\udfff" else ""


class CleanText(TypeDecorator[str]):
    """TEXT whose every bound value is passed through `clean_text`.

    The one boundary where text meets the database: a NUL byte in a response
    header or a page would otherwise make PostgreSQL refuse the whole statement
    (SQLite would store it), and a value is stored alike on both backends.
    Lookups are cleaned the same way, so they find what was stored.
    """

    impl = Text()
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return clean_text(value if isinstance(value, str) else str(value))


# The longest URL kept as a key (a primary key or an indexed column), in UTF-8
# bytes.  A PostgreSQL btree refuses entries over about 2,700 bytes (an eighth
# of a page); the cap holds on SQLite too, so both backends keep the same rows.
MAX_KEY_BYTES = 2048


class ValueRefused(ValueError):
    """A value the archive refuses to store (e.g. a key longer than `MAX_KEY_BYTES`)."""


def fits_key(value: str) -> bool:
    """Whether `value` is short enough to be a key (`MAX_KEY_BYTES`)."""
    return len(value.encode("utf-8", "surrogatepass")) <= MAX_KEY_BYTES


def require_key(value: str, what: str) -> str:
    """`value` if it fits in an index as a key, else `ValueRefused` naming `what`."""
    size = len(value.encode("utf-8", "surrogatepass"))
    if size > MAX_KEY_BYTES:
        raise ValueRefused(f"{what} of {size} bytes is longer than {MAX_KEY_BYTES}: {value[:80]}…")
    return value


def fit_key(value: str) -> str:
    """`value` cut to at most `MAX_KEY_BYTES` (for a record that must be kept,
    such as a problem's URL, where refusing would lose the record itself)."""
    data = value.encode("utf-8", "surrogatepass")
    if len(data) <= MAX_KEY_BYTES:
        return value
    return data[: MAX_KEY_BYTES - 3].decode("utf-8", "ignore") + "…"
