"""Engines: SQLite pragmas and locking, migration location, URL masking, and the
schema check that replaces migrating when the code runs without ``migrations/``."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.exc import OperationalError

from news_archive.storage import engine as engine_module
from news_archive.storage.engine import (
    MIGRATIONS_DIR,
    READ_ONLY_OPTION,
    SCHEMA_REVISION,
    SchemaNotUpgradableError,
    alembic_config,
    create_archive_engine,
    current_revision,
    mask_url,
    migrations_available,
    upgrade_to_head,
)
from tests.conftest import migrate_to


def _other_writer(sqlite_url: str) -> sqlite3.Connection:
    """A second, independent connection that gives up at once when locked."""
    return sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), timeout=0, isolation_level=None)


def test_sqlite_pragmas_are_in_effect(sqlite_url: str) -> None:
    engine = create_archive_engine(sqlite_url)
    try:
        with engine.connect() as connection:
            pragma = connection.exec_driver_sql
            assert pragma("PRAGMA journal_mode").scalar_one() == "wal"
            assert pragma("PRAGMA foreign_keys").scalar_one() == 1
            assert pragma("PRAGMA busy_timeout").scalar_one() == 30000
            assert pragma("PRAGMA synchronous").scalar_one() == 1  # NORMAL
    finally:
        engine.dispose()


def test_sqlite_transactions_take_the_write_lock_at_begin(sqlite_url: str) -> None:
    """BEGIN IMMEDIATE: a second writer waits at BEGIN instead of failing later."""
    engine = create_archive_engine(sqlite_url)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("SELECT 1")  # a read only, yet the lock is held
            other = _other_writer(sqlite_url)
            try:
                with pytest.raises(sqlite3.OperationalError, match="locked"):
                    other.execute("BEGIN IMMEDIATE")
            finally:
                other.close()
    finally:
        engine.dispose()


def test_sqlite_readers_do_not_hold_the_write_lock(sqlite_url: str) -> None:
    engine = create_archive_engine(sqlite_url)
    try:
        with engine.execution_options(**{READ_ONLY_OPTION: True}).connect() as connection:
            connection.exec_driver_sql("SELECT 1")
            assert connection.in_transaction()
            other = _other_writer(sqlite_url)
            try:
                other.execute("BEGIN IMMEDIATE")  # not locked out by the reader
                other.execute("ROLLBACK")
            finally:
                other.close()
    finally:
        engine.dispose()


def test_a_read_only_sqlite_engine_reads_and_never_writes_the_file(tmp_path: Path) -> None:
    archived = tmp_path / "an archive.db"
    upgrade_to_head(f"sqlite:///{archived}")
    empty = tmp_path / "empty.db"
    empty.touch()
    for path in (archived, empty):
        before = path.read_bytes()
        engine = create_archive_engine(f"sqlite:///{path}", read_only=True)
        try:
            with engine.connect() as connection:
                connection.exec_driver_sql("SELECT count(*) FROM sqlite_master").scalar_one()
                with pytest.raises(OperationalError, match="readonly"):
                    connection.exec_driver_sql("CREATE TABLE t (x)")
            assert current_revision(engine) == (SCHEMA_REVISION if path == archived else None)
        finally:
            engine.dispose()
        assert path.read_bytes() == before
    engine = create_archive_engine(f"sqlite:///{tmp_path / 'missing.db'}", read_only=True)
    with pytest.raises(OperationalError, match="unable to open"):
        engine.connect()
    assert not (tmp_path / "missing.db").exists()


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        (
            "postgresql+psycopg://archive:s3cret@db:5432/news",
            "postgresql+psycopg://archive:***@db:5432/news",
        ),
        ("sqlite:///archive.db", "sqlite:///archive.db"),
        ("not a url", "<unparseable database URL>"),
        # A secret in the query is masked too, whatever its case; other parameters stay.
        (
            "postgresql+psycopg://archive@db/news?password=s3cret&sslmode=require",
            "postgresql+psycopg://archive@db/news?password=***&sslmode=require",
        ),
        (
            "postgresql+psycopg://a:b@db/news?PassWord=1&sslpassword=2&token=3&secret=4&pwd=5",
            "postgresql+psycopg://a:***@db/news?PassWord=***&pwd=***&secret=***"
            "&sslpassword=***&token=***",
        ),
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_migrations_dir_does_not_depend_on_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert (MIGRATIONS_DIR / "env.py").is_file()
    url = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    upgrade_to_head(url)
    assert current_revision(url) == ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert not (tmp_path / "archive.db").exists()


def test_schema_revision_is_the_alembic_head() -> None:
    """SCHEMA_REVISION is what an egg without migrations checks for: it must be
    bumped together with every new migration."""
    script = ScriptDirectory.from_config(alembic_config())
    assert script.get_heads() == [SCHEMA_REVISION]


@pytest.fixture
def without_migrations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run as an installation without its migrations package."""
    monkeypatch.setattr(engine_module, "migrations_directory", lambda: None)
    assert not migrations_available()


def test_migrations_are_available_in_a_checkout() -> None:
    assert migrations_available()


def test_packaged_scripts_not_in_a_folder_are_migrated_from_a_copy(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As inside a zipped egg: the package's folder is not on disk, so Alembic gets a
    temporary copy of the scripts read through importlib.resources."""
    monkeypatch.setattr(engine_module, "MIGRATIONS_DIR", tmp_path / "egg.zip" / "migrations")
    engine_module.migrations_directory.cache_clear()
    try:
        copy = engine_module.migrations_directory()
        assert copy is not None and copy != engine_module.MIGRATIONS_DIR
        assert (copy / "env.py").is_file() and (copy / "versions" / "0001_initial.py").is_file()
        upgrade_to_head(sqlite_url)
        assert current_revision(sqlite_url) == SCHEMA_REVISION
    finally:
        engine_module.migrations_directory.cache_clear()


def test_without_migrations_a_database_at_head_is_a_no_op(
    database_url: str, request: pytest.FixtureRequest
) -> None:
    upgrade_to_head(database_url)  # migrated from the checkout first
    request.getfixturevalue("without_migrations")
    upgrade_to_head(database_url)
    engine = create_archive_engine(database_url)
    try:
        upgrade_to_head(engine)
        with engine.connect() as connection:
            upgrade_to_head(connection)
            assert not connection.in_transaction()  # committed, as on the normal path
    finally:
        engine.dispose()
    assert current_revision(database_url) == SCHEMA_REVISION


@pytest.mark.usefixtures("without_migrations")
def test_without_migrations_an_empty_database_is_an_error_saying_what_to_run(
    database_url: str,
) -> None:
    with pytest.raises(SchemaNotUpgradableError) as raised:
        upgrade_to_head(database_url)
    message = str(raised.value)
    assert "no archive schema (never migrated)" in message
    assert f"needs revision {SCHEMA_REVISION}" in message
    assert "news-archive db upgrade --database-url URL" in message
    assert "alembic -x url=URL upgrade head" in message
    assert mask_url(database_url) in message
    engine = create_archive_engine(database_url)
    try:
        assert inspect(engine).get_table_names() == []  # nothing was created
    finally:
        engine.dispose()


def test_without_migrations_an_older_database_is_an_error_and_left_alone(
    database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    migrate_to(database_url, "0003")
    monkeypatch.setattr(engine_module, "migrations_directory", lambda: None)
    with pytest.raises(SchemaNotUpgradableError, match=r"has schema revision 0003, but") as raised:
        upgrade_to_head(database_url)
    assert "news-archive db upgrade" in str(raised.value)
    assert current_revision(database_url) == "0003"
