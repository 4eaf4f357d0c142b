"""Titles without the site's name: one rule for every page-title-like signal of every site.

Pages put their own name beside the headline in ``<title>``, ``og:title`` and
sometimes in JSON-LD or the feed: ``헤드라인 - 매일일보``, ``헤드라인 | SKT 뉴스룸``,
``[매일일보] 헤드라인``, ``매일일보 :: 헤드라인``. The rule is by kind, not by string:
a *name* of the site (the names a site declares, and the names the page itself
gives: ``og:site_name``, ``application-name``) standing at either end of the title,
set off by a *separator* or wrapped in brackets, is removed; what is left is
trimmed of stray separators. A separator is a bar (``|``, ``｜``, ``¦``, spaces
optional) or, with whitespace on both sides, a dash of any length, a colon or
double colon, a middle dot, a bullet, a slash, a tilde, angle quotes or ``<``/``>``.
Those need the spaces because unspaced they join words: ``매일일보-한국갤럽
여론조사``, ``매일일보·SK텔레콤 공동 캠페인``, ``…경기일보·매일일보`` name partners
in the headline, not the site beside it. A name inside the headline (``매일일보
창간 기념식``) is part of it and stays, and a title that would become empty is
kept as it is.

The headline element the reader sees is never cleaned (`crawler.extract.signals`):
it is the article's own headline, and a name at its start is the headline's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# A separator between a headline and a site name. Bars may stand unspaced
# (``헤드라인|매일일보``); every other kind joins words when unspaced
# (``매일일보-한국갤럽``, ``경기일보·매일일보``, ``매일일보/한국갤럽``), so it
# separates only with whitespace on both sides: dashes of every length, colons
# (single, double, full width), middle dots, bullets, slashes, tildes, angle quotes
# and ``<``/``>``.
_BARS = "|｜¦"
_SPACED = "-–—―:：·•∙/~«»‹›<>"
_SEPARATOR = rf"(?:\s*[{re.escape(_BARS)}]+\s*|\s+[{re.escape(_BARS + _SPACED)}]+\s+)"
# Brackets a name may be wrapped in at either end: [매일일보], (매일일보), 【매일일보】, <매일일보>.
_BRACKETS = (
    ("[", "]"),
    ("(", ")"),
    ("【", "】"),
    ("<", ">"),
    ("〈", "〉"),
    ("《", "》"),
    ("「", "」"),
)
# What a removed name may leave at an end: a run of separators set off from the
# headline by whitespace (``- 헤드라인`` after ``[매일일보]- 헤드라인``), or bars.
# A mark that belongs to the headline (``좋아요~``, ``40%``) stays.
_EDGE_SEPARATORS = re.compile(
    rf"^(?:[{re.escape(_BARS + _SPACED)}]+(?:\s+|$)|[{re.escape(_BARS)}]+)+"
    rf"|(?:(?:^|\s+)[{re.escape(_BARS + _SPACED)}]+|[{re.escape(_BARS)}]+)+$"
)


def _name_pattern(names: Iterable[str]) -> str | None:
    # Longest first, so that "SKT 뉴스룸" wins over a shorter "SKT" prefix.
    unique = sorted({" ".join(n.split()) for n in names if n and n.strip()}, key=len, reverse=True)
    if not unique:
        return None
    # Inner spaces of a name match any run of spaces (``SKT  뉴스룸``).
    return "|".join(r"\s+".join(re.escape(part) for part in name.split()) for name in unique)


def clean_title(title: str | None, names: Iterable[str]) -> str | None:
    """`title` without the site's `names` at either end (behind a separator or in
    brackets), whitespace collapsed; None for an empty title. Never empties a
    title: when nothing but a name would be left, the title is kept whole."""
    if title is None:
        return None
    original = " ".join(title.split())
    if not original:
        return None
    alternatives = _name_pattern(names)
    if alternatives is None:
        return original
    name = rf"(?:{alternatives})"
    bracketed = "|".join(rf"{re.escape(o)}\s*{name}\s*{re.escape(c)}" for o, c in _BRACKETS)
    leading = re.compile(rf"^\s*(?:(?:{bracketed})\s*{_SEPARATOR}?|{name}{_SEPARATOR})", re.I)
    trailing = re.compile(rf"(?:{_SEPARATOR}?\s*(?:{bracketed})|{_SEPARATOR}{name})\s*$", re.I)
    cleaned = original
    # Repeat: a title may carry the name at both ends, or twice (``A - 매일일보 | 매일일보``).
    while True:
        stripped = trailing.sub("", leading.sub("", cleaned, count=1), count=1)
        if stripped == cleaned:
            break
        cleaned = stripped
    cleaned = _EDGE_SEPARATORS.sub("", cleaned).strip() if cleaned != original else cleaned
    return cleaned or original


def page_names(metas: dict[str, list[str]]) -> tuple[str, ...]:
    """The names a page gives its own site: ``og:site_name``, ``application-name``,
    ``apple-mobile-web-app-title`` (`metas` as `Signals.metas`: lower-case keys)."""
    keys = ("og:site_name", "application-name", "apple-mobile-web-app-title")
    return tuple(value for key in keys for value in metas.get(key, []) if value.strip())
