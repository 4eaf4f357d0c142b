"""Fixtures shared by every test: one SQLite file per test, one PostgreSQL
database per session (emptied per test), a parametrised URL over both backends
(`BACKENDS`, the one list of them), and the seed crawl every backend gets once per
session (`seed_archive`), for tests that only read what a real crawl stored."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from alembic import command
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from psycopg import sql
from scrapy.utils.reactor import install_reactor, is_reactor_installed
from sqlalchemy import Connection, Engine

import news_archive.crawler.settings as project_settings
from news_archive.storage.engine import alembic_config, create_archive_engine, upgrade_to_head
from news_archive.storage.repository import ArchiveRepository
from tests.crawl.crawling import SEEDS, Snapshot, crawl, snapshot

# In-process component tests build crawlers with the project's TWISTED_REACTOR; a
# heartbeat's LoopingCall would otherwise install Twisted's default reactor first.
if not is_reactor_installed():
    install_reactor(project_settings.TWISTED_REACTOR)

# The archive's backends, the one list every parametrised test and fixture uses.
BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]

POSTGRES_SERVER = "host=127.0.0.1 port=5432 user=postgres dbname=test connect_timeout=5"
POSTGRES_URL_TEMPLATE = "postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def _admin_connection() -> psycopg.Connection:
    """An autocommit connection to the server's `test` database, or a skip/fail.

    Without a server the PostgreSQL half of the suite is skipped locally, but in
    CI (CI set and non-empty) a missing server must fail loudly, never pass quietly.
    """
    try:
        return psycopg.connect(POSTGRES_SERVER, autocommit=True)
    except psycopg.OperationalError as exc:
        message = f"PostgreSQL not reachable at 127.0.0.1:5432: {exc}"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


_postgres_reached = False


@pytest.fixture(autouse=True)
def _postgres_for_marked_tests(request: pytest.FixtureRequest) -> None:
    """A test marked ``postgres`` needs the server whichever fixtures it uses (one
    may name a database URL itself): without it, skip (or fail in CI) with the
    reason, as the database fixtures do."""
    global _postgres_reached
    if _postgres_reached or request.node.get_closest_marker("postgres") is None:
        return
    _admin_connection().close()
    _postgres_reached = True


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """URL of a fresh, empty SQLite file for this test."""
    return f"sqlite:///{tmp_path / 'archive.db'}"


@contextmanager
def new_postgres_database() -> Iterator[str]:
    """Create a PostgreSQL database (UTF-8, ``C.UTF-8`` so pg_trgm works on Hangul),
    yield its URL, and drop it afterwards even if connections are still open."""
    name = f"archive_test_{secrets.token_hex(6)}"
    with _admin_connection() as admin:
        admin.execute(
            sql.SQL(
                "CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8' "
                "LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8'"
            ).format(sql.Identifier(name))
        )
    try:
        yield POSTGRES_URL_TEMPLATE.format(name=name)
    finally:
        with _admin_connection() as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@contextmanager
def fresh_database(backend: str, directory: Path) -> Iterator[str]:
    """URL of a new, empty database on `backend` (``"sqlite"`` or ``"postgres"``),
    for fixtures of any scope; a SQLite file goes in `directory`."""
    if backend == "sqlite":
        yield f"sqlite:///{directory / 'archive.db'}"
    elif backend == "postgres":
        with new_postgres_database() as url:
            yield url
    else:
        raise ValueError(f"unknown backend {backend!r}")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of a PostgreSQL database created for this test session, dropped at its end."""
    with new_postgres_database() as url:
        yield url


def empty_postgres_database(url: str) -> None:
    """Drop every table of the session database by recreating schema ``public``.

    Much faster than a database per test; engines of earlier tests must be
    disposed first, or their open connections would block the DROP.
    """
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(
        f"host=127.0.0.1 port=5432 user=postgres dbname={name}", autocommit=True
    ) as connection:
        connection.execute("DROP SCHEMA public CASCADE")
        connection.execute("CREATE SCHEMA public")


def migrate_to(database_url: str, revision: str) -> None:
    """Bring the database at `database_url` to Alembic `revision` (up or down), as an
    older release of the project would have left it."""
    engine = create_archive_engine(database_url)
    try:
        with engine.connect() as connection:
            config = alembic_config()
            config.attributes["connection"] = connection
            step = command.downgrade if _is_older(connection, revision) else command.upgrade
            step(config, revision)
            connection.commit()
    finally:
        engine.dispose()


def _is_older(connection: Connection, revision: str) -> bool:
    """Whether `revision` comes before the database's own (a step down)."""
    current = MigrationContext.configure(connection).get_current_revision()
    if revision == "base" or current is None or current == revision:
        return revision == "base"
    script = ScriptDirectory.from_config(alembic_config())
    return revision in {step.revision for step in script.iterate_revisions(current, "base")}


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """URL of an EMPTY database (no tables at all) on each backend in turn."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'archive.db'}"
    url = request.getfixturevalue("postgres_url")
    empty_postgres_database(url)
    return url


@pytest.fixture
def archive_engine(database_url: str) -> Iterator[Engine]:
    """An engine on an empty database migrated to head, on each backend; disposed after."""
    engine = create_archive_engine(database_url)
    upgrade_to_head(engine)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def repository(archive_engine: Engine) -> ArchiveRepository:
    """The archive repository on a migrated, empty database, on each backend."""
    return ArchiveRepository(archive_engine)


@dataclass(frozen=True)
class SeedArchive:
    """An archive after three days of real crawls of both seed sites (``scrapy crawl``,
    replay mode, every known article due at once): `url` holds the last state, and
    `day1`, `day1_again` and `day2` are what SQL showed after each day.

    Shared by every test of the session on its backend: read it, never write to it."""

    backend: str
    url: str
    day1: Snapshot
    day1_again: Snapshot
    day2: Snapshot
    # stderr of each crawl, by step and spider: ``logs["day1"]["maeil_ilbo"]``
    logs: dict[str, dict[str, str]]


# The order the seed crawl runs its spiders in, each day.
SEED_SPIDERS = ("skt_insight", "maeil_ilbo")


@pytest.fixture(scope="session")
def seed_archives(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, SeedArchive]]:
    """The seed archive of each backend, crawled the first time a test asks for it
    and kept for the session (a parametrised session fixture would be torn down and
    crawled again whenever the test order switches backends)."""
    with ExitStack() as stack:
        yield _LazySeedArchives(stack, tmp_path_factory)


class _LazySeedArchives(dict[str, SeedArchive]):
    def __init__(self, stack: ExitStack, tmp_path_factory: pytest.TempPathFactory) -> None:
        super().__init__()
        self.stack = stack
        self.tmp_path_factory = tmp_path_factory

    def __missing__(self, backend: str) -> SeedArchive:
        folder = self.tmp_path_factory.mktemp("seed_archive")
        url = self.stack.enter_context(fresh_database(backend, folder))
        self[backend] = archive = _crawl_seeds(backend, url)
        return archive


def _crawl_seeds(backend: str, url: str) -> SeedArchive:
    """Both seed sites crawled: day 1, day 1 again (nothing changes: every article
    answers 304), then day 2 (one new and one edited article per site). Each crawl
    must exit 0."""
    # Every known article is due at once, so each run revisits all of them (with
    # conditional requests): the re-crawl and next-day semantics under test.
    always_due = ("-s", "REVISIT_SCHEDULE=*=0s")
    snapshots: dict[str, Snapshot] = {}
    logs: dict[str, dict[str, str]] = {}
    for step, suffix in (("day1", ""), ("day1_again", ""), ("day2", "_day2")):
        logs[step] = {
            spider: crawl(spider, SEEDS / f"{spider}{suffix}", url, *always_due).stderr
            for spider in SEED_SPIDERS
        }
        snapshots[step] = snapshot(url)
    return SeedArchive(backend, url, **snapshots, logs=logs)


@pytest.fixture(params=BACKENDS)
def seed_archive(
    request: pytest.FixtureRequest, seed_archives: dict[str, SeedArchive]
) -> SeedArchive:
    """Both seed sites crawled once per backend and session (see `_crawl_seeds`):
    read it, never write to it."""
    return seed_archives[request.param]
