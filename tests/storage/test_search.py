"""Korean full-text search, export reads and the analysts' views, on both backends,
over what real crawls of the seed fixtures stored (day 1 of both sites, then day 2
of 매일일보, which edits article 800101)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import Engine, text

from news_archive.storage.engine import create_archive_engine
from news_archive.storage.search import (
    HIGHLIGHT_END,
    HIGHLIGHT_START,
    SNIPPET_CHARS,
    SearchHit,
    article_by_urls,
    article_with_versions,
    daily_counts,
    fts5_string,
    iter_articles,
    last_runs,
    make_snippet,
    search,
    site_totals,
)
from tests.conftest import BACKENDS, fresh_database
from tests.crawl.crawling import SEEDS, crawl

MAEIL = "https://www.m-i.kr/news/articleView.html?idxno={}"
MAEIL_SEED = MAEIL.format(714398)
SKT_SEED = "https://news.sktelecom.com/129639"
EDITED = MAEIL.format(800101)
# 800101 on day 2: a sentence added, another reworded.
ADDED_PHRASE = "품질 인증 절차"
REMOVED_PHRASE = "실적 개선을 점치고"
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


@pytest.mark.parametrize("query", ['"', '카카오"', "*", "AND OR NOT", "NEAR(a b)", "a:b", "-"])
def test_query_syntax_characters_are_text(archive: Engine, query: str) -> None:
    for hit in search(archive, query):
        assert query.lower() in (hit.title + " " + _body(archive, hit.id)).lower()


def test_like_wildcards_are_text(archive: Engine) -> None:
    percent = search(archive, "30%")
    assert EDITED in _urls(percent)  # "전력 효율은 30% 이상"
    for hit in search(archive, "%") + search(archive, "_"):
        body = _body(archive, hit.id)
        assert "%" in hit.title + body or "_" in hit.title + body


def test_whitespace_is_normalised(archive: Engine) -> None:
    assert _urls(search(archive, "  품질   인증\n절차 ")) == [EDITED]
    with pytest.raises(ValueError, match="empty"):
        search(archive, " \t")


def test_filters_and_limit(archive: Engine) -> None:
    assert _urls(search(archive, "카카오", site="maeil_ilbo")) == [MAEIL_SEED]
    assert SKT_SEED not in _urls(search(archive, "카카오", site="maeil_ilbo"))
    recent = search(archive, "AI", since=datetime(2026, 1, 1, tzinfo=UTC))
    assert recent
    assert all(hit.published_at >= datetime(2026, 1, 1, tzinfo=UTC) for hit in recent)
    old = search(archive, "AI", until=datetime(2026, 1, 1, tzinfo=UTC))
    assert set(_urls(old)) == {MAEIL_SEED, SKT_SEED}
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
    counts = daily_counts(archive)
    assert sum(count.articles for count in counts) == ARTICLES_AFTER_DAY2
    assert all(isinstance(count.day, date) for count in counts)
    assert (
        next(c for c in counts if c.site == "maeil_ilbo" and c.day == date(2020, 6, 21)).articles
        == 1
    )
    assert [count.day for count in counts] == sorted((c.day for c in counts), reverse=True)
    assert all(c.site == "skt_insight" for c in daily_counts(archive, site="skt_insight"))
    assert all(c.day >= date(2026, 1, 1) for c in daily_counts(archive, since=date(2026, 1, 1)))
    totals = {row["site"]: row for row in site_totals(archive)}
    assert totals["maeil_ilbo"]["articles"] == 6
    assert totals["maeil_ilbo"]["versions"] == 7  # 800101 changed on day 2
    assert totals["skt_insight"]["first_published_at"] == datetime(2021, 3, 15, 1, tzinfo=UTC)


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


# --- backend specifics ---------------------------------------------------------------


def test_datasette_finds_the_full_text_table(archive: Engine) -> None:
    """Datasette offers search on `articles` when this query (its ``detect_fts``)
    names a table; the FTS table must also answer the query Datasette sends."""
    if archive.dialect.name != "sqlite":
        pytest.skip("Datasette reads SQLite files")
    with archive.connect() as connection:
        names = connection.exec_driver_sql(
            """
            SELECT name FROM sqlite_master
            WHERE rootpage = 0 AND (
                sql LIKE '%VIRTUAL TABLE%USING FTS%content="articles"%'
                OR sql LIKE '%VIRTUAL TABLE%USING FTS%content=[articles]%'
                OR (tbl_name = 'articles' AND sql LIKE '%VIRTUAL TABLE%USING FTS%')
            )
            """
        ).all()
        found = connection.exec_driver_sql(
            "SELECT url FROM articles WHERE rowid IN "
            "(SELECT rowid FROM articles_fts WHERE articles_fts MATCH ?)",
            (fts5_string("카카오벤처스"),),
        ).all()
    assert names == [("articles_fts",)]
    assert found == [(SKT_SEED,)]


def test_postgres_queries_use_the_trigram_indexes(archive: Engine) -> None:
    if archive.dialect.name != "postgresql":
        pytest.skip("pg_trgm is PostgreSQL's")
    with archive.connect() as connection:
        # A dozen rows make a sequential scan cheaper; forbid it to see the choice.
        connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
        plan = "\n".join(
            row[0]
            for row in connection.exec_driver_sql(
                "EXPLAIN SELECT id FROM articles "
                "WHERE title ILIKE '%%카카오%%' OR body ILIKE '%%카카오%%'"
            )
        )
    assert "ix_articles_title_trgm" in plan
    assert "ix_articles_body_trgm" in plan


# --- snippets and quoting, no database ---------------------------------------------------


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


def test_fts5_string_quotes_everything() -> None:
    assert fts5_string("카카오") == '"카카오"'
    assert fts5_string('say "hi"') == '"say ""hi"""'


def _body(engine: Engine, article_id: int) -> str:
    article = article_with_versions(engine, article_id)
    assert article is not None
    return article["body"]
