"""When to look at a known article again: a schedule that decays with its age.

A schedule is written as a setting, ``REVISIT_SCHEDULE``: comma-separated
``AGE=INTERVAL`` steps in increasing age, ``*`` for "older than every step",
durations as ``<number><s|m|h|d>``. The default, ``1d=3h,7d=1d,30d=7d,*=90d``,
means: within a day of publication look every 3 hours, within a week daily,
within a month weekly, then every 90 days.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

DEFAULT_SCHEDULE = "1d=3h,7d=1d,30d=7d,*=90d"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
# A page whose age is unknown (no article, e.g. a rejected page) is revisited daily,
# like a missing page (4xx); a server error (5xx) may pass within the hour.
UNKNOWN_AGE_INTERVAL = timedelta(days=1)
CLIENT_ERROR_INTERVAL = timedelta(days=1)
SERVER_ERROR_INTERVAL = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Step:
    max_age: timedelta | None  # None: any age
    interval: timedelta


def parse_duration(text: str) -> timedelta:
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"not a duration: {text!r} (expected e.g. 30m, 3h, 7d)")
    return timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})


def parse_schedule(text: str) -> tuple[Step, ...]:
    """``"1d=3h,*=90d"`` → steps; raises ValueError naming the bad part."""
    steps = []
    for part in text.split(","):
        if not part.strip():
            continue
        age, separator, interval = part.partition("=")
        if not separator:
            raise ValueError(f"schedule step {part!r} is not AGE=INTERVAL")
        max_age = None if age.strip() == "*" else parse_duration(age)
        steps.append(Step(max_age, parse_duration(interval)))
    if not steps:
        raise ValueError("empty revisit schedule")
    return tuple(steps)


def next_visit(
    published_at: datetime | None,
    visited_at: datetime,
    schedule: tuple[Step, ...],
    status: int = 200,
) -> datetime:
    """When a page fetched at `visited_at` with HTTP `status` is due again: by the
    age of its article (`published_at`), or by the kind of error it answered."""
    if status >= 500:
        return visited_at + SERVER_ERROR_INTERVAL
    if status >= 400:
        return visited_at + CLIENT_ERROR_INTERVAL
    if published_at is None:
        return visited_at + UNKNOWN_AGE_INTERVAL
    age = visited_at - published_at
    for step in schedule:
        if step.max_age is None or age < step.max_age:
            return visited_at + step.interval
    return visited_at + schedule[-1].interval
