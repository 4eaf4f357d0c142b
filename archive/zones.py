"""Time zones by IANA name, for every layer: a site's zone (``SITES_FILE``) and the
zone people read dates in (``DISPLAY_TIME_ZONE``).

On the ground floor with the vocabulary: it imports nothing of the project, so the
crawler, storage and the command line parse zone names the same way.
"""

from __future__ import annotations

from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

# Keys the host's zone database holds that are no place's zone: ``localtime`` is the
# host's own setting (dates would read differently on another machine),
# ``posixrules`` and ``Factory`` are the database's internals.
NOT_ZONES = frozenset({"localtime", "posixrules", "Factory"})


class UnknownZone(ValueError):
    """A name that is no IANA time zone; the message is one line."""


@cache
def zone_names() -> frozenset[str]:
    """The IANA zone names of the host's zone database (read once: it does not change
    under a running process)."""
    return frozenset(available_timezones()) - NOT_ZONES


def parse_zone(key: str) -> ZoneInfo:
    """The IANA zone `key` names (``Asia/Seoul``, ``UTC``). Only the zone names of the
    database: ZoneInfo also opens ``localtime`` (the host's setting), ``posixrules``,
    ``Factory`` and the ``posix/``, ``right/`` copies, none of them a place's zone.
    Raises `UnknownZone`."""
    problem = f"unknown time zone {key!r} (an IANA name: 'Asia/Seoul')"
    if key not in zone_names():
        raise UnknownZone(problem)
    try:
        return ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError):
        raise UnknownZone(problem) from None
