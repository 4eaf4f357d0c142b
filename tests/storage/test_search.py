"""Korean full-text search, export reads and the analysts' views, on both backends,
over what real crawls of the seed fixtures stored (day 1 of both sites, then day 2
of 매일일보, which edits article 800101)."""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, event, text

from news_archive.storage import fulltext
from news_archive.storage.engine import create_archive_engine, upgrade_to_head
from news_archive.storage.query import KOREA, QuerySyntaxError, parse
from news_archive.storage.repository import ArchiveRepository
from news_archive.storage.search import (
    HIGHLIGHT_END,
    HIGHLIGHT_START,
    SNIPPET_CHARS,
    SearchHit,
    article_by_urls,
    article_with_versions,
    daily_counts,
    iter_articles,
    last_runs,
    make_snippet,
    offset_periods,
    search,
    site_totals,
)
from tests.conftest import BACKENDS, empty_postgres_database, fresh_database
from tests.crawl.crawling import SEEDS, crawl
from tests.storage.factories import KOREA_MORNING, later, make_article

MAEIL = "https://www.m-i.kr/news/articleView.html?idxno={}"
MAEIL_SEED = MAEIL.format(714398)
SKT_SEED = "https://news.sktelecom.com/129639"
EDITED = MAEIL.format(800101)
# 800101 on day 2: a sentence added, another reworded.
ADDED_PHRASE = "품질 인증 절차"
REMOVED_PHRASE = "실적 개선을 점치고"
SEOUL = ZoneInfo("Asia/Seoul")
ARTICLES_AFTER_DAY2 = 12  # 6 SKT + 5 매일일보 on day 1, 1 new 매일일보 on day 2


@pytest.fixture(
    scope="module",
    params=BACKENDS,
)
def archive(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    """An engine on an archive holding both seed crawls and 매일일보's day 2."""
    always_due = ("-s", "REVISIT_SCHEDULE=*=0s")
    with fresh_database(request.param, tmp_path_factory.mktemp("search")) as url:
        crawl("skt_insight", SEEDS / "skt_insight", url, *always_due)
        crawl("maeil_ilbo", SEEDS / "maeil_ilbo", url, *always_due)
        crawl("maeil_ilbo", SEEDS / "maeil_ilbo_day2", url, *always_due)
        engine = create_archive_engine(url)
        try:
            yield engine
        finally:
            engine.dispose()


def _urls(hits: list[SearchHit]) -> list[str]:
    return [hit.url for hit in hits]


def _highlighted(query: str, snippet: str) -> bool:
    pattern = re.escape(HIGHLIGHT_START) + re.escape(query) + re.escape(HIGHLIGHT_END)
    return re.search(pattern, snippet, re.IGNORECASE) is not None


# --- what the issue asks for ----------------------------------------------------------


def test_choheomnyeok_finds_the_maeil_ilbo_seed(archive: Engine) -> None:
    hits = search(archive, "초협력")
    assert MAEIL_SEED in _urls(hits)
    assert all(_highlighted("초협력", hit.snippet) for hit in hits)


def test_kakao_ventures_finds_only_the_skt_seed(archive: Engine) -> None:
    hits = search(archive, "카카오벤처스")
    assert _urls(hits) == [SKT_SEED]
    assert _highlighted("카카오벤처스", hits[0].snippet)


def test_a_word_is_found_inside_longer_eojeol(archive: Engine) -> None:
    # 카카오벤처스를, 카카오와, 카카오는: the particle is part of the word.
    urls = _urls(search(archive, "카카오"))
    assert {MAEIL_SEED, SKT_SEED} <= set(urls)


@pytest.mark.parametrize("query", ["협력", "특허", "AI", "ai"])
def test_queries_under_three_characters_work(archive: Engine, query: str) -> None:
    hits = search(archive, query)
    assert hits, query
    for hit in hits:
        assert _highlighted(query, hit.snippet), hit.snippet
    if query != "특허":
        assert {MAEIL_SEED, SKT_SEED} <= set(_urls(hits))


def test_latin_letters_match_in_any_case(archive: Engine) -> None:
    assert _urls(search(archive, "ai")) == _urls(search(archive, "AI"))
    assert _urls(search(archive, "hbm4")) == _urls(search(archive, "HBM4")) != []


def test_syllables_outside_euc_kr_are_searchable(archive: Engine) -> None:
    # The CP949 page: 똠 is not in EUC-KR.
    assert _urls(search(archive, "똠방각하")) == [MAEIL.format(800102)]


def test_the_index_follows_an_edited_article(archive: Engine) -> None:
    assert _urls(search(archive, ADDED_PHRASE)) == [EDITED]
    assert search(archive, REMOVED_PHRASE) == []
    versions = article_with_versions(archive, EDITED)
    assert versions is not None
    assert [REMOVED_PHRASE in version["body"] for version in versions["versions"]] == [
        True,
        False,
    ]


def test_new_articles_are_searchable(archive: Engine) -> None:
    new = article_with_versions(archive, MAEIL.format(800108))
    assert new is not None
    assert MAEIL.format(800108) in _urls(search(archive, new["title"][:12], limit=50))


# --- query details --------------------------------------------------------------------


@pytest.mark.parametrize("query", ['"', "*", "-", "AND OR", "카카오 OR"])
def test_unreadable_queries_are_syntax_errors(archive: Engine, query: str) -> None:
    with pytest.raises(QuerySyntaxError):
        search(archive, query)


def test_query_syntax_characters_in_words_are_separators(archive: Engine) -> None:
    # 카카오" is the word 카카오; a:b (no filter) the phrase a b; 30% the number 30.
    assert _urls(search(archive, '카카오"')) == _urls(search(archive, "카카오"))
    assert EDITED in _urls(search(archive, "30%"))  # "전력 효율은 30% 이상"


def test_whitespace_is_normalised(archive: Engine) -> None:
    assert _urls(search(archive, '  "품질   인증\n절차" ')) == [EDITED]
    with pytest.raises(ValueError, match="empty"):
        search(archive, " \t")


def test_filters_and_limit(archive: Engine) -> None:
    assert _urls(search(archive, "카카오", site="maeil_ilbo")) == [MAEIL_SEED]
    assert _urls(search(archive, "카카오 site:maeil_ilbo")) == [MAEIL_SEED]
    recent = search(archive, "AI", since=datetime(2026, 1, 1, tzinfo=UTC))
    assert recent
    assert all(hit.published_at >= datetime(2026, 1, 1, tzinfo=UTC) for hit in recent)
    old = search(archive, "AI", until=datetime(2026, 1, 1, tzinfo=UTC))
    assert set(_urls(old)) == {MAEIL_SEED, SKT_SEED}
    assert set(_urls(search(archive, "AI until:2025-12-31"))) == {MAEIL_SEED, SKT_SEED}
    assert len(search(archive, "AI", limit=2)) == 2


@pytest.mark.parametrize("query", ["카카오", "AI", "협력", "삼성전자"])
def test_hits_are_ordered_by_rank(archive: Engine, query: str) -> None:
    ranks = [hit.rank for hit in search(archive, query)]
    assert ranks == sorted(ranks, reverse=True)
    assert all(isinstance(hit.published_at, datetime) for hit in search(archive, query))


def test_the_article_about_it_comes_first(archive: Engine) -> None:
    # 삼성전자 is in 800101's title and all through its body; two others mention it once.
    hits = search(archive, "삼성전자")
    assert hits[0].url == EDITED
    assert {MAEIL_SEED, SKT_SEED} <= set(_urls(hits[1:]))


# --- reads for export, show and stats ---------------------------------------------------


def test_iter_articles_streams_every_article_with_tags_and_images(archive: Engine) -> None:
    articles = list(iter_articles(archive, batch_size=5))
    assert len(articles) == ARTICLES_AFTER_DAY2
    assert [row["id"] for row in articles] == [
        row["id"] for row in iter_articles(archive, batch_size=1000)
    ]
    published = [row["published_at"] for row in articles]
    assert published == sorted(published)
    seed = next(row for row in articles if row["url"] == SKT_SEED)
    assert seed["tags"] == ["SKT", "카카오", "초협력", "ESG", "지적재산권", "특허"]
    assert len(seed["images"]) == 5
    assert set(seed["images"][0]) == {"url", "caption", "alt"}


def test_iter_articles_filters(archive: Engine) -> None:
    by_site = {
        site: len(list(iter_articles(archive, site=site))) for site in ("maeil_ilbo", "skt_insight")
    }
    assert by_site == {"maeil_ilbo": 6, "skt_insight": 6}
    since = datetime(2026, 1, 1, tzinfo=UTC)
    recent = list(iter_articles(archive, site="maeil_ilbo", since=since))
    assert MAEIL_SEED not in [row["url"] for row in recent]
    assert all(row["published_at"] >= since for row in recent)


def test_article_with_versions_by_id_url_and_alias(archive: Engine) -> None:
    article = article_with_versions(archive, EDITED)
    assert article is not None
    assert [version["version"] for version in article["versions"]] == [1, 2]
    assert article_with_versions(archive, article["id"])["url"] == EDITED  # type: ignore[index]
    assert article_with_versions(archive, str(article["id"]))["url"] == EDITED  # type: ignore[index]
    by_alias = article_with_versions(archive, "https://www.sktinsight.com/?p=130003")
    assert by_alias is not None
    assert by_alias["url"] == "https://news.sktelecom.com/130003"
    assert article_with_versions(archive, "https://example.com/nothing") is None
    assert article_with_versions(archive, 999_999) is None


def test_article_by_urls_takes_the_first_url_that_names_an_article(archive: Engine) -> None:
    shortlink = "https://www.sktinsight.com/?p=130003"  # an alias the crawl met
    nothing = "https://example.com/nothing"
    # By canonical URL or alias, whichever of the URLs names one, in one query.
    assert article_by_urls(archive, [nothing, EDITED])["url"] == EDITED  # type: ignore[index]
    found = article_by_urls(archive, [nothing, shortlink])
    assert found is not None
    assert found["url"] == "https://news.sktelecom.com/130003"
    assert [version["version"] for version in found["versions"]] == [1]
    # Several articles named: the earliest URL's.
    assert article_by_urls(archive, [shortlink, EDITED])["url"] == found["url"]  # type: ignore[index]
    assert article_by_urls(archive, [EDITED, shortlink])["url"] == EDITED  # type: ignore[index]
    assert article_by_urls(archive, [nothing]) is None
    assert article_by_urls(archive, []) is None


def test_daily_counts_and_site_totals(archive: Engine) -> None:
    counts = daily_counts(archive, zone=SEOUL)
    assert sum(count.articles for count in counts) == ARTICLES_AFTER_DAY2
    assert all(isinstance(count.day, date) for count in counts)
    assert (
        next(c for c in counts if c.site == "maeil_ilbo" and c.day == date(2020, 6, 21)).articles
        == 1
    )
    assert [count.day for count in counts] == sorted((c.day for c in counts), reverse=True)
    skt = daily_counts(archive, zone=SEOUL, site="skt_insight")
    assert skt and all(c.site == "skt_insight" for c in skt)
    recent = daily_counts(archive, zone=SEOUL, since=date(2026, 1, 1))
    assert recent and all(c.day >= date(2026, 1, 1) for c in recent)
    totals = {row["site"]: row for row in site_totals(archive)}
    assert totals["maeil_ilbo"]["articles"] == 6
    assert totals["maeil_ilbo"]["versions"] == 7  # 800101 changed on day 2
    assert totals["skt_insight"]["first_published_at"] == datetime(2021, 3, 15, 1, tzinfo=UTC)


def _days(engine: Engine, zone: str, **filters: object) -> list[tuple[str, int]]:
    counts = daily_counts(engine, zone=ZoneInfo(zone), **filters)  # type: ignore[arg-type]
    return [(count.day.isoformat(), count.articles) for count in counts]


def test_daily_counts_count_days_of_the_display_zone(archive_engine: Engine) -> None:
    """08:30 in Korea on 2026-11-24 is 23:30 UTC the day before: its Korea day;
    around Berlin's summer time changes each article counts on its own local day."""
    ArchiveRepository(archive_engine).store_articles(
        [
            make_article(1, published_at=KOREA_MORNING),
            make_article(2, published_at=datetime(2026, 3, 28, 23, 30, tzinfo=UTC)),  # CET
            make_article(3, published_at=datetime(2026, 10, 24, 22, 30, tzinfo=UTC)),  # CEST
            make_article(4, site="skt_insight", published_at=KOREA_MORNING + timedelta(hours=1)),
        ]
    )
    assert _days(archive_engine, "Asia/Seoul") == [
        ("2026-11-24", 1),
        ("2026-11-24", 1),
        ("2026-10-25", 1),
        ("2026-03-29", 1),
    ]
    assert _days(archive_engine, "UTC", site="maeil_ilbo") == [
        ("2026-11-23", 1),
        ("2026-10-24", 1),
        ("2026-03-28", 1),
    ]
    assert _days(archive_engine, "Europe/Berlin", site="maeil_ilbo") == [
        ("2026-11-24", 1),  # 00:30 CET
        ("2026-10-25", 1),  # 00:30 CEST, the day summer time ends
        ("2026-03-29", 1),  # 00:30 CET, the day it begins
    ]
    assert _days(archive_engine, "America/New_York", site="maeil_ilbo") == [
        ("2026-11-23", 1),
        ("2026-10-24", 1),
        ("2026-03-28", 1),
    ]
    # `since` is a day of the zone: the Korea morning is on 11-24, not 11-23.
    assert _days(archive_engine, "Asia/Seoul", site="maeil_ilbo", since=date(2026, 11, 24)) == [
        ("2026-11-24", 1)
    ]
    assert _days(archive_engine, "UTC", site="maeil_ilbo", since=date(2026, 11, 24)) == []


def test_offset_periods_find_each_change_to_the_second() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    periods = offset_periods(
        berlin, datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 12, 31, tzinfo=UTC)
    )
    assert periods == [
        (datetime(2026, 1, 1, tzinfo=UTC), 3600),
        (datetime(2026, 3, 29, 1, tzinfo=UTC), 7200),
        (datetime(2026, 10, 25, 1, tzinfo=UTC), 3600),
    ]
    seoul = offset_periods(
        SEOUL, datetime(1987, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)
    )
    assert [seconds for _, seconds in seoul] == [32400, 36000, 32400, 36000, 32400]


def test_last_runs_newest_first(archive: Engine) -> None:
    runs = last_runs(archive, 10)
    assert [run["spider"] for run in runs] == ["maeil_ilbo", "maeil_ilbo", "skt_insight"]
    assert runs[0]["finish_reason"] == "finished"
    assert len(last_runs(archive, 1)) == 1


# --- the views -------------------------------------------------------------------------


def test_views_for_analysts(archive: Engine) -> None:
    with archive.connect() as connection:
        current = {
            row["url"]: row
            for row in connection.execute(text("SELECT * FROM current_articles")).mappings()
        }
        history = connection.execute(
            text(
                "SELECT version, captured_at, title, content_hash, note FROM article_history "
                "WHERE url = :url ORDER BY version"
            ),
            {"url": EDITED},
        ).all()
        daily = connection.execute(
            text("SELECT site, day, articles FROM daily_counts ORDER BY day, site")
        ).all()
    assert len(current) == ARTICLES_AFTER_DAY2
    seed = current[SKT_SEED]
    assert seed["tags"] == "SKT, 카카오, 초협력, ESG, 지적재산권, 특허"
    assert (seed["images"], seed["versions"]) == (5, 1)
    assert seed["first_image_url"].startswith("https://news.sktelecom.com/")
    assert current[EDITED]["versions"] == 2
    assert [row.version for row in history] == [1, 2]
    assert history[0].captured_at is not None
    assert sum(row.articles for row in daily) == ARTICLES_AFTER_DAY2
    assert str(daily[0].day) == "2020-06-21"


# --- snippets, no database ---------------------------------------------------------


def test_make_snippet_centres_on_the_first_occurrence() -> None:
    text_ = "가" * 100 + "카카오" + "나" * 100 + "카카오"
    snippet = make_snippet(text_, "카카오")
    assert snippet.startswith("…") and snippet.endswith("…")
    assert f"{HIGHLIGHT_START}카카오{HIGHLIGHT_END}" in snippet
    assert len(snippet) == SNIPPET_CHARS + len("……") + len(HIGHLIGHT_START + HIGHLIGHT_END)


def test_make_snippet_at_the_edges_and_in_any_case() -> None:
    assert make_snippet("AI는 이미", "ai") == f"{HIGHLIGHT_START}AI{HIGHLIGHT_END}는 이미"
    tail = make_snippet("가" * 100 + " end", "END")
    assert tail.endswith(f"{HIGHLIGHT_START}end{HIGHLIGHT_END}")
    assert len(tail) == 1 + SNIPPET_CHARS + 2
    assert make_snippet("no match here", "xyz") == "no match here"
    assert (
        make_snippet("줄\n바꿈   공백", "바꿈") == f"줄 {HIGHLIGHT_START}바꿈{HIGHLIGHT_END} 공백"
    )


def test_make_snippet_highlights_every_word_and_latin_words_whole() -> None:
    snippet = make_snippet("SAID: AI와 협력, 그리고 협력 방안", '협력 "협력 방안" ai')
    assert snippet == (
        f"SAID: {HIGHLIGHT_START}AI{HIGHLIGHT_END}와 {HIGHLIGHT_START}협력{HIGHLIGHT_END}, "
        f"그리고 {HIGHLIGHT_START}협력 방안{HIGHLIGHT_END}"
    )


# --- the query language on articles written for it ------------------------------------

SKT = "https://news.sktelecom.com/{}"
# (number, site, title, body, author, published UTC, tags)
WRITTEN = [
    (
        1,
        "maeil_ilbo",
        "삼성전자, 반도체 투자 확대",
        "삼성전자가 반도체 설비에 투자한다.",
        "박효길",
        datetime(2026, 11, 20, 1, tzinfo=UTC),
        ("반도체",),
    ),
    (
        2,
        "maeil_ilbo",
        "삼성전자 신제품 공개",
        "스마트폰 신제품을 공개했다.",
        "이지은",
        datetime(2026, 11, 21, 1, tzinfo=UTC),
        ("스마트폰",),
    ),
    (
        3,
        "maeil_ilbo",
        "정부, 업계 지원",
        "반도체 산업에 지원책을 내놓았다.",
        "박효길",
        datetime(2026, 11, 22, 1, tzinfo=UTC),
        ("정책",),
    ),
    (
        4,
        "maeil_ilbo",
        "양사 협력 방안 논의",
        "두 회사는 협력 방안을 논의했다.",
        "이지은",
        datetime(2026, 11, 22, 2, tzinfo=UTC),
        (),
    ),
    (
        5,
        "maeil_ilbo",
        "협력 강화",
        "협력의 새로운 방안을 찾는다.",
        "최민수",
        datetime(2026, 11, 22, 3, tzinfo=UTC),
        (),
    ),
    # 08:30 in Korea on 2026-11-24 is 23:30 UTC the day before.
    (
        6,
        "skt_insight",
        "SKT, 카카오와 협력",
        "SKT와 카카오가 AI 협력을 넓힌다.",
        "박효길",
        datetime(2026, 11, 23, 23, 30, tzinfo=UTC),
        ("ESG",),
    ),
    (
        7,
        "skt_insight",
        "SKT 5G 요금제 출시",
        "SKT가 새 요금제를 내놓았다.",
        None,
        datetime(2026, 11, 23, 14, 30, tzinfo=UTC),
        (),
    ),
    # Both bigrams of 카카오, but not 카카오 itself.
    (
        8,
        "maeil_ilbo",
        "오카카 소식",
        "카오스 이론을 다룬다.",
        "최민수",
        datetime(2026, 1, 1, tzinfo=UTC),
        (),
    ),
]


@pytest.fixture(scope="module", params=BACKENDS)
def written(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    """An archive of `WRITTEN`, stored through the repository."""
    with fresh_database(request.param, tmp_path_factory.mktemp("language")) as url:
        engine = create_archive_engine(url)
        upgrade_to_head(engine)
        articles = []
        for number, site, title, body, author, published, tags in WRITTEN:
            url_ = (MAEIL if site == "maeil_ilbo" else SKT).format(number)
            articles.append(
                make_article(
                    number,
                    site=site,
                    url=url_,
                    fetched_url=url_,
                    title=title,
                    body=body,
                    authors=(author,) if author else (),
                    published_at=published,
                    tags=tags,
                )
            )
        ArchiveRepository(engine).store_articles(articles)
        try:
            yield engine
        finally:
            engine.dispose()


def _numbers(hits: list[SearchHit]) -> list[int]:
    return [int(hit.url.rsplit("/", 1)[-1].rsplit("=", 1)[-1]) for hit in hits]


def test_words_are_anded(written: Engine) -> None:
    assert _numbers(search(written, "삼성전자 반도체")) == [1]
    assert sorted(_numbers(search(written, "삼성전자"))) == [1, 2]


def test_a_phrase_is_exact(written: Engine) -> None:
    assert _numbers(search(written, '"협력 방안"')) == [4]
    assert sorted(_numbers(search(written, "협력 방안"))) == [4, 5]


def test_a_word_needs_its_bigrams_in_order(written: Engine) -> None:
    assert _numbers(search(written, "카카오")) == [6]
    assert _numbers(search(written, "카카오", sort="newest")) == [6]
    # Article 8 has every bigram of 카카오스 (오카카, 카오스), none in order.
    assert search(written, "카카오스") == []


def test_words_out_of_order_never_crowd_out_a_match(written: Engine) -> None:
    """A window of one: article 8, the newest with 카카오's bigrams (out of order),
    takes it; the search then asks the index for the order itself and finds 6."""
    query = parse("카카오", zone=KOREA)
    with written.connect() as connection:
        ranked = fulltext.ranked_rows(connection, query, [], sort="relevance", limit=5, window=1)
        article_id = connection.execute(
            text("SELECT id FROM articles WHERE url = :url"), {"url": SKT.format(6)}
        ).scalar_one()
    assert [row.id for row, _ in ranked] == [article_id]


def test_or_and_exclusion(written: Engine) -> None:
    assert _numbers(search(written, "SKT -카카오")) == [7]
    assert sorted(_numbers(search(written, "스마트폰 OR 요금제"))) == [2, 7]


def test_filters_alone_list_newest_first(written: Engine) -> None:
    hits = search(written, "site:maeil_ilbo author:박효길")
    assert _numbers(hits) == [3, 1]
    assert all(hit.rank is None for hit in hits)
    assert _numbers(search(written, "tag:esg")) == [6]
    assert _numbers(search(written, "-카카오 site:skt_insight")) == [7]


def test_since_and_until_are_korea_days(written: Engine) -> None:
    # Article 6, 08:30 KST on 11-24, is on 11-24; article 7, 23:30 KST on 11-23, is not.
    assert _numbers(search(written, "SKT since:2026-11-24")) == [6]
    assert _numbers(search(written, "SKT until:2026-11-23")) == [7]
    assert _numbers(search(written, "SKT until:2026-11-22")) == []
    assert _numbers(search(written, "SKT until:2026-11-24", sort="newest")) == [6, 7]


def test_sort_newest_and_title_weight(written: Engine) -> None:
    assert _numbers(search(written, "반도체", sort="newest")) == [3, 1]
    # In article 1's title and body; only in article 3's body.
    ranked = search(written, "반도체")
    assert _numbers(ranked) == [1, 3]
    assert ranked[0].rank is not None and ranked[1].rank is not None
    assert ranked[0].rank > ranked[1].rank
    with pytest.raises(ValueError, match="sort"):
        search(written, "반도체", sort="oldest")  # type: ignore[arg-type]


def test_one_syllable_is_found_inside_words(written: Engine) -> None:
    assert sorted(_numbers(search(written, "협"))) == [4, 5, 6]
    hit = search(written, "요")[0]
    assert f"{HIGHLIGHT_START}요{HIGHLIGHT_END}" in hit.snippet


def test_the_index_follows_changes_and_deletions(written: Engine) -> None:
    repository = ArchiveRepository(written)
    article = make_article(
        99,
        title="임시 기사",
        body="폐기될 문장이다.",
        published_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    repository.store_articles([article])
    assert _numbers(search(written, "폐기")) == [99]
    changed = make_article(
        99,
        title="임시 기사",
        body="갱신된 문장이다.",
        published_at=datetime(2026, 1, 1, tzinfo=UTC),
        fetched_at=later(1),
    )
    assert repository.store_articles([changed]) == ["changed"]
    assert search(written, "폐기") == []
    assert _numbers(search(written, "갱신")) == [99]
    with written.begin() as connection:
        article_id = connection.execute(
            text("SELECT id FROM articles WHERE url = :url"), {"url": changed.url}
        ).scalar_one()
        for table_ in ("article_versions", "article_tags", "article_images"):
            connection.execute(
                text(f"DELETE FROM {table_} WHERE article_id = :id"), {"id": article_id}
            )
        connection.execute(text("DELETE FROM articles WHERE id = :id"), {"id": article_id})
        key = "rowid" if written.dialect.name == "sqlite" else "id"
        left = connection.execute(
            text(f"SELECT count(*) FROM articles_search WHERE {key} = :id"), {"id": article_id}
        ).scalar_one()
    assert left == 0
    assert search(written, "갱신") == []


def test_a_huge_article_is_stored_and_searchable(archive_engine: Engine) -> None:
    """200,000 distinct words (a tsvector would pass PostgreSQL's 1 MiB limit):
    the article is stored; its first words are found."""
    body = "첫머리 " + " ".join(f"w{number}" for number in range(200_000))
    article = make_article(1, body=body)
    assert ArchiveRepository(archive_engine).store_articles([article]) == ["new"]
    assert _numbers(search(archive_engine, "첫머리 w17")) == [1]


@pytest.fixture(scope="module")
def analysed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """A PostgreSQL archive of 60 articles, analysed: 정부 in all of them, 노인 in
    1-40 only, 삼성전자 spelled out of order (전자 삼성) in 41-60, 특허 in 10 and 50."""
    with fresh_database("postgres", tmp_path_factory.mktemp("analysed")) as url:
        engine = create_archive_engine(url)
        upgrade_to_head(engine)
        articles = [
            make_article(
                number,
                title=f"소식 {number}",
                body=f"정부 발표 {'노인 돌봄' if number <= 40 else '전자 삼성'} 기사 {number}."
                + (" 특허 출원." if number in (10, 50) else ""),
            )
            for number in range(1, 61)
        ]
        repository = ArchiveRepository(engine)
        for article in articles:  # one at a time: ids in the order of the numbers
            repository.store_articles([article])
        with engine.connect() as connection:
            connection.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
                "ANALYZE articles_search"
            )
        try:
            yield engine
        finally:
            engine.dispose()


def _statements(engine: Engine) -> list[str]:
    """The SQL `engine` runs from now on (appended as it runs)."""
    statements: list[str] = []

    def record(connection: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    return statements


def _article_ids(engine: Engine, numbers: Iterator[int] | range) -> list[int]:
    with engine.connect() as connection:
        return [
            connection.execute(
                text("SELECT id FROM articles WHERE url = :url"), {"url": MAEIL.format(number)}
            ).scalar_one()
            for number in numbers
        ]


@pytest.mark.postgres
def test_common_words_walk_the_newest_vectors(analysed: Engine) -> None:
    """노인 is in two thirds of the articles: its newest matches are found by
    testing the newest vectors one by one (no GIN), the same as the index finds."""
    query = parse("노인", zone=KOREA)
    with analysed.connect() as connection:
        shares = fulltext.token_shares(connection)
        assert shares is not None
        assert shares.of_query(query) >= fulltext.SCAN_MIN_SHARE
        statements = _statements(analysed)
        walked = fulltext._newest_matches(connection, query, [], 10, shares=shares)
        assert any("coalesce" in statement for statement in statements)
        indexed = fulltext._newest_matches(connection, query, [], 10)
    assert walked == indexed == _article_ids(analysed, range(40, 30, -1))


@pytest.mark.postgres
def test_the_walk_from_a_stale_newest_id_finds_the_same(analysed: Engine) -> None:
    """Shares read before 20 articles were stored: the span is measured from an
    older id, and the walk still starts from the newest."""
    query = parse("노인", zone=KOREA)
    with analysed.connect() as connection:
        shares = fulltext.token_shares(connection)
        assert shares is not None
        stale = dataclasses.replace(shares, newest=shares.newest - 20)
        walked = fulltext._newest_matches(connection, query, [], 10, shares=stale)
    assert walked == _article_ids(analysed, range(40, 30, -1))


@pytest.mark.postgres
def test_a_less_common_word_is_read_from_the_index_within_the_newest_span(
    analysed: Engine,
) -> None:
    """특허 is in 2 of 60 articles: not common enough to walk, common enough that
    the index is read within the span of the newest ids (no ORDER BY there, so
    that the planner does not walk); the same articles as the index alone."""
    query = parse("특허", zone=KOREA)
    with analysed.connect() as connection:
        shares = fulltext.token_shares(connection)
        assert shares is not None
        assert fulltext.SPAN_MIN_SHARE <= shares.of_query(query) < fulltext.SCAN_MIN_SHARE
        statements = _statements(analysed)
        spanned = fulltext._newest_matches(connection, query, [], 10, shares=shares)
        assert any("OFFSET" in statement for statement in statements)
        assert not any("coalesce" in statement for statement in statements)
        indexed = fulltext._newest_matches(connection, query, [], 10)
    assert spanned == indexed == _article_ids(analysed, [50, 10])


@pytest.mark.postgres
def test_a_common_word_missing_from_the_newest_is_found_further_back(analysed: Engine) -> None:
    """Two matches wanted: the span walked (the newest 9 ids, 52-60) holds none, so
    the index looks below it."""
    query = parse("노인", zone=KOREA)
    with analysed.connect() as connection:
        shares = fulltext.token_shares(connection)
        assert shares is not None
        span = math.ceil(fulltext.SCAN_SPAN * 2 / shares.of_query(query))
        assert span < 20
        walked = fulltext._newest_matches(connection, query, [], 2, shares=shares)
    assert walked == _article_ids(analysed, [40, 39])


@pytest.mark.postgres
def test_a_word_out_of_order_in_the_newest_is_not_found(analysed: Engine) -> None:
    """41-60 have 삼성전자's tokens but not the word: the walk finds them, the text
    check drops them, and the search answers what is there."""
    assert search(analysed, "삼성전자") == []
    hits = search(analysed, "노인 정부")
    assert len(hits) == 20
    assert {hit.url for hit in hits} <= {MAEIL.format(number) for number in range(1, 41)}


@pytest.mark.postgres
def test_token_shares_are_read_once_per_engine(analysed: Engine) -> None:
    with analysed.connect() as connection:
        first = fulltext.token_shares(connection)
        statements = _statements(analysed)
        again = fulltext.token_shares(connection)
    assert first is again is not None
    assert statements == []
    assert first.common["정부"] == pytest.approx(1.0)
    assert first.of_term(parse("노인", zone=KOREA).terms[0]) == pytest.approx(2 / 3, abs=0.05)
    assert first.articles == 60
    assert first.newest == max(_article_ids(analysed, range(1, 61)))


@pytest.mark.postgres
def test_token_shares_are_none_before_analyze(postgres_url: str) -> None:
    empty_postgres_database(postgres_url)
    engine = create_archive_engine(postgres_url)
    try:
        upgrade_to_head(engine)  # which analyses the empty index: no statistics yet
        ArchiveRepository(engine).store_articles([make_article(1, body="정부 발표.")])
        with engine.connect() as connection:
            assert fulltext.token_shares(connection) is None
        assert len(search(engine, "정부 발표")) == 1
    finally:
        engine.dispose()
