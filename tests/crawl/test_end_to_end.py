"""Real crawls of the seed fixtures through Scrapy and the replay middleware, into
SQLite and PostgreSQL: day 1, day 1 again (nothing changes), then day 2 (one new
article and one edited article per site). Every trap of the fixtures has an
assertion here that fails when it is mishandled. The crawls are the session's
`seed_archive` (tests/conftest.py), made once per backend for every reader."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.conftest import SeedArchive
from tests.crawl.crawling import SEEDS, Snapshot

MAEIL = "https://www.m-i.kr/news/articleView.html?idxno={}"
SKT = "https://news.sktelecom.com/{}"
# The real text of one page of each site (from ../shared/seeds), the fixtures' source.
SEED_TEXT = SEEDS / "source"


@pytest.fixture
def crawls(seed_archive: SeedArchive) -> dict[str, Snapshot]:
    """Snapshots after each step of three days of crawling (the session's seed
    archive, on each backend)."""
    return {
        "day1": seed_archive.day1,
        "day1_again": seed_archive.day1_again,
        "day2": seed_archive.day2,
    }


def _paragraphs(text: str) -> list[str]:
    return [" ".join(line.split()) for line in text.splitlines() if line.strip()]


# --- day 1: what is stored ----------------------------------------------------


def test_day1_stores_exactly_the_articles_of_both_feeds(crawls: dict[str, Snapshot]) -> None:
    day1 = crawls["day1"]
    assert sorted(day1.site("maeil_ilbo")) == sorted(
        MAEIL.format(i) for i in (714398, 800101, 800102, 800103, 800104)
    )
    assert sorted(day1.site("skt_insight")) == sorted(
        SKT.format(i) for i in (129639, 130001, 130002, 130003, 130004, 130005)
    )
    assert all(count == 1 for count in day1.versions.values())


def test_maeil_seed_is_stored_with_exactly_its_paragraphs(crawls: dict[str, Snapshot]) -> None:
    row = crawls["day1"].articles[MAEIL.format(714398)]
    seed = (SEED_TEXT / "maeil_ilbo_ai_alliances.txt").read_text("utf-8").splitlines()
    start = next(i for i, line in enumerate(seed) if line.startswith("[매일일보 박효길 기자]"))
    end = next(i for i, line in enumerate(seed) if line.startswith("댓글삭제"))
    assert _paragraphs(row["body"]) == _paragraphs("\n".join(seed[start:end]))
    assert row["title"] == "[변화하는 재계]미래먹거리 AI…ICT업계 합종연횡 본격화"
    assert row["author"] == "박효길"
    assert row["published_at"] == datetime(2020, 6, 21, 0, 0, tzinfo=UTC) or (
        # SQLite returns the stored text; the storage layer's type makes it aware.
        str(row["published_at"]).startswith("2020-06-21 00:00:00")
    )
    assert (
        row["subtitle"] == "삼성전자-SKT-카카오, AI ‘초협력’\nKT-LG전자-LG유플러스, ‘AI 원팀’ 합류"
    )


def test_skt_seed_is_stored_with_its_paragraphs_date_and_six_tags(
    crawls: dict[str, Snapshot],
) -> None:
    day1 = crawls["day1"]
    url = SKT.format(129639)
    row = day1.articles[url]
    seed = (SEED_TEXT / "skt_insight_129639.txt").read_text("utf-8")
    tags_line = "SKT, 카카오, 초협력, ESG, 지적재산권, 특허"
    captions = {caption for _, caption, _ in day1.images[url] if caption}
    expected = [
        line for line in _paragraphs(seed)[3:] if line != tags_line and line not in captions
    ]
    assert _paragraphs(row["body"]) == expected
    assert str(row["published_at"]).startswith("2021-03-15")
    assert row["author"] is None
    assert day1.tags[url] == ["SKT", "카카오", "초협력", "ESG", "지적재산권", "특허"]
    assert len(day1.images[url]) == 5
    assert all(alt == tags_line for _, _, alt in day1.images[url])


def test_photos_keep_captions_and_alt_text(crawls: dict[str, Snapshot]) -> None:
    images = crawls["day1"].images[MAEIL.format(800101)]
    assert len(images) == 3
    assert [caption is None for _, caption, _ in images] == [False, True, False]
    assert all(alt for _, _, alt in images)


def test_comments_and_related_lists_stay_out_of_bodies(crawls: dict[str, Snapshot]) -> None:
    for row in crawls["day1"].articles.values():
        lines = row["body"].split("\n")
        for heading in (
            "관련기사",
            "관련 기사",
            "댓글쓰기",
            "댓글 2",
            "SKT 뉴스룸 뉴스레터 구독하기",
        ):
            assert heading not in lines, (row["url"], heading)
        for text in ("좋은 기사 감사합니다", "저작권자", "삭제한 댓글은"):
            assert text not in row["body"], (row["url"], text)


def test_euc_kr_page_keeps_cp949_only_syllables(crawls: dict[str, Snapshot]) -> None:
    row = crawls["day1"].articles[MAEIL.format(800102)]
    assert "똠방각하" in row["body"] and "햏자" in row["subtitle"]
    assert "\ufffd" not in row["body"]


def test_script_mentioning_the_body_id_does_not_replace_the_body(
    crawls: dict[str, Snapshot],
) -> None:
    row = crawls["day1"].articles[MAEIL.format(800103)]
    assert row["body"].startswith("[매일일보 박효길 기자] 은행권 가계대출")
    assert "광고 로딩중" not in row["body"]
    assert row["author"] == "박효길, 이지은"


def test_amp_tracking_and_old_host_links_land_on_one_row_each(
    crawls: dict[str, Snapshot],
) -> None:
    day1 = crawls["day1"]
    assert day1.aliases["https://www.m-i.kr/news/articleViewAmp.html?idxno=800104"] == (
        MAEIL.format(800104)
    )
    tracking = (
        "https://www.m-i.kr/news/articleView.html?idxno=800101"
        "&utm_source=naver&utm_medium=referral#comment"
    )
    assert day1.aliases[tracking] == MAEIL.format(800101)
    assert day1.aliases["https://news.sktelecom.com/130004/amp"] == SKT.format(130004)
    assert day1.aliases["https://www.sktinsight.com/?p=130003"] == SKT.format(130003)
    assert not any("amp" in url or "utm" in url or "sktinsight" in url for url in day1.articles)


def test_http_errors_and_rejections_are_recorded(crawls: dict[str, Snapshot]) -> None:
    errors = {(spider, url, reason) for spider, url, _, reason in crawls["day1"].errors}
    assert ("maeil_ilbo", MAEIL.format(800106), "http_404") in errors
    assert ("maeil_ilbo", MAEIL.format(800107), "http_500") in errors
    assert ("maeil_ilbo", MAEIL.format(800105), "not_article") in errors
    assert ("skt_insight", SKT.format(130007), "http_404") in errors
    assert ("skt_insight", SKT.format(130008), "http_500") in errors
    assert ("skt_insight", SKT.format(130006), "no_body") in errors
    assert len(crawls["day1"].errors) == 6


def test_runs_are_recorded_with_their_stats(crawls: dict[str, Snapshot]) -> None:
    runs = crawls["day1"].runs
    assert [run["spider"] for run in runs] == ["skt_insight", "maeil_ilbo"]
    assert all(run["finish_reason"] == "finished" for run in runs)
    maeil = runs[1]["stats"]
    assert maeil["archive/stored/new"] == 5
    assert maeil["archive/rejected/not_article"] == 1
    assert maeil["archive/failed/http_404"] == 1
    assert maeil.get("replay/miss", 0) <= 1  # robots.txt is served; nothing else is missing


# --- re-crawl and the next day -----------------------------------------------


def test_recrawl_of_the_same_pages_changes_nothing(crawls: dict[str, Snapshot]) -> None:
    before, after = crawls["day1"], crawls["day1_again"]
    assert after.versions == before.versions
    for url, row in before.articles.items():
        again = after.articles[url]
        assert (again["id"], again["content_hash"], again["body"]) == (
            row["id"],
            row["content_hash"],
            row["body"],
        )
        assert str(again["last_seen_at"]) >= str(row["last_seen_at"])
    stats = after.runs[-1]["stats"]
    # every article was asked for conditionally and answered 304 Not Modified
    assert stats["archive/stored/unchanged"] == stats["archive/not_modified"] == 5
    assert "archive/stored/new" not in stats and "archive/stored/changed" not in stats


def test_next_day_adds_the_new_article_and_one_version_of_the_edited_one(
    crawls: dict[str, Snapshot],
) -> None:
    before, after = crawls["day1_again"], crawls["day2"]
    new = set(after.articles) - set(before.articles)
    assert new == {MAEIL.format(800108), SKT.format(130010)}
    changed = {url for url, count in after.versions.items() if count > 1}
    assert changed == {MAEIL.format(800101), SKT.format(130002)}
    assert all(after.versions[url] == 2 for url in changed)
    edited = after.articles[MAEIL.format(800101)]
    assert "품질 인증 절차" in edited["body"]
    assert edited["content_hash"] != before.articles[MAEIL.format(800101)]["content_hash"]


def test_whitespace_only_reserialisation_adds_no_version(crawls: dict[str, Snapshot]) -> None:
    after = crawls["day2"]
    assert after.versions[MAEIL.format(800103)] == 1
    assert after.versions[SKT.format(130005)] == 1
