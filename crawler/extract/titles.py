"""Titles without the site's name: one rule for every title signal of every site.

Pages put their own name beside the headline in ``<title>``, ``og:title`` and
sometimes in JSON-LD or the feed: ``헤드라인 - 매일일보``, ``헤드라인 | SKT 뉴스룸``,
``[매일일보] 헤드라인``, ``매일일보 :: 헤드라인``. The rule is by kind, not by string:
a *name* of the site (the names a site declares, and the names the page itself
gives: ``og:site_name``, ``application-name``) standing at either end of the title,
set off by a *separator* of any usual kind (a dash of any length, a bar, a colon or
double colon, a middle dot, a bullet, a slash, angle quotes) or wrapped in brackets,
is removed; what is left is trimmed of stray separators. A name inside the
headline (``매일일보 창간 기념식``) is part of it and stays, and a title that would
become empty is kept as it is.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# A separator between a headline and a site name: dashes of every length, bars
# (ASCII and full width), colons (single, double, full width), middle dots, bullets,
# slashes, tildes and angle quotes, with or without spaces around.
_SEPARATOR = r"(?:\s*[-–—―|｜¦:：·•∙/~«»‹›]+\s*|\s+[<>]+\s+)"
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
_EDGE_SEPARATORS = re.compile(r"^(?:[-–—―|｜¦:：·•∙/~«»‹›\s])+|(?:[-–—―|｜¦:：·•∙/~«»‹›\s])+$")


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
