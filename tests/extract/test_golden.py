"""Golden extraction tests: one test per (fixture page, field), plus invariants that
every expected file must satisfy, so that a wrong golden value cannot hide a bug."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.golden import FixturePage, as_json, extract, fixture_pages

PAGES = list(fixture_pages())
FIELDS = (
    "authors",
    "body",
    "content_hash",
    "fetched_at",
    "fetched_url",
    "images",
    "language",
    "modified_at",
    "modified_raw",
    "published_at",
    "published_raw",
    "section",
    "site",
    "sources",
    "subtitles",
    "tags",
    "title",
    "url",
)
# Page furniture of both sites (SITES.md and the seed pages): none may reach a body.
FURNITURE = (
    "상태바",
    "이 기사를 공유합니다",
    "저작권자",
    "무단전재",
    "댓글삭제",
    "삭제한 댓글은",
    "그래도 삭제하시겠습니까",
    "댓글쓰기",
    "계정을 선택하시면",
    "댓글을 남기실 수 있습니다",
    "관련기사",
    "다른기사 보기",
    "공유하기",
    "링크 복사",
    "뉴스레터 구독",
    "Copyright",
    "All rights reserved",
    "많이 본 뉴스",
    "청소년보호책임자",
    "태그",
    "adsbygoogle",
)
CANONICAL = {
    "maeil_ilbo": re.compile(r"^https://www\.m-i\.kr/news/articleView\.html\?idxno=\d+$"),
    "skt_insight": re.compile(r"^https://news\.sktelecom\.com/\d+$"),
}


def expected(page: FixturePage) -> dict[str, Any]:
    if not page.expected_path.exists():
        pytest.fail(f"no golden file for {page.id}: run python -m tests.golden")
    return json.loads(page.expected_path.read_text("utf-8"))


_actual_cache: dict[str, dict[str, Any]] = {}


def actual(page: FixturePage) -> dict[str, Any]:
    if page.id not in _actual_cache:
        _actual_cache[page.id] = as_json(extract(page))
    return _actual_cache[page.id]


def test_there_are_fixture_pages_for_both_sites() -> None:
    assert {page.site for page in PAGES} == set(CANONICAL)
    assert len(PAGES) >= 12


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.id)
def test_no_unexpected_fields(page: FixturePage) -> None:
    assert sorted(actual(page)) == sorted(expected(page))


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.id)
def test_field(page: FixturePage, field: str) -> None:
    want = expected(page)
    if "rejected" in want:
        assert actual(page) == want
        return
    assert actual(page)[field] == want[field]


ARTICLES = [page for page in PAGES if "rejected" not in expected(page)]


def _utc(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    assert parsed.utcoffset() == timedelta(0), f"{value} is not UTC"
    return parsed


@pytest.mark.parametrize("page", ARTICLES, ids=lambda p: p.id)
def test_expected_file_invariants(page: FixturePage) -> None:
    data = expected(page)
    assert data["title"].strip() and "매일일보" not in data["title"]
    assert "SKT 뉴스룸" not in data["title"]
    published = _utc(data["published_at"])
    assert data["published_raw"].strip()
    if data["modified_at"]:
        assert _utc(data["modified_at"]) >= published
    assert CANONICAL[data["site"]].match(data["url"])
    body_lines = data["body"].split("\n")
    assert all(line.strip() == line and line for line in body_lines)
    for marker in FURNITURE:
        assert marker not in data["body"], f"furniture {marker!r} in body"
    for image in data["images"]:
        assert image["url"].startswith("https://")
        if image["caption"]:
            assert image["caption"] not in body_lines, "caption leaked into body"
    for subtitle in data["subtitles"]:
        assert subtitle not in body_lines, "subtitle leaked into body"
    for author in data["authors"]:
        assert re.fullmatch(r"[가-힣]{2,5}", author), author
        assert not author.endswith("기자")
