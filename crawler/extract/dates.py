"""Date parsing for the formats the sites use. All results are aware UTC datetimes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from email.utils import parsedate_to_datetime

KOREA = timezone(timedelta(hours=9), "KST")

# 2020.06.21 09:00 / 2020-06-21 09:00:00 / 2021. 03. 15 (date only)
_LOCAL = re.compile(
    r"(?P<y>\d{4})\s*[.\-/]\s*(?P<m>\d{1,2})\s*[.\-/]\s*(?P<d>\d{1,2})\.?"
    r"(?:\s+(?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2}))?)?"
)


def parse_iso(value: str | None, zone: tzinfo = KOREA) -> datetime | None:
    """ISO 8601 with an offset (``2021-03-15T01:00:00+00:00``) to UTC.

    A value without an offset (``2021-03-15T10:00:00``) is local time of `zone`, the
    site's (`Site.time_zone`): a site omits the zone only when it means its own local
    time. The default is Korea time, the zone of the declared sites.
    """
    if not value:
        return None
    text = value.strip().replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return parse_local(text, zone)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return parsed.astimezone(UTC)


def parse_local(value: str | None, zone: tzinfo) -> datetime | None:
    """Local time of `zone` without a zone in the text (``2020.06.21 09:00``,
    ``2020-06-21 09:00:00``, ``2021. 03. 15``) to UTC. A date without a time means
    midnight in `zone`."""
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
            tzinfo=zone,
        )
    except ValueError:
        return None
    return local.astimezone(UTC)


def parse_korea_local(value: str | None) -> datetime | None:
    """Korea local time without a zone (``2020.06.21 09:00``, ``2020-06-21 09:00:00``,
    ``2021. 03. 15``) to UTC. A date without a time means midnight Korea time."""
    return parse_local(value, KOREA)


@dataclass(frozen=True, slots=True)
class LocalTime:
    """`parse_local` in one time zone, as a value: a site configured with an IANA
    zone (``ZoneInfo("Asia/Seoul")``) keeps it here, and, unlike a closure, it
    pickles (sites travel to extraction worker processes)."""

    zone: tzinfo

    def __call__(self, value: str | None) -> datetime | None:
        return parse_local(value, self.zone)


def parse_rfc822(value: str | None, zone: tzinfo = KOREA) -> datetime | None:
    """RSS ``pubDate`` (``Mon, 15 Mar 2021 01:00:00 +0000``) to UTC; a date without a
    zone (or with RFC 822's ``-0000``, "zone unknown") is local time of `zone`, the
    site's (default Korea time, the declared sites' zone)."""
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return parsed.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Rfc822Time:
    """`parse_rfc822` with zone-less dates read in one time zone, as a value that
    pickles (see `LocalTime`)."""

    zone: tzinfo

    def __call__(self, value: str | None) -> datetime | None:
        return parse_rfc822(value, self.zone)
