"""The WARC capture middleware in-process: a real crawler object with the project's
settings, the crawl owner's archive on both backends, inline responses."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.http import HtmlResponse
from sqlalchemy import text

from news_archive.crawler.extensions.run import ArchiveRun
from news_archive.crawler.middlewares.capture import WarcCaptureMiddleware
from news_archive.crawler.spiders.sites import MaeilIlboSpider
from news_archive.crawler.warc import WarcArchive
from tests.crawl.crawling import project_crawler

PAGE = "https://www.m-i.kr/news/articleView.html?idxno={}"
BODY = "<html><body><p>합종연횡, 똠방각하</p></body></html>".encode("cp949")


@pytest.fixture
def crawler(database_url: str, tmp_path: Path) -> Iterator[Crawler]:
    crawler = project_crawler(
        MaeilIlboSpider,
        DATABASE_URL=database_url,
        WARC_ENABLED=True,
        WARC_DIR=str(tmp_path / "warc"),
    )
    crawler.stats.open_spider()
    yield crawler
    crawler.get_extension(ArchiveRun).engine_stopped()


def _response(url: str, body: bytes = BODY) -> HtmlResponse:
    headers = {"Content-Type": "text/html; charset=euc-kr", "ETag": '"v1"'}
    return HtmlResponse(url, body=body, headers=headers, request=Request(url))


def test_each_response_is_written_and_indexed_and_a_repeat_is_a_revisit(
    crawler: Crawler, tmp_path: Path
) -> None:
    middleware = WarcCaptureMiddleware.from_crawler(crawler)
    middleware.spider_opened(crawler.spider)
    first = middleware.process_response(Request(PAGE.format(1)), _response(PAGE.format(1)))
    again = middleware.process_response(Request(PAGE.format(2)), _response(PAGE.format(2)))
    middleware.spider_closed(crawler.spider)

    assert isinstance(first.meta["capture_id"], int)
    assert again.meta["capture_id"] == first.meta["capture_id"] + 1
    captures = WarcArchive(tmp_path / "warc").captures()
    assert [(c.url, c.record_type) for c in captures] == [
        (PAGE.format(1), "response"),
        (PAGE.format(2), "revisit"),
    ]
    # The revisit answers with the first payload, byte for byte as on the wire.
    archive = WarcArchive(tmp_path / "warc")
    replayed = archive.retrieve_response(captures[1], decode=True)
    assert (replayed.status, replayed.body) == (200, BODY)
    # Indexed in the crawl's one archive, with where each record starts.
    engine = crawler.get_extension(ArchiveRun).archive.engine
    with engine.connect() as connection:
        rows = connection.execute(
            text('SELECT url, record_type, warc_file, "offset" FROM captures ORDER BY id')
        ).all()
    assert [(url, kind) for url, kind, _, _ in rows] == [
        (PAGE.format(1), "response"),
        (PAGE.format(2), "revisit"),
    ]
    for (_, _, warc_file, offset), capture in zip(rows, captures, strict=True):
        assert archive.locate(warc_file, offset).url == capture.url


def test_capture_off_means_no_middleware(database_url: str) -> None:
    crawler = project_crawler(MaeilIlboSpider, DATABASE_URL=database_url, WARC_ENABLED=False)
    try:
        with pytest.raises(NotConfigured):
            WarcCaptureMiddleware.from_crawler(crawler)
    finally:
        # The crawl's owner opened the archive when the crawler was built.
        crawler.get_extension(ArchiveRun).engine_stopped()
