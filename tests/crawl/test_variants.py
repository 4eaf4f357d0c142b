"""Real crawls (Scrapy, replay, SQLite) of the template-variant fixtures of both
sites (``seeds/*_variants``): every page is stored as its golden file says, with
the site's name out of the title, the dateline paragraph of a ``<br>``-separated
body kept, subtitles deep in a body out of it, and no line of the boxes the
containers carry (related lists, link and tag boxes, download boxes, usage and
rights notes)."""

from __future__ import annotations

import json

import pytest

from news_archive.crawler.sites import SITES
from tests.crawl.crawling import SEEDS, crawl, snapshot
from tests.golden import golden_cases

# Lines of the furniture inside the fixtures' body containers: none may be stored.
FURNITURE = (
    "관련 기사",
    "관련기사",
    "많이 본 뉴스",
    "#알뜰폰",
    "무단 전재",
    "무단전재",
    "갤럭시 S26 사전예약",
    "보도자료 다운로드",
    "자유롭게 사용하실 수 있습니다",
    "사진 다운로드",
    "함께 보면 좋은 기사",
    "동반성장 아카데미",
    "T스토리 더 보기",
    "현장 영상 보기",
    "갤럭시S10 5G 사전예약 시작",
)


@pytest.mark.parametrize("site", sorted(SITES))
def test_variants_are_stored_as_their_golden_files(site: str, sqlite_url: str) -> None:
    directory = SEEDS / f"{site}_variants"
    crawl(site, directory, sqlite_url)
    stored = snapshot(sqlite_url).site(site)
    cases = [case for case in golden_cases() if case.page.path.is_relative_to(directory)]
    assert len(cases) >= 3
    assert sorted(stored) == sorted(SITES[site].canonical_url(c.page.url) for c in cases)
    for case in cases:
        expected = json.loads(case.expected_path.read_text("utf-8"))
        row = stored[expected["url"]]
        assert row["title"] == expected["title"]
        assert row["body"] == expected["body"]
        assert (row["subtitle"] or "") == "\n".join(expected["subtitles"])
        for brand in SITES[site].brands:
            assert brand not in row["title"]
        for line in row["body"].split("\n"):
            assert not any(marker in line for marker in FURNITURE), line
            assert line not in expected["subtitles"]


def test_the_dateline_paragraph_of_a_br_body_is_kept(sqlite_url: str) -> None:
    crawl("maeil_ilbo", SEEDS / "maeil_ilbo_variants", sqlite_url)
    stored = snapshot(sqlite_url).site("maeil_ilbo")
    for idxno in (688201, 689015):
        body = stored[f"https://www.m-i.kr/news/articleView.html?idxno={idxno}"]["body"]
        assert body.startswith("[매일일보 박효길 기자] "), body[:40]
    cp949 = stored["https://www.m-i.kr/news/articleView.html?idxno=689015"]["body"]
    assert "‘똠방모바일’" in cp949  # a CP949 syllable outside EUC-KR survives
