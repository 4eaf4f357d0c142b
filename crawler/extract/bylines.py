"""Korean bylines: names only, without role words or brand names."""

from __future__ import annotations

import re
from collections.abc import Iterable

# Role words that follow (or precede) a reporter's name on Korean news pages.
ROLE_WORDS = (
    "기자명",
    "수습기자",
    "인턴기자",
    "객원기자",
    "선임기자",
    "전문기자",
    "대기자",
    "기자",
    "특파원",
    "논설위원",
    "편집위원",
    "논설실장",
    "칼럼니스트",
    "에디터",
    "글",
    "사진",
)
_ROLES_LONGEST_FIRST = sorted((r for r in ROLE_WORDS if len(r) > 1), key=len, reverse=True)
# Desks and teams sign articles too; they are not people.
_DESK = re.compile(r"(?:팀|편집국|취재부|뉴스부|데스크|뉴스룸)$")
_SEPARATORS = re.compile(r"[,·ㆍ/&|]|\s및\s|\s+")
_EMAIL = re.compile(r"\S+@\S+")
_HANGUL_NAME = re.compile(r"^[가-힣]{2,5}$")
_LATIN_NAME = re.compile(r"^[A-Za-z][A-Za-z.\-' ]{1,40}$")


def byline_names(raw: str | None, brands: Iterable[str] = ()) -> tuple[str, ...]:
    """Person names in a byline string.

    ``박효길 기자`` → ``("박효길",)``; ``기자명 박효길`` → ``("박효길",)``;
    ``박효길·이지은 기자`` → both; an email address or a brand (``SKT 뉴스룸``,
    ``매일일보``) yields nothing, so the caller can fall back to the next signal.
    """
    if not raw:
        return ()
    text = _EMAIL.sub(" ", raw)
    for brand in brands:
        text = text.replace(brand, " ")
    text = re.sub(r"[\[\]()<>]", " ", text)
    names: list[str] = []
    for token in _SEPARATORS.split(text):
        token = _strip_role(token.strip())
        if token and _HANGUL_NAME.match(token) and not _DESK.search(token) and token not in names:
            names.append(token)
    return tuple(names)


def _strip_role(token: str) -> str:
    """``박효길기자`` → ``박효길``; a bare role word → ''."""
    if token in ROLE_WORDS:
        return ""
    for role in _ROLES_LONGEST_FIRST:
        if token.endswith(role) and len(token) - len(role) >= 2:
            return token[: -len(role)]
        if token.startswith(role) and len(token) - len(role) >= 2:
            return token[len(role) :]
    return token
