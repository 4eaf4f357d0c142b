"""The archive's one door: `Archive`, one object over one engine.

Everything outside ``storage/`` reaches the database through an `Archive`:

    archive = Archive.open("sqlite:///archive.db")      # builds the engine, migrates
    archive.articles.store([...])                      # articles, versions, aliases
    archive.visits.due("maeil_ilbo", now, 500)          # incremental crawl state
    archive.runs.start("maeil_ilbo", {...})             # crawl_runs, crawl_errors
    archive.locks.acquire(...)                          # crawl_locks
    archive.captures.write(records, links)              # the WARC index
    archive.reads.search("카카오")                       # search, export, stats
    archive.boilerplate.learn("maeil_ilbo", ...)        # learned boilerplate
    archive.close()

Callers never see SQLAlchemy or a driver: a failure that may pass by itself (the
server is down or restarting, a connection dropped, no answer in time, a lock wait
timed out) is raised as `DatabaseUnavailable`; any other database failure as
`ArchiveError` (see `storage.faults` for how they are told apart).

Rows are judged one by one: the writes of aliases, visits and problems return the
rows the database refused (`Refused`) and write the others; a refused value never
fails its batch.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, ParamSpec, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlalchemy.engine import URL
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError

from news_archive.storage import boilerplate as _boilerplate
from news_archive.storage import captures as _captures
from news_archive.storage import locks as _locks
from news_archive.storage import runs as _runs
from news_archive.storage import search as _search
from news_archive.storage import visits as _visits
from news_archive.storage.captures import (
    CaptureLink,
    CaptureRecord,
    ReextractionTarget,
    StoredPayload,
)
from news_archive.storage.engine import (
    ConnectionTimeouts,
    create_archive_engine,
    current_revision,
    mask_url,
    upgrade_to_head,
)
from news_archive.storage.faults import PartialWrite, is_transient
from news_archive.storage.locks import LockResult
from news_archive.storage.repository import ArchiveRepository, BatchStoreError, StoreOutcome
from news_archive.storage.visits import VisitRecord, VisitState
from news_archive.vocabulary import (
    AliasSeen,
    Article,
    FetchFailure,
    LearnedBoilerplate,
    Rejection,
)

_P = ParamSpec("_P")
_T = TypeVar("_T")


_Item = TypeVar("_Item")


class ArchiveError(Exception):
    """The database refused an operation (a constraint, bad data, a bug)."""

    @property
    def reason(self) -> str:
        """The driver's own words, without SQLAlchemy's ``(module.Class)`` prefix:
        what a one-line error message shows."""
        text = str(self).strip()
        return text.split(") ", 1)[1] if text.startswith("(") and ") " in text else text


@dataclass(frozen=True, slots=True)
class Refused(Generic[_Item]):
    """One row the database refused for its values (`error` says why); the other
    rows of its batch were written."""

    item: _Item
    error: ArchiveError


class DatabaseUnavailable(ArchiveError):
    """The database cannot be reached right now (down, restarting, connection lost,
    no answer in time, lock wait timed out): trying again later may succeed.

    Raised by a write of several rows: nothing was written, unless the outage came
    while they were written one by one (after a refused value); then the first
    `handled` rows were each written or refused (`refused`), the rest were not tried.
    """

    handled: int = 0
    refused: Sequence[Refused[Any]] = ()


class DatabaseRefused(ArchiveError):
    """The database URL cannot work as given: it does not parse or names an unknown
    driver, or the database refuses it for good (no such database or role, a wrong
    password, a SQLite path that cannot be opened or is not a database).  A
    configuration error, raised by `Archive.open`: trying again will not help."""


# What a server or SQLite answers, at connect, to a URL that will never work
# (PostgreSQL gives no SQLSTATE for a connection that failed).
_REFUSED_FOR_GOOD = (
    "does not exist",  # PostgreSQL: database "x" / role "x" does not exist
    "password authentication failed",
    "no password supplied",
    "no pg_hba.conf entry",
    "unable to open database file",  # SQLite: no such folder, not allowed
    "file is not a database",
)


# 3D000 invalid_catalog_name, 28000 invalid_authorization_specification,
# 28P01 invalid_password: when the server does name its refusal.
_REFUSED_SQLSTATES = ("3D000", "28000", "28P01")


def refused_for_good(error: BaseException) -> bool:
    """Whether `error`, raised while opening the database, means its URL can never
    work (see `DatabaseRefused`) rather than an outage."""
    if isinstance(error, DatabaseRefused):
        return True
    if not isinstance(error, DBAPIError) or error.connection_invalidated:
        return False
    sqlstate = getattr(error.orig, "sqlstate", None)
    if sqlstate:
        # A server's answer to a statement (a migration that failed, say) is no URL
        # problem, unless it is one of these: no such database, bad authorization.
        return bool(sqlstate in _REFUSED_SQLSTATES)
    message = str(error.orig)
    return any(phrase in message for phrase in _REFUSED_FOR_GOOD)


def translate(error: BaseException) -> ArchiveError:
    """`error` as the archive's own exception type (its message kept)."""
    if isinstance(error, ArchiveError):
        return error
    if isinstance(error, PartialWrite) and error.__cause__ is not None:
        return translate(error.__cause__)
    kind = DatabaseUnavailable if is_transient(error) else ArchiveError
    return kind(str(error).splitlines()[0] if str(error) else type(error).__name__)


def _write_rows(
    items: Sequence[_Item], write: Callable[[], list[tuple[int, BaseException]]]
) -> list[Refused[_Item]]:
    """Run a `write_rows`-style write of `items`; its refusals as `Refused`, its
    outage as `DatabaseUnavailable` (with what was handled before it)."""
    try:
        refusals = write()
    except PartialWrite as partial:
        unavailable = translate(partial)
        assert isinstance(unavailable, DatabaseUnavailable)
        unavailable.handled = partial.handled
        unavailable.refused = _refused(items, partial.refused)
        raise unavailable from partial.__cause__
    except SQLAlchemyError as error:
        raise translate(error) from error
    return _refused(items, refusals)


def _refused(
    items: Sequence[_Item], refusals: list[tuple[int, BaseException]]
) -> list[Refused[_Item]]:
    return [Refused(items[index], translate(error)) for index, error in refusals]


def _guarded(method: Callable[_P, _T]) -> Callable[_P, _T]:
    """Raise SQLAlchemy's errors as `DatabaseUnavailable` / `ArchiveError`."""

    @functools.wraps(method)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        try:
            return method(*args, **kwargs)
        except SQLAlchemyError as error:
            raise translate(error) from error

    return wrapper


class StoreFailures(ArchiveError):
    """Some articles of a batch could not be stored; the others were committed.

    `outcomes` holds each article's outcome, or None where it failed, in input order;
    `failures` pairs the index of each failed article with its (translated) error."""

    def __init__(
        self, outcomes: list[StoreOutcome | None], failures: list[tuple[int, ArchiveError]]
    ) -> None:
        super().__init__(f"{len(failures)} of {len(outcomes)} articles not stored")
        self.outcomes = outcomes
        self.failures = failures


class Articles:
    """Articles, their versions, tags, images and URL aliases."""

    def __init__(self, repository: ArchiveRepository) -> None:
        self._repository = repository

    def store(self, articles: Sequence[Article], *, note: str | None = None) -> list[StoreOutcome]:
        """Store `articles` (batched, one transaction, falling back to one per article);
        return ``new``/``changed``/``unchanged``/``held`` for each. Raises `StoreFailures`
        when some could not be stored, `DatabaseUnavailable` when none could be tried."""
        try:
            return self._repository.store_articles(articles, note=note)
        except BatchStoreError as error:
            raise StoreFailures(
                list(error.outcomes),
                [(index, translate(failure)) for index, failure in error.failures],
            ) from error
        except SQLAlchemyError as error:
            raise translate(error) from error

    def record_aliases(
        self, aliases: Sequence[AliasSeen], seen_at: datetime
    ) -> list[Refused[AliasSeen]]:
        """Write the aliases (one transaction); return those refused for their values."""
        return _write_rows(aliases, lambda: self._repository.record_aliases(aliases, seen_at))

    @_guarded
    def count(self, site: str | None = None) -> int:
        return self._repository.count_articles(site)


class Visits:
    """When each article URL was visited and when it is due again (``url_state``)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @_guarded
    def states(self, urls: Iterable[str]) -> dict[str, VisitState]:
        return _visits.states(self._engine, urls)

    @_guarded
    def due(self, site: str, now: datetime, limit: int) -> list[VisitState]:
        return _visits.due(self._engine, site, now, limit)

    @_guarded
    def canonical_of(self, urls: Iterable[str]) -> dict[str, str]:
        return _visits.canonical_of(self._engine, urls)

    def record(self, visits: Sequence[VisitRecord]) -> list[Refused[VisitRecord]]:
        """Write the visits (one transaction); return those refused for their values."""
        return _write_rows(visits, lambda: _visits.record(self._engine, visits))


class Runs:
    """Crawl runs (``crawl_runs``) and their problems (``crawl_errors``)."""

    def __init__(self, engine: Engine, repository: ArchiveRepository) -> None:
        self._engine = engine
        self._repository = repository

    @_guarded
    def start(self, spider: str, settings: dict[str, Any]) -> int:
        return self._repository.start_run(spider, settings)

    @_guarded
    def finish(
        self, run_id: int, finish_reason: str, stats: dict[str, Any], finished_at: datetime
    ) -> None:
        self._repository.finish_run(run_id, finish_reason, stats, finished_at)

    def record_errors(
        self,
        run_id: int | None,
        spider: str,
        problems: Sequence[Rejection | FetchFailure],
        occurred_at: datetime,
    ) -> list[Refused[Rejection | FetchFailure]]:
        """Write the problems (one transaction); return those refused for their values."""
        return _write_rows(
            problems,
            lambda: self._repository.record_errors(run_id, spider, problems, occurred_at),
        )

    @_guarded
    def record_figures(self, run_id: int, figures: Mapping[str, Any]) -> None:
        _runs.record_run_figures(self._engine, run_id, figures)

    @_guarded
    def record_worker(self, run_id: int, crawl_id: str, worker: str) -> None:
        _runs.record_worker(self._engine, run_id, crawl_id, worker)

    @_guarded
    def record_health(
        self, run_id: int, ok: bool, results: list[dict[str, Any]], exit_code: int
    ) -> None:
        _runs.record_health(self._engine, run_id, ok, results, exit_code)

    @_guarded
    def record_exit_code(self, run_id: int, exit_code: int) -> None:
        _runs.record_exit_code(self._engine, run_id, exit_code)

    @_guarded
    def previous(self, spider: str, limit: int, before_run_id: int) -> list[dict[str, Any]]:
        return _runs.previous_runs(self._engine, spider, limit, before_run_id)


class Locks:
    """The one-crawl-per-spider lock (``crawl_locks``)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @_guarded
    def acquire(
        self,
        spider: str,
        run_id: int | None,
        hostname: str,
        pid: int,
        now: datetime,
        stale_after: timedelta,
    ) -> LockResult:
        return _locks.acquire_run_lock(
            self._engine, spider, run_id, hostname, pid, now, stale_after
        )

    @_guarded
    def heartbeat(self, spider: str, pid: int, now: datetime, *, hostname: str) -> bool:
        return _locks.heartbeat(self._engine, spider, pid, now, hostname=hostname)

    @_guarded
    def release(self, spider: str, pid: int, *, hostname: str) -> bool:
        return _locks.release_run_lock(self._engine, spider, pid, hostname=hostname)


class Captures:
    """The index of the WARC captures (``captures``)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @_guarded
    def first_with_digests(self, digests: Sequence[str]) -> dict[str, StoredPayload]:
        return _captures.first_with_digests(self._engine, digests)

    @_guarded
    def write(self, records: Sequence[CaptureRecord], links: Sequence[CaptureLink]) -> None:
        """Index `records`, then link captures to the versions they produced."""
        _captures.write(self._engine, records, links)

    @_guarded
    def reextraction_targets(self, **limits: Any) -> list[ReextractionTarget]:
        return _captures.reextraction_targets(self._engine, **limits)

    @_guarded
    def articles_without_capture(self, **limits: Any) -> list[tuple[str, str]]:
        return _captures.articles_without_capture(self._engine, **limits)


class Reads:
    """What people ask of the archive: search, one article, export, counts."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @_guarded
    def search(self, query: str, **filters: Any) -> list[_search.SearchHit]:
        return _search.search(self._engine, query, **filters)

    def articles(self, **filters: Any) -> Iterator[dict[str, Any]]:
        try:
            yield from _search.iter_articles(self._engine, **filters)
        except SQLAlchemyError as error:
            raise translate(error) from error

    @_guarded
    def article_with_versions(self, url_or_id: str | int) -> dict[str, Any] | None:
        return _search.article_with_versions(self._engine, url_or_id)

    @_guarded
    def article_by_urls(self, urls: Sequence[str]) -> dict[str, Any] | None:
        """The article stored under the first of `urls` that names one, as its URL or
        an alias (one query); see `storage.search.article_by_urls`."""
        return _search.article_by_urls(self._engine, urls)

    @_guarded
    def daily_counts(self, *, zone: ZoneInfo, **filters: Any) -> list[_search.DailyCount]:
        """Articles per site and calendar day of `zone` (`search.daily_counts`)."""
        return _search.daily_counts(self._engine, zone=zone, **filters)

    @_guarded
    def site_totals(self) -> list[dict[str, Any]]:
        return _search.site_totals(self._engine)

    @_guarded
    def last_runs(self, limit: int = 10) -> list[dict[str, Any]]:
        return _search.last_runs(self._engine, limit)


class Boilerplate:
    """Learned boilerplate (``boilerplate_blocks``): learning, review, what applies
    (see `news_archive.storage.boilerplate`)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @_guarded
    def learn(
        self,
        site: str,
        *,
        window: int,
        min_articles: int,
        min_characters: int,
        now: datetime,
    ) -> _boilerplate.Learning:
        """Count the blocks of `site`'s newest `window` articles and write those found
        in at least `min_articles` (one transaction)."""
        return _boilerplate.learn(
            self._engine,
            site,
            window=window,
            min_articles=min_articles,
            min_characters=min_characters,
            now=now,
        )

    @_guarded
    def applied(self, site: str, thresholds: _boilerplate.Thresholds) -> LearnedBoilerplate:
        """The blocks of `site` extraction drops, under `thresholds`."""
        return _boilerplate.applied(self._engine, site, thresholds)

    @_guarded
    def blocks(
        self, thresholds: _boilerplate.Thresholds, *, site: str | None = None, prefix: str = ""
    ) -> list[_boilerplate.Block]:
        """The learned blocks (of `site`, whose hash starts with `prefix`), with status."""
        return _boilerplate.blocks(self._engine, thresholds, site=site, prefix=prefix)

    @_guarded
    def set_verdict(self, site: str, block_hash: str, verdict: str | None, now: datetime) -> bool:
        """A reviewer's verdict on one block (``furniture``, ``article``, None: the
        thresholds decide); False when there is no such block."""
        return _boilerplate.set_verdict(self._engine, site, block_hash, verdict, now)


class Archive:
    """The archive behind one engine; the only object other layers hold."""

    def __init__(self, engine: Engine, *, url: str | URL | None = None) -> None:
        self.engine = engine
        # As the user gave it (a read-only engine's URL is SQLite's URI form).
        self._url = url if url is not None else engine.url
        repository = ArchiveRepository(engine)
        self.articles = Articles(repository)
        self.visits = Visits(engine)
        self.runs = Runs(engine, repository)
        self.locks = Locks(engine)
        self.captures = Captures(engine)
        self.reads = Reads(engine)
        self.boilerplate = Boilerplate(engine)

    @classmethod
    def open(
        cls,
        url: str | URL,
        *,
        migrate: bool = True,
        timeouts: ConnectionTimeouts | None = None,
        read_only: bool = False,
        **engine_options: Any,
    ) -> Archive:
        """Build the engine for `url` (`engine_options` go to `create_engine`) and,
        with `migrate`, bring the schema to head (once; a no-op when it is there).

        `timeouts` bound every wait on a PostgreSQL server (connect, each answer,
        TCP keepalives), so that a hung server becomes `DatabaseUnavailable`
        within seconds; a crawl hands its ``DATABASE_*_TIMEOUT`` settings here.
        `read_only`: for readers (search, export...), never creates nor alters a SQLite
        file (see `create_archive_engine`); it cannot migrate."""
        if read_only and migrate:
            raise ValueError("a read-only archive cannot be migrated: pass migrate=False")
        try:
            engine = create_archive_engine(
                url, timeouts=timeouts, read_only=read_only, **engine_options
            )
        except (ArgumentError, ValueError) as error:
            # Unparseable, an unknown driver, a port that is no number (never the password).
            raise DatabaseRefused(f"unusable database URL: {error}") from error
        if migrate:
            try:
                upgrade_to_head(engine)
            except SQLAlchemyError as error:
                engine.dispose()
                if refused_for_good(error):
                    raise DatabaseRefused(str(translate(error))) from error
                raise translate(error) from error
            except BaseException:
                engine.dispose()
                raise
        return cls(engine, url=url)

    @property
    def url(self) -> str:
        """The database URL with its password masked, for logs and records."""
        return mask_url(self._url)

    @_guarded
    def revision(self) -> str | None:
        """The schema revision the database is at (None: never migrated)."""
        return current_revision(self.engine)

    @_guarded
    def upgrade(self) -> None:
        """Create the schema or migrate it to the newest revision."""
        upgrade_to_head(self.engine)

    @_guarded
    def ping(self) -> None:
        """Check out a connection now; `DatabaseUnavailable` says why not."""
        with self.engine.connect():
            pass

    def close(self) -> None:
        """Close the pooled connections (the object may still be used afterwards)."""
        self.engine.dispose()
