"""Fixtures shared by every test: one SQLite file per test, one PostgreSQL
database per session (emptied per test), and a parametrised URL over both."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from scrapy.utils.reactor import install_reactor, is_reactor_installed
from sqlalchemy import Engine

import news_archive.crawler.settings as project_settings
from news_archive.storage.engine import create_archive_engine, upgrade_to_head
from news_archive.storage.repository import ArchiveRepository

# In-process component tests build crawlers with the project's TWISTED_REACTOR; a
# heartbeat's LoopingCall would otherwise install Twisted's default reactor first.
if not is_reactor_installed():
    install_reactor(project_settings.TWISTED_REACTOR)

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


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
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
