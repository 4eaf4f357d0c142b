"""Bounded work per page: no page freezes the crawl, exhausts its memory or fills the
archive, and replay keeps the bounds (and the directory) a live crawl keeps.

- a 20 MB article page in the feed: refused at DOWNLOAD_MAXSIZE and recorded as
  ``too_large``, the other articles stored, no body over the maximum;
- replay enforces DOWNLOAD_MAXSIZE/DOWNLOAD_WARNSIZE (settings, meta, spider);
- manifest files outside the replay directory are refused (``bad_replay``), unread;
- a page past its extraction time budget is a ``timeout``, its worker replaced;
- a page over the extraction size budget is ``too_large`` without being parsed;
- a title or body over its maximum length is ``too_large``, never truncated;
- SIGTERM while a huge page is in extraction: the crawl exits within 2 s.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from scrapy import Request
from scrapy.downloadermiddlewares.httpcompression import HttpCompressionMiddleware
from scrapy.exceptions import DownloadCancelledError, IgnoreRequest
from scrapy.http import Response
from twisted.python.failure import Failure

from news_archive.crawler.extensions.extraction import ExtractionPool
from news_archive.crawler.extensions.run import ArchiveRun
from news_archive.crawler.extract.site import MAX_BODY_CHARACTERS, MAX_TITLE_CHARACTERS
from news_archive.crawler.middlewares.replay import BadReplay, ReplayMiddleware
from news_archive.crawler.sites import SITES
from news_archive.crawler.spiders.sites import MaeilIlboSpider
from news_archive.vocabulary import Article, Rejection
from tests.crawl.crawling import ROOT, SEEDS, HandCrawl, crawl_environment, project_crawler
from tests.crawl.crawling import snapshot as read_snapshot

MAEIL = SITES["maeil_ilbo"]
HUGE_URL = "https://www.m-i.kr/news/articleView.html?idxno=999999"
SAMPLE_URL = "https://www.m-i.kr/news/articleView.html?idxno=714398"
HTML = {"Content-Type": "text/html; charset=UTF-8"}
FETCHED_AT = datetime(2026, 11, 22, 2, 5, tzinfo=UTC)
MB = 1024 * 1024


def page_with(paragraphs: bytes, article_id: str = "714398") -> bytes:
    """The seed sample article with `paragraphs` at the start of its body container,
    as article `article_id` (its rel=canonical and metadata name that article)."""
    page = (SEEDS / "maeil_ilbo" / "pages" / "714398.html").read_bytes()
    page = page.replace(b"idxno=714398", f"idxno={article_id}".encode())
    opening = page.index(b">", page.index(b'<article id="article-view-content-div"')) + 1
    return page[:opening] + paragraphs + page[opening:]


def short_paragraphs(size: int) -> bytes:
    """About `size` bytes of distinct short paragraphs: extraction's worst case seen
    (cost grows faster than size: 0.5 MB about 0.7 s, 2 MB about 4 s)."""
    line_size = len("<p>100000번 짧은 문장</p>".encode())
    count = size // line_size
    return "".join(f"<p>{number}번 짧은 문장</p>" for number in range(count)).encode()


def long_paragraphs(characters: int) -> bytes:
    """Distinct paragraphs of about `characters` characters of text in all."""
    sentence = "길게 이어지는 본문 문단의 문장입니다. " * 10
    count = characters // len(sentence) + 1
    return "".join(f"<p>{number}. {sentence}</p>" for number in range(count)).encode()


def replay_with_page(directory: Path, body: bytes, url: str = HUGE_URL) -> Path:
    """The maeil_ilbo seeds copied to `directory`, with `body` at `url` listed first
    in the feed."""
    shutil.copytree(SEEDS / "maeil_ilbo", directory)
    (directory / "pages" / "huge.html").write_bytes(body)
    with (directory / "manifest.jsonl").open("a", encoding="utf-8") as manifest:
        line = {"url": url, "file": "pages/huge.html", "status": 200, "headers": HTML}
        manifest.write(json.dumps(line) + "\n")
    feed = directory / "feeds" / "allArticle.xml"
    item = (
        f"<item><title>거대한 기사</title><link>{url}</link>"
        "<pubDate>2026-11-22 09:40:00</pubDate></item>"
    )
    feed.write_text(feed.read_text("utf-8").replace("<item>", item + "<item>", 1), "utf-8")
    return directory


def crawl_by_hand(replay_dir: Path, database_url: str, **settings: object) -> None:
    with HandCrawl(MaeilIlboSpider, replay_dir, database_url, **settings) as run:
        run.crawl(run.start())


# ----------------------------------------------------------------- a 20 MB page


def test_a_20_mb_page_in_the_feed_is_recorded_and_the_others_stored(
    tmp_path: Path, database_url: str
) -> None:
    seeds_only = f"sqlite:///{tmp_path / 'seeds.db'}"
    crawl_by_hand(SEEDS / "maeil_ilbo", seeds_only)
    # An article of some 8 million characters: 20 MB of UTF-8 Korean.
    huge = page_with(long_paragraphs(8_000_000), "999999")
    assert len(huge) > 20_000_000
    replay_dir = replay_with_page(tmp_path / "replay", huge)

    crawl_by_hand(replay_dir, database_url)

    stored = read_snapshot(database_url)
    assert sorted(stored.articles) == sorted(read_snapshot(seeds_only).articles)
    assert HUGE_URL not in stored.articles
    assert ("maeil_ilbo", HUGE_URL, None, "too_large") in stored.errors
    assert max(len(row["body"]) for row in stored.articles.values()) <= MAX_BODY_CHARACTERS
    assert stored.runs[0]["stats"]["archive/failed/too_large"] == 1


# ------------------------------------------------------------------------ replay


def _replay(directory: Path, **settings: object) -> ReplayMiddleware:
    crawler = project_crawler(MaeilIlboSpider, REPLAY_DIR=str(directory), **settings)
    return ReplayMiddleware.from_crawler(crawler)


def test_replay_refuses_a_body_over_download_maxsize_as_a_download_would(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    replay_dir = replay_with_page(tmp_path / "replay", b"<p>x</p>" * 50_000)  # 400 KB
    middleware = _replay(replay_dir, DOWNLOAD_MAXSIZE=300_000, DOWNLOAD_WARNSIZE=200_000)

    with pytest.raises(DownloadCancelledError, match=r"larger than download max size \(300000\)"):
        middleware.process_request(Request(HUGE_URL))
    # per request, as Scrapy's HTTP handler reads it: meta first
    allowed = Request(HUGE_URL, meta={"download_maxsize": 0})
    with caplog.at_level(logging.WARNING):
        assert middleware.process_request(allowed).status == 200
    assert "larger than download warn size (200000)" in caplog.text
    # a page of the usual size (130 KB) is served without a word
    caplog.clear()
    assert middleware.process_request(Request(SAMPLE_URL)).status == 200
    assert "warn size" not in caplog.text
    assert middleware.stats.get_value("replay/too_large") == 1


def test_the_project_download_maxsize_is_enforced_by_replay(tmp_path: Path) -> None:
    replay_dir = replay_with_page(tmp_path / "replay", b" " * (8 * MB + 1))
    with pytest.raises(DownloadCancelledError):
        _replay(replay_dir).process_request(Request(HUGE_URL))


@pytest.mark.parametrize("escape", ["../secret.html", "absolute", "pages/link.html"])
def test_manifest_files_outside_the_replay_directory_are_refused(
    tmp_path: Path, database_url: str, escape: str
) -> None:
    secret = tmp_path / "secret.html"
    secret.write_bytes(page_with(b"<p>SECRET local file contents</p>"))
    replay_dir = replay_with_page(tmp_path / "replay", b"<p>placeholder</p>")
    if escape == "absolute":
        escape = str(secret)
    elif escape == "pages/link.html":
        (replay_dir / "pages" / "link.html").symlink_to(secret)
    manifest = replay_dir / "manifest.jsonl"
    lines = manifest.read_text("utf-8").replace("pages/huge.html", escape)
    manifest.write_text(lines, "utf-8")

    with pytest.raises(BadReplay, match=r"outside the replay directory|absolute path"):
        _replay(replay_dir).process_request(Request(HUGE_URL))
    crawl_by_hand(replay_dir, database_url)

    stored = read_snapshot(database_url)
    assert ("maeil_ilbo", HUGE_URL, None, "bad_replay") in stored.errors
    assert not any("SECRET" in row["body"] for row in stored.articles.values())
    assert len(stored.articles) == 5  # the seeds' articles


# -------------------------------------------------------------------- extraction


def _pool(**settings: object) -> ExtractionPool:
    return ExtractionPool.from_crawler(project_crawler(MaeilIlboSpider, **settings))


def _extract_all(
    pool: ExtractionPool, *pages: tuple[bytes, float]
) -> list[Article | Rejection | None]:
    """Each body of `pages` extracted in turn, within its time budget (seconds)."""

    async def run() -> list[Article | Rejection | None]:
        results = []
        try:
            for body, budget in pages:
                pool.timeout = budget
                results.append(await pool.extract(MAEIL, SAMPLE_URL, body, HTML, FETCHED_AT))
        finally:
            pool.close()
        return results

    # A loop of its own: asyncio.run would unset the loop of the reactor conftest installed.
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(run())
    finally:
        loop.close()


def test_a_page_past_its_time_budget_is_a_timeout_and_its_worker_replaced() -> None:
    pool = _pool(EXTRACTION_WORKERS=1, EXTRACTION_TIMEOUT=0.05)
    slow = page_with(short_paragraphs(300_000))  # about 0.4 s of extraction
    started = time.monotonic()

    # The next page gets a budget a loaded machine cannot miss.
    timed_out, after = _extract_all(pool, (slow, 0.05), (page_with(b""), 30))

    assert isinstance(timed_out, Rejection), timed_out
    assert (timed_out.reason, timed_out.url) == ("timeout", SAMPLE_URL)
    assert "EXTRACTION_TIMEOUT" in timed_out.detail
    assert time.monotonic() - started < 5
    assert isinstance(after, Article), "the replacement worker extracts the next page"
    stats = pool.crawler.stats  # type: ignore[union-attr]
    assert stats.get_value("extraction/workers_replaced") == 1


def test_a_page_over_the_extraction_size_budget_is_too_large_unparsed() -> None:
    pool = _pool(EXTRACTION_WORKERS=1, EXTRACTION_MAX_BYTES=100_000)
    (rejected,) = _extract_all(pool, (b"<html>" + b" " * 100_000, 30))
    assert isinstance(rejected, Rejection)
    assert rejected.reason == "too_large"
    assert "EXTRACTION_MAX_BYTES (100000)" in rejected.detail
    assert not pool._workers, "no worker was needed to refuse it"


@pytest.mark.parametrize(
    ("field", "page"),
    [
        ("body", lambda: page_with(long_paragraphs(MAX_BODY_CHARACTERS + 1000))),
        (
            # The headline element is the title's first signal (docs/extraction.md).
            "title",
            lambda: page_with(b"").replace(
                b'<div class="article-head-title">',
                b'<div class="article-head-title">' + "가".encode() * MAX_TITLE_CHARACTERS,
            ),
        ),
    ],
)
def test_a_title_or_body_over_its_maximum_is_too_large_not_truncated(field, page) -> None:  # type: ignore[no-untyped-def]
    result = MAEIL.extract(SAMPLE_URL, page(), HTML, FETCHED_AT)
    assert isinstance(result, Rejection), f"{field} of {len(getattr(result, field))} accepted"
    assert result.reason == "too_large"
    assert result.detail.startswith(f"{field} of ")


# ------------------------------------------------------------------------ SIGTERM


def test_sigterm_while_a_huge_page_is_in_extraction_ends_the_crawl_within_2_s(
    tmp_path: Path,
) -> None:
    """The page is let through both size budgets and given all the time it wants:
    only the signal can end its extraction."""
    replay_dir = replay_with_page(
        tmp_path / "replay", page_with(short_paragraphs(20 * MB), "999999")
    )
    env = {key: value for key, value in os.environ.items() if key != "REPLAY_DIR"}
    env |= crawl_environment() | {
        "REPLAY_DIR": str(replay_dir),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'archive.db'}",
    }
    log_path = tmp_path / "crawl.log"
    settings = {
        "DOWNLOAD_MAXSIZE": 64 * MB,
        "EXTRACTION_MAX_BYTES": 64 * MB,
        "EXTRACTION_TIMEOUT": 600,
        "LOG_LEVEL": "DEBUG",
    }
    arguments = [argument for n, v in settings.items() for argument in ("-s", f"{n}={v}")]
    with log_path.open("wb") as log:
        crawl = subprocess.Popen(
            [sys.executable, "-m", "scrapy", "crawl", "maeil_ilbo", *arguments],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        # The huge page is downloaded and handed to extraction; the seeds' pages are
        # done in well under a second.
        deadline = time.monotonic() + 60
        while f"Crawled (200) <GET {HUGE_URL}>" not in log_path.read_text("utf-8", "replace"):
            assert crawl.poll() is None, log_path.read_text("utf-8", "replace")
            assert time.monotonic() < deadline, "the huge page was never downloaded"
            time.sleep(0.05)
        time.sleep(1.0)
        assert crawl.poll() is None, "the crawl ended before the signal"
        # As a service manager stops it: the whole process group.
        os.killpg(crawl.pid, signal.SIGTERM)
        signalled = time.monotonic()
        try:
            crawl.wait(timeout=2)
        except subprocess.TimeoutExpired:
            pytest.fail(f"no exit within 2 s of SIGTERM:\n{log_path.read_text('utf-8')[-3000:]}")
        assert time.monotonic() - signalled < 2
    finally:
        if crawl.poll() is None:
            os.killpg(crawl.pid, signal.SIGKILL)
            crawl.wait()
    output = log_path.read_text("utf-8", "replace")
    assert f"Extraction of {HUGE_URL} abandoned" in output


def test_a_compressed_page_inflating_past_download_maxsize_is_too_large(
    sqlite_url: str,
) -> None:
    """A gzip bomb (or an honest huge page sent compressed) is refused by Scrapy's
    HttpCompressionMiddleware while inflating, as an IgnoreRequest: still too_large."""
    crawler = project_crawler(MaeilIlboSpider, DATABASE_URL=sqlite_url)
    try:
        url = "https://www.m-i.kr/news/articleView.html?idxno=800101"
        request = Request(url, meta={"download_maxsize": 1024 * 1024})
        body = gzip.compress(b"<html><body>" + b"a" * (4 * 1024 * 1024) + b"</body></html>")
        response = Response(url, body=body, headers={"Content-Encoding": "gzip"}, request=request)
        middleware = HttpCompressionMiddleware.from_crawler(crawler)
        with pytest.raises(IgnoreRequest) as refused:
            middleware.process_response(request, response)
        failure = Failure(refused.value)
        failure.request = request  # type: ignore[attr-defined]
        (problem,) = crawler.spider.on_failure(failure)
        assert (problem.url, problem.reason) == (url, "too_large")
    finally:
        crawler.get_extension(ArchiveRun).engine_stopped()
