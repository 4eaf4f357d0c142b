"""Building `Article` values for storage tests (importable by spawned processes)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from news_archive.vocabulary import Article, Image

FETCHED_AT = datetime(2024, 5, 1, 3, 0, tzinfo=UTC)
PUBLISHED_AT = datetime(2024, 4, 30, 23, 30, tzinfo=UTC)
# 08:30 in Korea on 2026-11-24, still 2026-11-23 in UTC: the day it counts on tells
# which zone a count or a filter reads.
KOREA_MORNING = datetime(2026, 11, 23, 23, 30, tzinfo=UTC)


def make_article(number: int = 1, **changes: Any) -> Article:
    """A valid 매일일보 article; `changes` override any field."""
    url = f"https://www.m-i.kr/news/articleView.html?idxno={number}"
    fields: dict[str, Any] = {
        "site": "maeil_ilbo",
        "url": url,
        "fetched_url": url,
        "fetched_at": FETCHED_AT,
        "title": f"삼성전자, 신제품 {number}호 공개",
        "body": "첫 문단입니다.\n둘째 문단에는 똠과 햏이 있습니다.",
        "published_at": PUBLISHED_AT,
        "published_raw": "2024.05.01 08:30",
        "subtitles": ("부제 하나", "부제 둘"),
        "authors": ("박효길",),
        "section": "산업",
        "tags": ("삼성", "반도체"),
        "images": (Image("https://cdn.m-i.kr/a.jpg", "사진 설명", "대체 글"),),
        "language": "ko",
        "sources": {"published_at": "json-ld", "author": "byline"},
    }
    fields.update(changes)
    return Article(**fields)


def later(hours: int) -> datetime:
    """`FETCHED_AT` plus `hours` hours."""
    return FETCHED_AT + timedelta(hours=hours)
