"""Date parsing for the formats both sites use. All results are aware UTC datetimes."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime

KOREA = timezone(timedelta(hours=9), "KST")

# 2020.06.21 09:00 / 2020-06-21 09:00:00 / 2021. 03. 15 (date only)
_LOCAL = re.compile(
    r"(?P<y>\d{4})\s*[.\-/]\s*(?P<m>\d{1,2})\s*[.\-/]\s*(?P<d>\d{1,2})\.?"
    r"(?:\s+(?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2}))?)?"
)


def parse_iso(value: str | None) -> datetime | None:
    """ISO 8601 with an offset (``2021-03-15T01:00:00+00:00``) to UTC.

    A value without an offset is taken as Korea time: both sites publish from
    Korea, and their metas omit the zone only when they mean local time.
    """
    if not value:
        return None
    text = value.strip().replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return parse_korea_local(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=KOREA)
    return parsed.astimezone(UTC)


def parse_korea_local(value: str | None) -> datetime | None:
    """Korea local time without a zone (``2020.06.21 09:00``, ``2020-06-21 09:00:00``,
    ``2021. 03. 15``) to UTC. A date without a time means midnight Korea time."""
    if not value:
        return None
    match = _LOCAL.search(value)
    if not match:
        return None
    parts = match.groupdict()
    try:
        local = datetime(
            int(parts["y"]),
            int(parts["m"]),
            int(parts["d"]),
            int(parts["H"] or 0),
            int(parts["M"] or 0),
            int(parts["S"] or 0),
            tzinfo=KOREA,
        )
    except ValueError:
        return None
    return local.astimezone(UTC)


def parse_rfc822(value: str | None) -> datetime | None:
    """RSS ``pubDate`` (``Mon, 15 Mar 2021 01:00:00 +0000``) to UTC."""
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:
        # RFC 822 "-0000" means "zone unknown"; the sites are in Korea.
        parsed = parsed.replace(tzinfo=KOREA)
    return parsed.astimezone(UTC)
