"""Engines: SQLite pragmas and locking, migration location, URL masking."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from storage.engine import (
    MIGRATIONS_DIR,
    READ_ONLY_OPTION,
    alembic_config,
    create_archive_engine,
    current_revision,
    mask_url,
    upgrade_to_head,
)


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


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        (
            "postgresql+psycopg://archive:s3cret@db:5432/news",
            "postgresql+psycopg://archive:***@db:5432/news",
        ),
        ("sqlite:///archive.db", "sqlite:///archive.db"),
        ("not a url", "<unparseable database URL>"),
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
