"""Discovery: backfill paging and where it stops, the ``urls`` argument, and the
replay middleware's rules.

Real crawls (SQLite) where Scrapy's machinery is the point: backfill through the
engine, and one crawl of ``-a urls=`` (duplicate links, robots.txt, ``-s`` over the
environment); the spider's own rules in-process (`HandCrawl`, both backends)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scrapy import Request
from scrapy.exceptions import NotConfigured
from scrapy.http import HtmlResponse
from scrapy.utils.test import get_crawler

from news_archive.crawler.middlewares.replay import ManifestError, ReplayMiddleware, load_manifest
from news_archive.crawler.spiders.sites import SktInsightSpider
from tests.conftest import SeedArchive
from tests.crawl.crawling import SEEDS, HandCrawl, Snapshot, crawl, snapshot

MAEIL = "https://www.m-i.kr/news/articleView.html?idxno={}"
SKT = "https://news.sktelecom.com/{}"


def test_maeil_backfill_walks_list_pages_down_to_the_date(sqlite_url: str) -> None:
    crawl("maeil_ilbo", SEEDS / "maeil_ilbo", sqlite_url, "-a", "since=2020-06-01")
    archive = snapshot(sqlite_url)
    assert sorted(archive.articles) == sorted(
        MAEIL.format(i) for i in (714001, 714398, 800101, 800102, 800103, 800104)
    )
    stats = archive.runs[-1]["stats"]
    # the feed and list pages 1-3; page 3 reaches 2020-05 items, so page 4 is never asked for
    assert stats["archive/listing/pages"] == 4
    assert "replay/miss" not in stats
    assert not any("page=4" in url for _, url, _, _ in archive.errors)


def test_skt_backfill_walks_feed_pages_down_to_the_date(database_url: str) -> None:
    arguments = {"since": "2021-03-01"}
    with HandCrawl(SktInsightSpider, SEEDS / "skt_insight", database_url, arguments) as run:
        run.crawl(run.start())
    archive = snapshot(database_url)
    assert {SKT.format(129600), SKT.format(129580)} <= set(archive.articles)
    assert SKT.format(129400) not in archive.articles
    assert len(archive.articles) == 8
    assert run.stats.get_value("archive/listing/pages") == 3
    assert run.stats.get_value("replay/miss") is None


def test_without_since_only_the_feed_is_read(seed_archive: SeedArchive) -> None:
    for run in seed_archive.day1.runs:
        assert run["stats"]["archive/listing/pages"] == 1, run["spider"]


# One real crawl of URLs given with -a urls=, with its database given with -s: three
# links to one article, and a page robots.txt forbids.
DUPLICATE_LINKS = [
    "https://www.m-i.kr/news/articleViewAmp.html?idxno=800104",
    "http://m-i.kr/news/articlePrint.html?idxno=800104",
    MAEIL.format(800104) + "&utm_source=naver#comment",
]
FORBIDDEN = "https://www.m-i.kr/member/login.html"  # seeds/maeil_ilbo/robots.txt: /member/


@pytest.fixture(scope="module")
def urls_crawl(tmp_path_factory: pytest.TempPathFactory) -> tuple[Snapshot, Path]:
    """What SQL shows after the crawl, and the database of the environment (unused)."""
    directory = tmp_path_factory.mktemp("urls")
    from_environment = directory / "environment.db"
    chosen = f"sqlite:///{directory / 'chosen.db'}"
    crawl(
        "maeil_ilbo",
        SEEDS / "maeil_ilbo",
        f"sqlite:///{from_environment}",
        "-s",
        f"DATABASE_URL={chosen}",
        "-a",
        f"urls={','.join([*DUPLICATE_LINKS, FORBIDDEN])}",
    )
    return snapshot(chosen), from_environment


def test_urls_argument_with_duplicate_links_stores_one_article(
    urls_crawl: tuple[Snapshot, Path],
) -> None:
    archive, _ = urls_crawl
    assert list(archive.articles) == [MAEIL.format(800104)]
    assert archive.versions[MAEIL.format(800104)] == 1
    assert len(archive.aliases) == 3
    assert archive.runs[-1]["stats"]["replay/hit"] >= 1


def test_settings_on_the_command_line_win_over_the_environment(
    urls_crawl: tuple[Snapshot, Path],
) -> None:
    archive, from_environment = urls_crawl
    assert list(archive.articles) == [MAEIL.format(800104)]
    assert not from_environment.exists()


def test_robots_txt_is_obeyed_and_refusals_are_recorded(
    urls_crawl: tuple[Snapshot, Path],
) -> None:
    archive, _ = urls_crawl
    assert archive.errors == [("maeil_ilbo", FORBIDDEN, None, "robots_forbidden")]
    assert "replay/miss" not in archive.runs[-1]["stats"]


def test_unknown_urls_are_404_and_recorded(database_url: str) -> None:
    arguments = {"urls": "https://news.sktelecom.com/999999"}
    with HandCrawl(SktInsightSpider, SEEDS / "skt_insight", database_url, arguments) as run:
        run.crawl(run.start())
    archive = snapshot(database_url)
    assert archive.articles == {}
    assert archive.errors == [("skt_insight", SKT.format(999999), 404, "http_404")]
    assert run.stats.get_value("replay/miss") == 1


def test_a_feed_that_is_not_a_feed_is_recorded_and_the_crawl_finishes(
    database_url: str, tmp_path: Path
) -> None:
    (tmp_path / "feed.html").write_text("<html><body>점검 중입니다</body></html>", "utf-8")
    (tmp_path / "manifest.jsonl").write_text(
        json.dumps(
            {
                "url": "https://news.sktelecom.com/feed",
                "file": "feed.html",
                "headers": {"Content-Type": "text/html; charset=UTF-8"},
            }
        )
        + "\n",
        "utf-8",
    )
    with HandCrawl(SktInsightSpider, tmp_path, database_url) as run:
        run.crawl(run.start())
    archive = snapshot(database_url)
    assert [reason for _, _, _, reason in archive.errors] == ["bad_feed"]
    assert archive.runs[-1]["finish_reason"] == "finished"


# --- the replay middleware itself -----------------------------------------------


def _middleware(directory: Path) -> ReplayMiddleware:
    crawler = get_crawler(settings_dict={"REPLAY_DIR": str(directory)})
    return ReplayMiddleware.from_crawler(crawler)


def test_replay_is_off_without_replay_dir() -> None:
    with pytest.raises(NotConfigured):
        ReplayMiddleware.from_crawler(get_crawler(settings_dict={"REPLAY_DIR": None}))


def test_replay_matches_canonicalised_urls_and_serves_bytes_as_stored() -> None:
    middleware = _middleware(SEEDS / "maeil_ilbo")
    # parameter order and a fragment do not matter after canonicalize_url
    response = middleware.process_request(
        Request("https://www.m-i.kr/news/articleList.html?page=1&view_type=sm#top")
    )
    assert response.status == 200 and isinstance(response, HtmlResponse)
    cp949 = middleware.process_request(Request(MAEIL.format(800102)))
    assert cp949.body == (SEEDS / "maeil_ilbo" / "pages" / "800102.html").read_bytes()
    assert "replay" in cp949.flags
    missing = middleware.process_request(Request("https://www.m-i.kr/nothing"))
    assert (missing.status, missing.body) == (404, b"")
    assert middleware.stats.get_value("replay/hit") == 2
    assert middleware.stats.get_value("replay/miss") == 1


def test_replay_serves_status_and_headers() -> None:
    middleware = _middleware(SEEDS / "skt_insight")
    redirect = middleware.process_request(Request("https://www.sktinsight.com/?p=130003"))
    assert redirect.status == 301
    assert redirect.headers["Location"] == b"https://news.sktelecom.com/130003"
    assert middleware.process_request(Request(SKT.format(130008))).status == 500


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "manifest.jsonl:1"),
        (json.dumps({"file": "x.html"}), "'url'"),
        (json.dumps({"url": "https://a/", "file": "missing.html"}), "missing file"),
    ],
)
def test_a_broken_manifest_is_an_error_naming_the_line(
    tmp_path: Path, line: str, message: str
) -> None:
    (tmp_path / "manifest.jsonl").write_text(line + "\n", "utf-8")
    with pytest.raises(ManifestError, match=message):
        load_manifest(tmp_path)


def test_the_replay_index_reads_lines_again_and_keeps_the_last(tmp_path: Path) -> None:
    """The manifest is indexed by hashes and offsets, not held: a lookup reads its
    line again; a later line for a URL wins; a refused line stays refused."""
    (tmp_path / "a.html").write_bytes(b"<p>a</p>")
    (tmp_path / "b.html").write_bytes(b"<p>b</p>")
    lines = [
        {"url": MAEIL.format(1), "file": "a.html", "headers": {"ETag": '"1"'}},
        {"url": MAEIL.format(2), "file": "a.html"},
        {"url": MAEIL.format(1), "file": "b.html", "status": 203},
        {"url": MAEIL.format(3), "file": "../outside.html"},
    ]
    manifest = "\n".join(json.dumps(line) for line in lines) + "\n\n"
    (tmp_path / "manifest.jsonl").write_text(manifest, "utf-8")
    index = load_manifest(tmp_path)
    assert len(index) == 3
    entry = index.get(MAEIL.format(1))
    assert entry is not None and (entry.status, entry.body()) == (203, b"<p>b</p>")
    second = index.get(MAEIL.format(2))
    assert second is not None and second.body() == b"<p>a</p>"
    refused = index.get(MAEIL.format(3))
    assert refused is not None and refused.refused and "outside" in refused.refused
    assert index.get(MAEIL.format(4)) is None
