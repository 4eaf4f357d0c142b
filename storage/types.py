"""Column types shared by the archive's tables."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.types import DateTime, TypeDecorator


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
