"""Everything the crawler reads from or writes to the archive.

This module is the only place in the project that speaks SQL.  Writes use
SQLAlchemy Core on the model tables because the de-duplication relies on the
database's ``INSERT ... ON CONFLICT``, which the ORM unit of work cannot express.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from sqlalchemy import Connection, Engine, Insert, Table, case, delete, func, select, update

from news_archive.storage import fulltext, tables, tokens
from news_archive.storage.engine import READ_ONLY_OPTION, dialect_insert
from news_archive.storage.faults import CONTENTION, OUTAGE, fault_kind, write_rows
from news_archive.storage.types import fit_key, fits_key, require_key
from news_archive.vocabulary import AliasSeen, Article, FetchFailure, Image, Rejection

logger = logging.getLogger(__name__)

StoreOutcome = Literal["new", "changed", "unchanged", "held"]


_T = TypeVar("_T")


class BatchStoreError(Exception):
    """Some articles of a batch could not be stored even one by one.

    The others *were* committed.  `outcomes` holds, in input order, each
    article's outcome or None where it failed; `failures` pairs the index of each
    failed article with its exception (the first is also ``__cause__``).
    """

    def __init__(
        self,
        outcomes: list[StoreOutcome | None],
        failures: list[tuple[int, BaseException]],
    ) -> None:
        self.outcomes = outcomes
        self.failures = failures
        index, first = failures[0]
        super().__init__(
            f"{len(failures)} of {len(outcomes)} articles not stored; "
            f"first: #{index}: {type(first).__name__}: {first}"
        )


class ArchiveRepository:
    """Reads and writes the archive through `engine` (built by `create_archive_engine`).

    Thread-safe in the way an `Engine` is: each call checks out its own connection.
    """

    def __init__(self, engine: Engine, *, retries: int = 4, backoff: float = 0.05) -> None:
        """`retries`: extra attempts per article after a lock, deadlock or
        serialization error; `backoff`: first wait in seconds, doubled each time."""
        dialect = engine.dialect.name
        if dialect not in ("postgresql", "sqlite"):
            raise ValueError(f"unsupported database dialect {dialect!r}")
        self.engine = engine
        # Read helpers go through this one so that, on SQLite, they never wait
        # for (or hold up) a crawler's write lock.
        self._reader = engine.execution_options(**{READ_ONLY_OPTION: True})
        self.retries = retries
        self.backoff = backoff
        self._insert: Callable[[Table], Insert] = dialect_insert(engine)
        # SQLite needs no row lock: BEGIN IMMEDIATE already serialises writers.
        self._lock_rows = dialect == "postgresql"

    # ----------------------------------------------------------------- articles

    def store_articles(
        self, articles: Sequence[Article], *, note: str | None = None
    ) -> list[StoreOutcome]:
        """Store extracted articles; return ``"new"``, ``"changed"``, ``"unchanged"``
        or ``"held"`` for each, in input order.

        ``"held"``: a change that looks cut short (`Article.suspect`, or a body less
        than half as long as the current one) is kept in ``held_versions``, not
        published, until a later fetch gives the same content (then ``"changed"``).

        The batch is written in one transaction.  If that fails (a bad row, a
        concurrent writer), it is rolled back and every article is retried in a
        transaction of its own, so one bad article never loses the others; if
        some still fail, `BatchStoreError` is raised after the rest are committed.
        """
        if not articles:
            return []
        # A fixed lock order (by URL) keeps two overlapping batches on PostgreSQL
        # from deadlocking each other; the sort is stable, so repeats keep their order.
        order = sorted(range(len(articles)), key=lambda i: articles[i].url)
        outcomes: list[StoreOutcome | None] = [None] * len(articles)
        try:
            with self.engine.begin() as connection:
                for index, outcome in self._store_batch(connection, articles, order, note):
                    outcomes[index] = outcome
            return outcomes  # type: ignore[return-value]
        except Exception as exc:
            # An outage (server gone, no answer): retrying article by article would
            # only block the crawl longer; the caller keeps the batch and backs off.
            if fault_kind(exc) == OUTAGE:
                raise
            # A refused value or contention; not only driver errors: a malformed
            # article (a naive datetime) must not cost the rest of the batch either.
            logger.warning(
                "storing a batch of %d articles failed (%s: %s); retrying one by one",
                len(articles),
                type(exc).__name__,
                exc,
            )
        outcomes = [None] * len(articles)
        failures: list[tuple[int, BaseException]] = []
        outage: BaseException | None = None
        for index in order:
            article = articles[index]
            if outage is not None:
                # The server went away meanwhile: the rest wait for the next flush.
                failures.append((index, outage))
                continue
            try:
                outcomes[index] = self._with_retries(
                    lambda connection, article=article: self._store_one(connection, article, note)
                )
            except Exception as exc:
                if fault_kind(exc) == OUTAGE:
                    outage = exc
                else:
                    logger.error("could not store %s: %s: %s", article.url, type(exc).__name__, exc)
                failures.append((index, exc))
        if failures:
            failures.sort(key=lambda failure: failure[0])
            raise BatchStoreError(outcomes, failures) from failures[0][1]
        return outcomes  # type: ignore[return-value]

    def _store_batch(
        self,
        connection: Connection,
        articles: Sequence[Article],
        order: Sequence[int],
        note: str | None,
    ) -> Iterator[tuple[int, StoreOutcome]]:
        """Store a batch in `connection`'s transaction: the articles not yet archived
        (a crawl's usual case) with one statement per table for the whole batch; the
        others, and any whose row a concurrent writer inserted first, one by one as
        `_store_one` does.  Yields (index, outcome).

        Lock order on PostgreSQL: first the new rows by URL (one INSERT), then the
        existing ones by URL (`order`), the same in every batch."""
        for article in articles:  # every URL checked before any row is written
            require_key(article.url, "article URL")
        articles_table = tables.articles
        existing = set(
            connection.execute(
                select(articles_table.c.url).where(
                    articles_table.c.url.in_({article.url for article in articles})
                )
            ).scalars()
        )
        fresh: dict[str, int] = {}  # URL -> index of its first article in `order`
        for index in order:
            url = articles[index].url
            if url not in existing and url not in fresh:
                fresh[url] = index
        inserted: dict[str, int] = {}
        if fresh:
            rows = []
            for index in fresh.values():
                article = articles[index]
                seen_at = article.fetched_at
                rows.append(
                    {
                        **_content_columns(article),
                        **_metadata_columns(article),
                        "first_seen_at": seen_at,
                        "last_seen_at": seen_at,
                        "last_changed_at": seen_at,
                    }
                )
            # The unique constraint, not the look-up above, decides who is first: a row
            # a concurrent writer inserted meanwhile returns nothing and goes one by one.
            result = connection.execute(
                self._insert(articles_table)
                .on_conflict_do_nothing(index_elements=[articles_table.c.url])
                .returning(articles_table.c.id, articles_table.c.url),
                rows,
            )
            inserted = {row.url: row.id for row in result}
            self._complete_new(
                connection, [(inserted[url], articles[fresh[url]]) for url in inserted], note
            )
            for url in inserted:
                yield fresh[url], "new"
        for index in order:
            article = articles[index]
            if fresh.get(article.url) == index and article.url in inserted:
                continue
            yield index, self._store_one(connection, article, note)

    def _complete_new(
        self, connection: Connection, new: Sequence[tuple[int, Article]], note: str | None
    ) -> None:
        """The rows that go with newly inserted articles (id, article): their aliases,
        search entries, first versions, tags and images, one statement each."""
        if not new:
            return
        # (An over-long fetched URL stays in the article's fetched_url column.)
        aliases = [
            (AliasSeen(article.site, article.fetched_url, article.url), article.fetched_at)
            for _, article in new
            if article.fetched_url != article.url and fits_key(article.fetched_url)
        ]
        self._upsert_aliases(connection, aliases)
        fulltext.index_articles(
            connection,
            [(article_id, tokens.article_search_text(article)) for article_id, article in new],
        )
        connection.execute(
            tables.versions.insert(),
            [
                _version_row(article_id, article, version=1, note=note)
                for article_id, article in new
            ],
        )
        tag_rows = [
            {"article_id": article_id, "position": position, "tag": tag}
            for article_id, article in new
            for position, tag in enumerate(article.tags)
        ]
        if tag_rows:
            connection.execute(tables.tags.insert(), tag_rows)
        image_rows = [
            _image_row(article_id, position, image)
            for article_id, article in new
            for position, image in enumerate(article.images)
        ]
        if image_rows:
            connection.execute(tables.images.insert(), image_rows)

    def _with_retries(self, work: Callable[[Connection], _T]) -> _T:
        # Lock timeouts, deadlocks and serialization failures usually pass on a second
        # try; an outage or a refused value won't.
        for attempt in range(self.retries + 1):
            try:
                with self.engine.begin() as connection:
                    return work(connection)
            except Exception as exc:
                if fault_kind(exc) != CONTENTION or attempt == self.retries:
                    raise
                time.sleep(self.backoff * 2**attempt)
        raise AssertionError("unreachable")

    def _store_one(
        self, connection: Connection, article: Article, note: str | None = None
    ) -> StoreOutcome:
        seen_at = article.fetched_at
        require_key(article.url, "article URL")
        content = _content_columns(article)
        inserted = connection.execute(
            self._insert(tables.articles)
            .values(
                **content,
                **_metadata_columns(article),
                first_seen_at=seen_at,
                last_seen_at=seen_at,
                last_changed_at=seen_at,
            )
            # The unique constraint, not an in-memory set, decides who is first:
            # a concurrent writer's row makes this a no-op that returns nothing.
            .on_conflict_do_nothing(index_elements=[tables.articles.c.url])
            .returning(tables.articles.c.id)
        ).scalar_one_or_none()
        if article.fetched_url != article.url and fits_key(article.fetched_url):
            # (An over-long fetched URL stays in the article's fetched_url column.)
            self._upsert_aliases(
                connection, [(AliasSeen(article.site, article.fetched_url, article.url), seen_at)]
            )
        if inserted is not None:
            fulltext.index_articles(connection, [(inserted, tokens.article_search_text(article))])
            self._insert_version(connection, inserted, article, version=1, note=note)
            self._replace_tags(connection, inserted, article.tags)
            self._replace_images(connection, inserted, article.images)
            return "new"

        query = select(
            tables.articles.c.id,
            tables.articles.c.content_hash,
            tables.articles.c.last_seen_at,
            func.length(tables.articles.c.body).label("body_length"),
        ).where(tables.articles.c.url == article.url)
        if self._lock_rows:
            query = query.with_for_update()
        row = connection.execute(query).one()
        last_seen_at = max(row.last_seen_at, seen_at)
        if row.content_hash == content["content_hash"]:
            # The page is whole again: whatever was held back was a passing fault.
            connection.execute(delete(tables.held).where(tables.held.c.article_id == row.id))
            connection.execute(
                update(tables.articles)
                .where(tables.articles.c.id == row.id)
                .values(**_metadata_columns(article), last_seen_at=last_seen_at)
            )
            self._replace_tags(connection, row.id, article.tags, only_if_different=True)
            self._replace_images(connection, row.id, article.images, only_if_different=True)
            return "unchanged"

        captured_at = seen_at
        suspect = article.suspect or _shrunk(row.body_length, len(article.body))
        if suspect is not None:
            confirmed = self._hold(connection, row.id, article, suspect, seen_at)
            if confirmed is None:
                connection.execute(
                    update(tables.articles)
                    .where(tables.articles.c.id == row.id)
                    .values(last_seen_at=last_seen_at)
                )
                return "held"
            captured_at = confirmed
        connection.execute(delete(tables.held).where(tables.held.c.article_id == row.id))
        connection.execute(
            update(tables.articles)
            .where(tables.articles.c.id == row.id)
            .values(
                **content,
                **_metadata_columns(article),
                last_seen_at=last_seen_at,
                last_changed_at=captured_at,
            )
        )
        latest = connection.execute(
            select(func.max(tables.versions.c.version)).where(
                tables.versions.c.article_id == row.id
            )
        ).scalar_one()
        fulltext.index_articles(connection, [(row.id, tokens.article_search_text(article))])
        self._insert_version(
            connection,
            row.id,
            article,
            version=(latest or 0) + 1,
            note=note,
            captured_at=captured_at,
        )
        self._replace_tags(connection, row.id, article.tags)
        self._replace_images(connection, row.id, article.images)
        return "changed"

    def _hold(
        self,
        connection: Connection,
        article_id: int,
        article: Article,
        reason: str,
        seen_at: datetime,
    ) -> datetime | None:
        """Hold `article`, a suspect change of the stored article `article_id`, back:
        None while it waits for confirmation; when a fetch before this one held the
        same content, that first fetch's time (the caller publishes it)."""
        held = connection.execute(
            select(tables.held.c.content_hash, tables.held.c.captured_at).where(
                tables.held.c.article_id == article_id
            )
        ).one_or_none()
        if held is not None and held.content_hash == article.content_hash:
            if held.captured_at < seen_at:
                return held.captured_at
            return None  # the same fetch again (a replayed capture) confirms nothing
        connection.execute(delete(tables.held).where(tables.held.c.article_id == article_id))
        connection.execute(
            tables.held.insert().values(
                article_id=article_id,
                title=article.title,
                body=article.body,
                content_hash=article.content_hash,
                fetched_url=article.fetched_url,
                captured_at=seen_at,
                last_seen_at=seen_at,
                reason=reason,
            )
        )
        return None

    def _insert_version(
        self,
        connection: Connection,
        article_id: int,
        article: Article,
        *,
        version: int,
        note: str | None = None,
        captured_at: datetime | None = None,
    ) -> None:
        connection.execute(
            tables.versions.insert(),
            [
                _version_row(
                    article_id, article, version=version, note=note, captured_at=captured_at
                )
            ],
        )

    def _replace_tags(
        self,
        connection: Connection,
        article_id: int,
        tags: Sequence[str],
        *,
        only_if_different: bool = False,
    ) -> None:
        if only_if_different:
            stored = (
                connection.execute(
                    select(tables.tags.c.tag)
                    .where(tables.tags.c.article_id == article_id)
                    .order_by(tables.tags.c.position)
                )
                .scalars()
                .all()
            )
            if list(stored) == list(tags):
                return
        connection.execute(delete(tables.tags).where(tables.tags.c.article_id == article_id))
        if tags:
            connection.execute(
                tables.tags.insert(),
                [
                    {"article_id": article_id, "position": position, "tag": tag}
                    for position, tag in enumerate(tags)
                ],
            )

    def _replace_images(
        self,
        connection: Connection,
        article_id: int,
        images: Sequence[Image],
        *,
        only_if_different: bool = False,
    ) -> None:
        if only_if_different:
            stored = connection.execute(
                select(tables.images.c.url, tables.images.c.caption, tables.images.c.alt)
                .where(tables.images.c.article_id == article_id)
                .order_by(tables.images.c.position)
            ).all()
            if [Image(*row) for row in stored] == list(images):
                return
        connection.execute(delete(tables.images).where(tables.images.c.article_id == article_id))
        if images:
            connection.execute(
                tables.images.insert(),
                [_image_row(article_id, position, image) for position, image in enumerate(images)],
            )

    # ------------------------------------------------------------------ aliases

    def record_aliases(
        self, aliases: Sequence[AliasSeen], seen_at: datetime
    ) -> list[tuple[int, BaseException]]:
        """Remember that each alias URL names its canonical article URL; return the
        aliases the database refused (index, error), e.g. a URL too long for a key.

        A known alias only has its ``last_seen_at`` moved forward.  Aliases equal to
        their canonical URL are skipped.  `seen_at` must be timezone-aware.  Written
        in one transaction (see `write_rows`); an outage raises.
        """
        return write_rows(
            self.engine,
            aliases,
            lambda connection, rows: self._upsert_aliases(
                connection, [(alias, seen_at) for alias in rows]
            ),
        )

    def _upsert_aliases(
        self, connection: Connection, aliases: Sequence[tuple[AliasSeen, datetime]]
    ) -> None:
        """Upsert (alias, when seen) pairs in one statement."""
        # One row per alias URL: PostgreSQL refuses to update a row twice in one
        # statement, and the last mapping seen is the one to keep.
        rows = {
            alias.alias_url: {
                "url": require_key(alias.alias_url, "alias URL"),
                "canonical_url": require_key(alias.canonical_url, "canonical URL"),
                "site": alias.site,
                "first_seen_at": seen_at,
                "last_seen_at": seen_at,
            }
            for alias, seen_at in aliases
            if alias.alias_url != alias.canonical_url
        }
        if not rows:
            return
        statement = self._insert(tables.aliases)
        excluded = statement.excluded
        statement = statement.on_conflict_do_update(
            index_elements=[tables.aliases.c.url],
            # Never move last_seen_at backwards when an old capture is replayed.
            set_={
                "last_seen_at": case(
                    (excluded.last_seen_at > tables.aliases.c.last_seen_at, excluded.last_seen_at),
                    else_=tables.aliases.c.last_seen_at,
                )
            },
        )
        connection.execute(statement, list(rows.values()))

    # ----------------------------------------------------------- runs and errors

    def start_run(
        self, spider: str, settings: dict[str, Any], *, started_at: datetime | None = None
    ) -> int:
        """Record the start of a crawl; return the run id for `finish_run` and
        `record_errors`.  `settings` is stored as JSON (non-JSON values via ``str``);
        `started_at` defaults to now (UTC)."""
        with self.engine.begin() as connection:
            return connection.execute(
                tables.runs.insert()
                .values(
                    spider=spider,
                    started_at=started_at or datetime.now(UTC),
                    settings=_to_json(settings),
                )
                .returning(tables.runs.c.id)
            ).scalar_one()

    def finish_run(
        self, run_id: int, finish_reason: str, stats: dict[str, Any], finished_at: datetime
    ) -> None:
        """Record how the crawl `run_id` ended and its final stats (stored as JSON)."""
        with self.engine.begin() as connection:
            connection.execute(
                update(tables.runs)
                .where(tables.runs.c.id == run_id)
                .values(
                    finished_at=finished_at,
                    finish_reason=finish_reason,
                    stats=_to_json(stats),
                )
            )

    def record_errors(
        self,
        run_id: int | None,
        spider: str,
        problems: Sequence[Rejection | FetchFailure],
        occurred_at: datetime,
    ) -> list[tuple[int, BaseException]]:
        """Record rejected pages and failed requests, with their reason slugs; return
        the problems the database refused (index, error).  A URL too long for a key
        is cut (`fit_key`), its length noted in the detail: the record of a problem
        is kept whole where it can be.  Written as `write_rows` writes."""

        def insert(connection: Connection, rows: Sequence[Rejection | FetchFailure]) -> None:
            connection.execute(
                tables.errors.insert(),
                [_error_row(run_id, spider, problem, occurred_at) for problem in rows],
            )

        return write_rows(self.engine, problems, insert)

    # -------------------------------------------------------------------- reads

    def count_articles(self, site: str | None = None) -> int:
        """Number of distinct articles, optionally of one site (spider name)."""
        query = select(func.count()).select_from(tables.articles)
        if site is not None:
            query = query.where(tables.articles.c.site == site)
        with self._reader.connect() as connection:
            return connection.execute(query).scalar_one()

    def count_versions(self, url: str) -> int:
        """Number of stored versions of the article at canonical `url` (0 if unknown)."""
        query = (
            select(func.count())
            .select_from(tables.versions.join(tables.articles))
            .where(tables.articles.c.url == url)
        )
        with self._reader.connect() as connection:
            return connection.execute(query).scalar_one()

    def get_article(self, url: str) -> dict[str, Any] | None:
        """The stored article at canonical `url` as a dict of its columns (``sources``
        decoded from JSON) plus ``tags`` (list of str) and ``images`` (list of dicts
        with ``url``, ``caption``, ``alt``), or None."""
        with self._reader.connect() as connection:
            row = (
                connection.execute(select(tables.articles).where(tables.articles.c.url == url))
                .mappings()
                .one_or_none()
            )
            if row is None:
                return None
            article = dict(row)
            article["sources"] = json.loads(row["sources"]) if row["sources"] else {}
            article["tags"] = list(
                connection.execute(
                    select(tables.tags.c.tag)
                    .where(tables.tags.c.article_id == row["id"])
                    .order_by(tables.tags.c.position)
                ).scalars()
            )
            article["images"] = [
                dict(image)
                for image in connection.execute(
                    select(tables.images.c.url, tables.images.c.caption, tables.images.c.alt)
                    .where(tables.images.c.article_id == row["id"])
                    .order_by(tables.images.c.position)
                ).mappings()
            ]
        return article

    def list_versions(self, url: str) -> list[dict[str, Any]]:
        """The versions of the article at canonical `url`, oldest first, as dicts."""
        query = (
            select(tables.versions)
            .join(tables.articles)
            .where(tables.articles.c.url == url)
            .order_by(tables.versions.c.version)
        )
        with self._reader.connect() as connection:
            return [dict(row) for row in connection.execute(query).mappings()]

    def get_alias(self, url: str) -> dict[str, Any] | None:
        """The `url_aliases` row for alias `url` as a dict, or None."""
        with self._reader.connect() as connection:
            row = (
                connection.execute(select(tables.aliases).where(tables.aliases.c.url == url))
                .mappings()
                .one_or_none()
            )
        return dict(row) if row is not None else None

    def get_run(self, run_id: int) -> dict[str, Any] | None:
        """The crawl run as a dict, ``settings`` and ``stats`` decoded from JSON."""
        with self._reader.connect() as connection:
            row = (
                connection.execute(select(tables.runs).where(tables.runs.c.id == run_id))
                .mappings()
                .one_or_none()
            )
        if row is None:
            return None
        run = dict(row)
        for key in ("settings", "stats"):
            run[key] = json.loads(row[key]) if row[key] is not None else None
        return run

    def list_errors(self, run_id: int | None = None) -> list[dict[str, Any]]:
        """Recorded crawl errors (of one run, if given), oldest first, as dicts."""
        query = select(tables.errors).order_by(tables.errors.c.occurred_at, tables.errors.c.id)
        if run_id is not None:
            query = query.where(tables.errors.c.run_id == run_id)
        with self._reader.connect() as connection:
            return [dict(row) for row in connection.execute(query).mappings()]


def _shrunk(stored_length: int, new_length: int) -> str | None:
    """Why a body of `new_length` characters replacing one of `stored_length` is
    suspect, or None: it lost more than half its length (an edit seldom does; a page
    cut off mid-body, 608 → 77 characters, does)."""
    if 2 * new_length < stored_length:
        return f"body shrank from {stored_length} to {new_length} characters"
    return None


def _error_row(
    run_id: int | None, spider: str, problem: Rejection | FetchFailure, occurred_at: datetime
) -> dict[str, Any]:
    url, detail = fit_key(problem.url), problem.detail
    if url != problem.url:
        detail = f"{detail} (URL of {len(problem.url)} characters cut)".lstrip()
    return {
        "run_id": run_id,
        "spider": spider,
        "url": url,
        "status": getattr(problem, "status", None),
        "reason": problem.reason,
        "detail": detail,
        "occurred_at": occurred_at,
    }


def _version_row(
    article_id: int,
    article: Article,
    *,
    version: int,
    note: str | None = None,
    captured_at: datetime | None = None,
) -> dict[str, Any]:
    return {
        "article_id": article_id,
        "version": version,
        "title": article.title,
        "subtitle": article.subtitle,
        "author": article.author,
        "body": article.body,
        "content_hash": article.content_hash,
        "published_at": article.published_at,
        "modified_at": article.modified_at,
        "captured_at": captured_at or article.fetched_at,
        "fetched_url": article.fetched_url,
        "note": note,
    }


def _image_row(article_id: int, position: int, image: Image) -> dict[str, Any]:
    return {
        "article_id": article_id,
        "position": position,
        "url": image.url,
        "caption": image.caption,
        "alt": image.alt,
    }


def _content_columns(article: Article) -> dict[str, Any]:
    """The columns whose change makes a new version (the hash covers title and body)."""
    return {
        "site": article.site,
        "url": article.url,
        "title": article.title,
        "body": article.body,
        "content_hash": article.content_hash,
        "published_at": article.published_at,
        "published_raw": article.published_raw,
        # Goes with the body: the learned blocks dropped from this very body.
        "dropped_blocks": " ".join(article.dropped_blocks) or None,
    }


def _metadata_columns(article: Article) -> dict[str, Any]:
    """The columns refreshed on every capture, changed content or not."""
    return {
        "subtitle": article.subtitle,
        "author": article.author,
        "modified_at": article.modified_at,
        "modified_raw": article.modified_raw,
        "section": article.section,
        "language": article.language,
        "fetched_url": article.fetched_url,
        "sources": _to_json(article.sources) if article.sources else None,
    }


def _to_json(value: Any) -> str:
    # default=str: Scrapy stats hold datetimes, settings may hold classes.
    return json.dumps(value, ensure_ascii=False, default=str)
