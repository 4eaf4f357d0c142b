"""Discovery shared by both spiders: feeds and list pages → article requests.

A spider decides only which URLs to fetch, in what order, and when to stop;
what a page means is the site module's business (`crawler.sites`), and what the
archive already holds (skip what is not due, conditional revisits, due revisits,
the next visit) is the incremental middleware's (`crawler.middlewares.incremental`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator
from datetime import UTC, date, datetime
from typing import Any, ClassVar

import scrapy
from scrapy.exceptions import DownloadCancelledError, IgnoreRequest, UsageError
from scrapy.http import Response
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.python.failure import Failure

from news_archive.crawler.extensions.extraction import ExtractionPool
from news_archive.crawler.extract.feeds import FeedError, PartialFeed, link_problem
from news_archive.crawler.extract.site import Site, visibly_cut
from news_archive.crawler.middlewares.incremental import ARTICLE_PAGE, STOP_AT_ARCHIVED
from news_archive.crawler.middlewares.offsite import OffsiteRedirect, RedirectLoop
from news_archive.crawler.middlewares.replay import BadReplay
from news_archive.vocabulary import AliasSeen, Article, FeedEntry, FetchFailure


class ArchiveSpider(scrapy.Spider):
    """Crawl a site's feed (and, with ``since``, its older pages) into the archive.

    Arguments (``-a NAME=VALUE``):
    - ``urls``: comma-separated article, feed or list URLs instead of the default feed.
    - ``since``: ``YYYY-MM-DD``, a date in the site's time zone (Korea for the
      declared sites). Backfill: also walk older list/feed pages until their items
      are older than this date, or until a page lists an article archived by an
      earlier run.
    - ``past_archived``: with ``since``, ``1`` keeps paging past archived articles.
    - ``sections``: comma-separated section codes for backfill (매일일보 ``S1N1``...).
    """

    site: ClassVar[Site]

    def __init__(
        self,
        urls: str | None = None,
        since: str | None = None,
        sections: str | None = None,
        past_archived: str | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        # Exact host names: the project's offsite filter admits no subdomain of them.
        self.allowed_domains = sorted(self.site.hosts)
        self.requested_urls = [u.strip() for u in (urls or "").split(",") if u.strip()]
        try:
            self.since = date.fromisoformat(since) if since else None
        except ValueError:
            raise UsageError(f"-a since={since!r} is not a date (YYYY-MM-DD)") from None
        self.sections = tuple(s.strip() for s in (sections or "").split(",") if s.strip())
        self.past_archived = (past_archived or "").lower() in ("1", "true", "yes")

    async def start(self) -> AsyncIterator[Any]:
        urls = self.requested_urls or list(self.site.feed_urls)
        if self.since and not self.requested_urls:
            urls += self.site.backfill_start_urls(self.sections)
        max_length = self.crawler.settings.getint("MAX_LINK_LENGTH")
        for url in urls:
            # A URL given with -a urls= is judged as a feed's link is: the offsite
            # filter would drop an off-site one with a debug line only.
            if problem := link_problem(url, self.site.hosts, max_length):
                yield FetchFailure(self.name, _shortened(url), "bad_link", None, problem)
            elif self.site.canonical_url(url):
                for output in self.follow_article(url):
                    yield output
            else:
                yield self.listing_request(url)

    async def parse(self, response: Response, **kwargs: Any) -> AsyncIterator[Any]:
        """Scrapy's default callback (``scrapy parse --spider=NAME URL``): an article
        URL is extracted as an article, anything else read as a feed or list page."""
        if self.site.canonical_url(response.url):
            async for output in self.parse_article(response):
                yield output
        else:
            for output in self.parse_listing(response):
                yield output

    def listing_request(self, url: str) -> scrapy.Request:
        return scrapy.Request(
            url, callback=self.parse_listing, errback=self.on_failure, priority=-1
        )

    def article_request(self, url: str, entry: FeedEntry | None = None) -> scrapy.Request:
        """A request for an article page (the feed entry, if any, goes to the callback)."""
        return scrapy.Request(
            url,
            callback=self.parse_article,
            errback=self.on_failure,
            cb_kwargs={"entry": entry},
            meta={ARTICLE_PAGE: True},
        )

    def follow_article(self, url: str, entry: FeedEntry | None = None) -> Iterator[Any]:
        """A request for the article `url` names, by its canonical URL when the URL
        alone tells it (AMP, print, tracking parameters, old host), and a note of
        the alias. Scrapy's duplicate filter then sees one URL per article."""
        canonical = self.site.canonical_url(url)
        if canonical and canonical != url:
            yield AliasSeen(self.name, url, canonical)
        yield self.article_request(canonical or url, entry)

    def parse_listing(self, response: Response) -> Iterator[Any]:
        """A feed or list page: follow each item; in backfill, the next page too,
        until items are older than ``since`` (the incremental middleware also stops
        it at a page listing an article an earlier run archived, unless
        ``past_archived``).

        @site_feed
        @returns requests 1
        """
        stats = self.crawler.stats
        try:
            if self.site.is_list_url(response.url):
                entries = self.site.list_entries(response.text, response.url)
                cut = visibly_cut(response.text, response.body, _headers(response))
                if cut is not None:
                    # As a partial feed: recorded, and what it lists still followed.
                    detail = f"list page cut short ({cut}); {len(entries)} entries read"
                    yield FetchFailure(self.name, response.url, "bad_feed", response.status, detail)
            else:
                entries = self.site.feed_entries(response.body, response.url)
        except PartialFeed as partial:
            # Recorded (and failing the run's health), but what could be read of it
            # is still followed: a cut-off tail should not cost the items before it.
            yield FetchFailure(self.name, response.url, "bad_feed", response.status, str(partial))
            entries = partial.found
        except (FeedError, ValueError, AttributeError) as error:
            yield FetchFailure(self.name, response.url, "bad_feed", response.status, str(error))
            return
        stats.inc_value("archive/listing/pages")
        stats.inc_value("archive/listing/entries", len(entries))
        if not entries:
            self.logger.warning("Listing %s has no entries", response.url)
        max_length = self.crawler.settings.getint("MAX_LINK_LENGTH")
        followed = []
        for entry in entries:
            problem = link_problem(entry.url, self.site.hosts, max_length)
            if problem is None:
                followed.append(entry)
            else:
                yield FetchFailure(self.name, _shortened(entry.url), "bad_link", None, problem)
        entries = followed
        reached_older = False
        for entry in entries:
            if self.since and self._older_than_since(entry):
                reached_older = True
                continue
            yield from self.follow_article(entry.url, entry)
        if self.since and entries and not reached_older:
            next_url = self.site.next_page_url(response.url)
            if next_url:
                request = self.listing_request(next_url)
                request.meta[STOP_AT_ARCHIVED] = not self.past_archived
                yield request

    def _older_than_since(self, entry: FeedEntry) -> bool:
        assert self.since is not None
        published = entry.published_at
        # ``since`` is a date of the site's calendar (its time zone, Korea time for
        # the declared sites), not of UTC.
        return (
            published is not None and published.astimezone(self.site.time_zone).date() < self.since
        )

    async def parse_article(
        self, response: Response, entry: FeedEntry | None = None
    ) -> AsyncIterator[Any]:
        """Extract the page in the crawl's extraction pool, off the reactor: an
        `Article` for the pipeline to store, or a `Rejection` saying why not (too
        large, over its time budget...); and the aliases the request was redirected
        through. Nothing when the crawl stopped while the page was in extraction.

        @site_article
        @returns items 1 1
        @scrapes url title body published_at
        """
        # The clock is read here, never inside extraction.
        fetched_at = datetime.now(UTC)
        pool = ExtractionPool.of(self.crawler)
        result = await pool.extract(
            self.site, response.url, response.body, _headers(response), fetched_at, entry
        )
        if result is None:
            return
        if isinstance(result, Article):
            for alias in response.meta.get("redirect_urls", []):
                if alias != result.url:
                    yield AliasSeen(self.name, alias, result.url)
        yield result

    def on_failure(self, failure: Failure) -> Iterable[FetchFailure]:
        """Every failed request becomes a `FetchFailure` the pipeline records."""
        request = failure.request  # type: ignore[attr-defined]
        if failure.check(HttpError):
            status = failure.value.response.status
            return [
                FetchFailure(self.name, request.url, f"http_{status}", status, f"HTTP {status}")
            ]
        if failure.check(RedirectLoop, OffsiteRedirect):
            # Recorded under the URL the spider asked for, the start of the chain.
            reason = "redirect_loop" if failure.check(RedirectLoop) else "offsite_redirect"
            asked = request.meta.get("redirect_urls", [request.url])[0]
            return [FetchFailure(self.name, asked, reason, None, str(failure.value))]
        if failure.check(IgnoreRequest):
            # RobotsTxtMiddleware and HttpCompressionMiddleware (a body that inflates
            # past DOWNLOAD_MAXSIZE) say so in their messages; others are "ignored".
            message = str(failure.value)
            reason = (
                "robots_forbidden"
                if "robots.txt" in message
                else "too_large"
                if "DOWNLOAD_MAXSIZE" in message
                else "ignored"
            )
            return [FetchFailure(self.name, request.url, reason, None, message)]
        if failure.check(DownloadCancelledError):
            # Scrapy's HTTP handler (and replay) cancel a body over DOWNLOAD_MAXSIZE.
            detail = str(failure.value) or "download cancelled: larger than DOWNLOAD_MAXSIZE"
            return [FetchFailure(self.name, request.url, "too_large", None, detail)]
        if failure.check(BadReplay):
            if failure.value.reported:
                return []  # a damaged WARC record, recorded when replay started
            return [FetchFailure(self.name, request.url, "bad_replay", None, str(failure.value))]
        return [
            FetchFailure(
                self.name,
                request.url,
                _slug(type(failure.value).__name__),
                None,
                str(failure.value),
            )
        ]


def _headers(response: Response) -> dict[str, str]:
    return {
        key.decode("latin-1"): values[-1].decode("latin-1")
        for key, values in response.headers.items()
        if values
    }


def _shortened(url: str, keep: int = 500) -> str:
    """`url` as recorded with a problem: cut to `keep` characters, marked as cut (the
    record names the link; its full length is in the detail)."""
    return url if len(url) <= keep else url[:keep] + "…"


def _slug(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")
