"""Discovery shared by both spiders: feeds and list pages → article requests.

A spider decides only which URLs to fetch, in what order, and when to stop;
what a page means is the site module's business (`crawler.sites`).

Incremental by default (setting ``INCREMENTAL``): a run fetches its feed and list
pages, articles the archive has never seen, and known articles whose revisit is
due (``url_state.next_visit_at``), those with ``If-None-Match`` /
``If-Modified-Since`` from the stored validators. Known articles that are not due
are skipped even when the feed lists them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator
from datetime import UTC, date, datetime
from typing import Any, ClassVar

import scrapy
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response
from scrapy.spidermiddlewares.httperror import HttpError
from sqlalchemy import Engine
from twisted.python.failure import Failure

from news_archive.crawler.extract.dates import KOREA
from news_archive.crawler.extract.feeds import FeedError
from news_archive.crawler.extract.site import Site
from news_archive.storage import visits
from news_archive.storage.engine import create_archive_engine, upgrade_to_head
from news_archive.storage.visits import VisitState
from news_archive.vocabulary import (
    AliasSeen,
    Article,
    FeedEntry,
    FetchFailure,
    PageVisit,
    Rejection,
)


class ArchiveSpider(scrapy.Spider):
    """Crawl a site's feed (and, with ``since``, its older pages) into the archive.

    Arguments (``-a NAME=VALUE``):
    - ``urls``: comma-separated article, feed or list URLs instead of the default feed.
    - ``since``: ``YYYY-MM-DD`` (Korea date). Backfill: also walk older list/feed
      pages until their items are older than this date, or until a page lists an
      article archived by an earlier run.
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
        self.allowed_domains = list(self.site.allowed_domains)
        self.requested_urls = [u.strip() for u in (urls or "").split(",") if u.strip()]
        self.since = date.fromisoformat(since) if since else None
        self.sections = tuple(s.strip() for s in (sections or "").split(",") if s.strip())
        self.past_archived = (past_archived or "").lower() in ("1", "true", "yes")
        self.started_at = datetime.now(UTC)
        self.archive: Engine | None = None

    async def start(self) -> AsyncIterator[Any]:
        self.started_at = datetime.now(UTC)
        if self.settings.getbool("INCREMENTAL", True):
            self.archive = create_archive_engine(self.settings.get("DATABASE_URL"))
            # The state tables must exist before the first look-up (a no-op at head).
            upgrade_to_head(self.archive)
        urls = self.requested_urls or list(self.site.feed_urls)
        if self.since and not self.requested_urls:
            urls += self.site.backfill_start_urls(self.sections)
        for url in urls:
            if self.site.canonical_url(url):
                for output in self.follow_article(url, None):
                    yield output
            else:
                yield self.listing_request(url)
        if self.archive is not None and not self.requested_urls:
            limit = self.settings.getint("REVISIT_LIMIT", 500)
            due = visits.due(self.archive, self.name, self.started_at, limit)
            self.crawler.stats.set_value("archive/revisits/due", len(due))
            for state in due:
                yield self.article_request(state.url, None, state)

    def closed(self, reason: str) -> None:
        if self.archive is not None:
            self.archive.dispose()

    def listing_request(self, url: str) -> scrapy.Request:
        return scrapy.Request(
            url, callback=self.parse_listing, errback=self.on_failure, priority=-1
        )

    def article_request(
        self, url: str, entry: FeedEntry | None, state: VisitState | None
    ) -> scrapy.Request:
        """A request for an article page; conditional when the archive holds validators."""
        headers = {}
        if state is not None and state.etag:
            headers["If-None-Match"] = state.etag
        if state is not None and state.last_modified:
            headers["If-Modified-Since"] = state.last_modified
        return scrapy.Request(
            url,
            headers=headers,
            callback=self.parse_article,
            errback=self.on_failure,
            cb_kwargs={"entry": entry},
            # 304 is an answer, not an error, for a conditional request; the stored
            # age schedules the next visit when the page itself is not sent again.
            meta={
                "handle_httpstatus_list": [304],
                "published_at": state.published_at if state else None,
            },
        )

    def follow_article(
        self, url: str, entry: FeedEntry | None, state: VisitState | None = None
    ) -> Iterator[Any]:
        """A request for the article `url` names, by its canonical URL when the URL
        alone tells it (AMP, print, tracking parameters, old host), and a note of
        the alias. Scrapy's duplicate filter then sees one URL per article."""
        canonical = self.site.canonical_url(url)
        if canonical and canonical != url:
            yield AliasSeen(self.name, url, canonical)
        yield self.article_request(canonical or url, entry, state)

    def parse_listing(self, response: Response) -> Iterator[Any]:
        """A feed or list page: follow each new or due item; in backfill, the next page
        too, until items are older than ``since`` or (unless ``past_archived``)
        already archived by an earlier run."""
        stats = self.crawler.stats
        try:
            if self.site.is_list_url(response.url):
                entries = self.site.list_entries(response.text, response.url)
            else:
                entries = self.site.feed_entries(response.body, response.url)
        except (FeedError, ValueError, AttributeError) as error:
            yield FetchFailure(self.name, response.url, "bad_listing", response.status, str(error))
            return
        stats.inc_value("archive/listing/pages")
        stats.inc_value("archive/listing/entries", len(entries))
        if not entries:
            self.logger.warning("Listing %s has no entries", response.url)
        known = self._known(entries)
        reached_older = reached_archived = False
        for entry in entries:
            if self.since and self._older_than_since(entry):
                reached_older = True
                continue
            state = known.get(entry.url)
            if state is not None and state.archived_before(self.started_at):
                reached_archived = True
            if state is not None and state.next_visit_at > self.started_at:
                stats.inc_value("archive/skipped/not_due")
                continue
            yield from self.follow_article(entry.url, entry, state)
        stop_at_archived = reached_archived and not self.past_archived
        if self.since and entries and not reached_older and not stop_at_archived:
            next_url = self.site.next_page_url(response.url)
            if next_url:
                yield self.listing_request(next_url)

    def _known(self, entries: list[FeedEntry]) -> dict[str, VisitState]:
        """Visit state of each entry's article, keyed by the entry's URL as listed."""
        if self.archive is None:
            return {}
        canonical = {entry.url: self.site.canonical_url(entry.url) for entry in entries}
        # Links the URL alone cannot resolve (shortlinks) may be known aliases.
        unresolved = [url for url, found in canonical.items() if found is None]
        canonical.update(visits.canonical_of(self.archive, unresolved) if unresolved else {})
        states = visits.states(self.archive, [url for url in canonical.values() if url])
        return {url: states[c] for url, c in canonical.items() if c in states}

    def _older_than_since(self, entry: FeedEntry) -> bool:
        assert self.since is not None
        published = entry.published_at
        return published is not None and published.astimezone(KOREA).date() < self.since

    def parse_article(self, response: Response, entry: FeedEntry | None) -> Iterator[Any]:
        """Extract the page; the pipeline stores an `Article`, records a `Rejection`,
        and schedules the next visit from the `PageVisit`."""
        fetched_at = datetime.now(UTC)
        request_headers = response.request.headers if response.request else {}
        if "If-None-Match" in request_headers or "If-Modified-Since" in request_headers:
            self.crawler.stats.inc_value("archive/revisits/conditional")
        visit = {
            "site": self.name,
            "status": response.status,
            "fetched_at": fetched_at,
            "etag": _header(response, "ETag"),
            "last_modified": _header(response, "Last-Modified"),
            "capture_id": response.meta.get("capture_id"),
        }
        if response.status == 304:
            yield PageVisit(
                url=response.url, published_at=response.meta.get("published_at"), **visit
            )
            return
        result = self.site.extract(
            response.url, response.body, _headers(response), fetched_at, entry
        )
        if isinstance(result, Article):
            for alias in response.meta.get("redirect_urls", []):
                if alias != result.url:
                    yield AliasSeen(self.name, alias, result.url)
        yield result
        if isinstance(result, Article):
            yield PageVisit(url=result.url, published_at=result.published_at, **visit)
        elif isinstance(result, Rejection):
            yield PageVisit(url=self.site.canonical_url(response.url) or response.url, **visit)

    def on_failure(self, failure: Failure) -> Iterable[FetchFailure | PageVisit]:
        """Every failed request becomes a `FetchFailure` the pipeline records."""
        request = failure.request  # type: ignore[attr-defined]
        if failure.check(HttpError):
            status = failure.value.response.status
            problem = FetchFailure(
                self.name, request.url, f"http_{status}", status, f"HTTP {status}"
            )
            if request.callback != self.parse_article:
                return [problem]
            # Schedules the retry of an article URL (5xx soon, 4xx daily), not every run.
            visit = PageVisit(self.name, request.url, status, datetime.now(UTC))
            return [problem, visit]
        if failure.check(IgnoreRequest):
            # RobotsTxtMiddleware says so in its message; other refusals are "ignored".
            reason = "robots_forbidden" if "robots.txt" in str(failure.value) else "ignored"
            return [FetchFailure(self.name, request.url, reason, None, str(failure.value))]
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


def _header(response: Response, name: str) -> str | None:
    value = response.headers.get(name)
    return value.decode("latin-1") if value else None


def _slug(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")
