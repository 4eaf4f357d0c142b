"""Golden extraction tests over every registered site's fixture pages, keyed by
content (`tests.golden.golden_cases`): one test per (article case, field), one
"no unexpected fields" per article case, one expected error per rejected case,
and invariants every expected file must satisfy, so that a wrong golden value
cannot hide a bug. No site is named here: sites come from the registry."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.golden import GoldenCase, as_json, expected_of, extract, golden_cases, sites_of

CASES = golden_cases()
# The declared sites and those seeds/sites.toml configures.
SITES = sites_of()
EXPECTED = {case.id: expected_of(case) for case in CASES}
# A case without a golden file yet is in neither list: test_golden_file_exists fails.
ARTICLES = [c for c in CASES if EXPECTED[c.id] is not None and "rejected" not in EXPECTED[c.id]]
REJECTIONS = [c for c in CASES if EXPECTED[c.id] is not None and "rejected" in EXPECTED[c.id]]
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
# Furniture of Korean news pages (the sites' own rules are checked too): none may
# appear anywhere in a body, not even inside a line.
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


def _id(case: GoldenCase) -> str:
    return case.id


_actual_cache: dict[str, dict[str, Any]] = {}


def actual(case: GoldenCase) -> dict[str, Any]:
    if case.id not in _actual_cache:
        _actual_cache[case.id] = as_json(extract(case.page))
    return _actual_cache[case.id]


def test_every_declared_and_configured_site_has_golden_cases() -> None:
    assert {case.site for case in CASES} == set(SITES)
    assert len(ARTICLES) >= 12 and REJECTIONS


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_golden_file_exists(case: GoldenCase) -> None:
    assert EXPECTED[case.id] is not None, f"no golden file for {case.id}: python -m tests.golden"


def test_copies_have_no_golden_file_of_their_own() -> None:
    """A byte-identical copy is the same case: one golden file, not two to keep in step."""
    duplicates = [copy.id for case in CASES for copy in case.copies if copy.expected_path.exists()]
    assert duplicates == []


def test_copies_extract_like_their_case() -> None:
    """Extraction is pure: the same bytes, URL and headers give the same result."""
    for case in CASES:
        for copy in case.copies:
            assert as_json(extract(copy)) == actual(case), copy.id


@pytest.mark.parametrize("case", REJECTIONS, ids=_id)
def test_rejection(case: GoldenCase) -> None:
    assert actual(case) == EXPECTED[case.id]


@pytest.mark.parametrize("case", ARTICLES, ids=_id)
def test_no_unexpected_fields(case: GoldenCase) -> None:
    assert sorted(actual(case)) == sorted(EXPECTED[case.id] or {})


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("case", ARTICLES, ids=_id)
def test_field(case: GoldenCase, field: str) -> None:
    want = EXPECTED[case.id] or {}
    assert actual(case).get(field, "<missing>") == want[field]


def _utc(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    assert parsed.utcoffset() == timedelta(0), f"{value} is not UTC"
    return parsed


@pytest.mark.parametrize("case", ARTICLES, ids=_id)
def test_expected_file_invariants(case: GoldenCase) -> None:
    data = EXPECTED[case.id] or {}
    site = SITES[case.site]
    assert data["site"] == site.name
    assert data["title"].strip()
    for brand in site.brands:
        assert brand not in data["title"], f"brand {brand!r} in title"
    published = _utc(data["published_at"])
    assert data["published_raw"].strip()
    if data["modified_at"]:
        assert _utc(data["modified_at"]) >= published
    assert data["url"].startswith("https://")
    assert site.canonical_url(data["url"]) == data["url"], "URL is not canonical"
    body_lines = data["body"].split("\n")
    assert all(line.strip() == line and line for line in body_lines)
    for marker in FURNITURE:
        assert marker not in data["body"], f"furniture {marker!r} in body"
    for line in body_lines:
        assert not site.furniture.is_furniture(line), f"furniture line {line!r} in body"
    for image in data["images"]:
        assert image["url"].startswith("https://")
        if image["caption"]:
            assert image["caption"] not in body_lines, "caption leaked into body"
    for subtitle in data["subtitles"]:
        assert subtitle not in body_lines, "subtitle leaked into body"
    for author in data["authors"]:
        assert re.fullmatch(r"[가-힣]{2,5}", author), author
        assert not author.endswith("기자")
