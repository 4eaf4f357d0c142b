"""The search query language: what a user types into `news-archive search`.

::

    삼성전자 반도체           both words (AND is the default)
    "협력 방안"               the exact phrase
    반도체 OR 배터리          either word (OR, in capitals, joins its neighbours)
    SKT -카카오               SKT, but not 카카오 (a leading minus excludes)
    site:maeil_ilbo           only this site (spider name)
    author:박효길             author contains it      section:경제   tag:ESG
    since:2026-11-01          published on or after that day, until:2026-11-30
                              up to and including it (days in the display zone)

Filters take a word or a ``"quoted value"``; a filter given twice accepts either
value. A word of the form ``name:value`` whose name is no filter is a word.
A query of filters alone lists the matching articles, newest first.

`parse` turns the text into a `Query`; a mistake is a `QuerySyntaxError`, whose
message is one line for the user. Matching is the index's business
(`news_archive.storage.search`): here a word is only text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from news_archive.storage import tokens

# The sites' own zone: the days of since:/until: when the caller names no other.
KOREA = ZoneInfo("Asia/Seoul")

TEXT_FILTERS = ("site", "author", "section", "tag")
DATE_FILTERS = ("since", "until")
# One item: an optional minus, an optional `name:`, then a quoted string or a bare word.
_ITEM = re.compile(r'(-)?(?:([A-Za-z]+):)?(?:"([^"]*)("?)|(\S*))')


class QuerySyntaxError(ValueError):
    """A query that cannot be read; the message is one line for the user."""


@dataclass(frozen=True)
class Term:
    """A word, or a quoted phrase (`phrase`), as typed (NFC)."""

    text: str
    phrase: bool = False

    def runs(self) -> list[tuple[str, bool]]:
        """Its runs of letters and digits (`tokens.runs`), each True when CJK."""
        return list(tokens.runs(self.text))


@dataclass(frozen=True)
class Query:
    """A parsed query: every group of `groups` must match (a group matches when
    any of its terms does), no term of `excluded` may; `filters` by name (a
    tuple of accepted values each); `since`/`until` bound ``published_at``
    (inclusive, exclusive; aware)."""

    groups: tuple[tuple[Term, ...], ...] = ()
    excluded: tuple[Term, ...] = ()
    filters: dict[str, tuple[str, ...]] = field(default_factory=dict)
    since: datetime | None = None
    until: datetime | None = None

    @property
    def terms(self) -> list[Term]:
        """Every term that must or may match (not the excluded), in order."""
        return [term for group in self.groups for term in group]


def parse(text: str, *, zone: tzinfo) -> Query:
    """Read a query (the language above); dates of ``since:``/``until:`` are days
    in `zone`. Raises `QuerySyntaxError`."""
    text = tokens.normalize(text).strip()
    if not text:
        raise QuerySyntaxError("empty search query")
    groups: list[list[Term]] = []
    excluded: list[Term] = []
    filters: dict[str, list[str]] = {}
    since: datetime | None = None
    until: datetime | None = None
    joining = False  # the previous item was OR
    for match in _ITEM.finditer(text):
        if not match.group(0):
            continue  # the empty match between items
        minus, name, quoted, closing, bare = match.groups()
        if quoted is not None and not closing:
            raise QuerySyntaxError(f'unclosed quote in {text!r}: add the closing "')
        if name and name.lower() in TEXT_FILTERS + DATE_FILTERS:
            key = name.lower()
            value = (quoted if quoted is not None else bare or "").strip()
            if not value:
                raise QuerySyntaxError(f"{key}: needs a value, e.g. {_EXAMPLES[key]}")
            if minus or joining:
                raise QuerySyntaxError(f"{key}: cannot be excluded or joined with OR")
            if key == "since":
                since = _day_start(key, value, zone)
            elif key == "until":
                until = _day_start(key, value, zone) + timedelta(days=1)
            else:
                filters.setdefault(key, []).append(value)
            continue
        if name:  # `name:` is no filter: the item is a word as typed
            bare = match.group(0)[len(minus or "") :]
            quoted = None
        if bare == "OR" and not minus:
            if joining or not groups:
                raise QuerySyntaxError("OR needs a word on each side")
            joining = True
            continue
        term = Term(quoted if quoted is not None else bare or "", phrase=quoted is not None)
        if not term.runs():
            shown = f'"{term.text}"' if term.phrase else term.text
            raise QuerySyntaxError(f"{minus or ''}{shown} has no letter or digit to search for")
        if minus:
            if joining:
                raise QuerySyntaxError("OR cannot join an excluded word")
            excluded.append(term)
        elif joining:
            groups[-1].append(term)
            joining = False
        else:
            groups.append([term])
    if joining:
        raise QuerySyntaxError("OR needs a word on each side")
    if excluded and not groups and not filters and since is None and until is None:
        raise QuerySyntaxError("a query cannot only exclude: give a word or a filter too")
    if since is not None and until is not None and since >= until:
        raise QuerySyntaxError("since: is after until:, so nothing can match")
    return Query(
        groups=tuple(tuple(group) for group in groups),
        excluded=tuple(excluded),
        filters={key: tuple(values) for key, values in filters.items()},
        since=since,
        until=until,
    )


_EXAMPLES = {
    "site": "site:maeil_ilbo",
    "author": "author:박효길",
    "section": "section:경제",
    "tag": "tag:ESG",
    "since": "since:2026-11-01",
    "until": "until:2026-11-30",
}


def _day_start(key: str, value: str, zone: tzinfo) -> datetime:
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise QuerySyntaxError(f"{key}:{value} is not a date (YYYY-MM-DD)") from None
    return datetime(day.year, day.month, day.day, tzinfo=zone)
