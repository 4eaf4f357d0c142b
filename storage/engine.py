"""Building engines for the archive and bringing its schema up to date.

Nothing here runs at import time; callers (the crawler's pipeline, tests,
scripts) build an engine from the ``DATABASE_URL`` setting they were given.

The Alembic scripts are the package ``news_archive.migrations`` (the checkout's
``migrations/`` folder), installed with the code.  Alembic reads them from a
folder; where they are inside a zip (an egg built by ``scrapyd-deploy``) they are
first copied to a temporary folder.  Only an installation that lacks them
entirely makes `upgrade_to_head` refuse an outdated database, saying how to
migrate it.
"""

from __future__ import annotations

import atexit
import functools
import logging
import shutil
import sqlite3
import tempfile
import time
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"

logger = logging.getLogger(__name__)

# The newest revision in migrations/versions/, i.e. Alembic's head: the schema this
# code expects.  Bump it with every new migration (tests/storage/test_engine.py
# fails while it differs from the head).
SCHEMA_REVISION = "0006"

_SQLITE_PRAGMAS = (
    "PRAGMA busy_timeout=30000",  # wait up to 30 s for another writer's lock
    "PRAGMA foreign_keys=ON",  # SQLite ignores ON DELETE CASCADE without it
    "PRAGMA synchronous=NORMAL",  # safe with WAL, much cheaper than FULL
)
_WAL_SWITCH_SECONDS = 30.0

# Execution option for connections that only read: on SQLite they begin with a
# plain (deferred) BEGIN and so do not hold the write lock against crawlers;
# e.g. ``engine.execution_options(archive_read_only=True)``.
READ_ONLY_OPTION = "archive_read_only"


def create_archive_engine(url: str | URL, **kw: Any) -> Engine:
    """Create an engine for the archive at `url` (``sqlite:///PATH`` or
    ``postgresql+psycopg://...``); extra keyword arguments go to `create_engine`.

    SQLite connections get WAL, foreign keys, a 30 s busy timeout, and
    transactions that start with ``BEGIN IMMEDIATE``: a deferred ``BEGIN``
    takes the write lock only at the first write, and two processes that both
    read first then deadlock on the upgrade ("database is locked") instead of
    waiting for each other.  Connections with the `READ_ONLY_OPTION` execution
    option keep a deferred ``BEGIN``.  PostgreSQL connections are pinged before use so a
    restarted server costs a reconnect, not a failed batch.
    """
    url = make_url(url)
    if url.get_backend_name() == "sqlite":
        engine = create_engine(url, **kw)
        event.listen(engine, "connect", _configure_sqlite_connection)
        event.listen(engine, "begin", _begin_immediate)
        return engine
    kw.setdefault("pool_pre_ping", True)
    return create_engine(url, **kw)


def _configure_sqlite_connection(dbapi_connection: Any, connection_record: Any) -> None:
    # Stop the sqlite3 module from issuing its own (deferred) BEGIN; `_begin_immediate`
    # issues ours.  This also keeps it from committing implicitly before DDL.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        for pragma in _SQLITE_PRAGMAS:
            cursor.execute(pragma)
        _switch_to_wal(cursor)
    finally:
        cursor.close()


def _switch_to_wal(cursor: Any) -> None:
    """WAL: readers never block the writer nor the writer them.  The mode is
    stored in the file, so this is a cheap no-op once any connection has set it.

    Setting it on a new file needs an exclusive lock, and SQLite answers "database
    is locked" at once, without the busy handler, when another process is doing
    the same; two crawlers starting on a new file must wait here, not fail.
    """
    deadline = time.monotonic() + _WAL_SWITCH_SECONDS
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _begin_immediate(connection: Connection) -> None:
    if connection.get_execution_options().get(READ_ONLY_OPTION):
        # A reader needs no write lock; in WAL it sees a snapshot and blocks no one.
        connection.exec_driver_sql("BEGIN")
    else:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def alembic_config() -> Config:
    """An Alembic `Config` for this repository's migrations, independent of the
    current directory and of ``alembic.ini`` (whose logging setup would replace
    the crawler's)."""
    from alembic.config import Config

    directory = migrations_directory()
    if directory is None:
        raise SchemaNotUpgradableError(f"the migrations are not installed ({MIGRATIONS_DIR})")
    config = Config()
    config.set_main_option("script_location", str(directory))
    return config


class SchemaNotUpgradableError(RuntimeError):
    """The database is not at `SCHEMA_REVISION` and this installation has no
    migrations to bring it there (the code runs from an egg or a wheel)."""


def migrations_available() -> bool:
    """Whether this installation has its Alembic scripts."""
    return migrations_directory() is not None


@functools.cache
def migrations_directory() -> Path | None:
    """The folder Alembic reads the scripts from: the package's own folder, or a
    temporary copy of it when the package lives inside a zip (a Scrapyd egg);
    None when the installation has no migrations."""
    if (MIGRATIONS_DIR / "env.py").is_file() and (MIGRATIONS_DIR / "versions").is_dir():
        return MIGRATIONS_DIR
    try:
        package = files("news_archive.migrations")
    except ModuleNotFoundError:
        return None
    if not package.joinpath("env.py").is_file():
        return None
    copy = Path(tempfile.mkdtemp(prefix="news-archive-migrations-"))
    atexit.register(shutil.rmtree, copy, ignore_errors=True)
    _copy_tree(package, copy)
    logger.info("Migrations read from a temporary copy of the packaged scripts: %s", copy)
    return copy


def _copy_tree(source: Traversable, target: Path) -> None:
    for entry in source.iterdir():
        if entry.is_dir():
            if entry.name != "__pycache__":
                (target / entry.name).mkdir()
                _copy_tree(entry, target / entry.name)
        else:
            (target / entry.name).write_bytes(entry.read_bytes())


def upgrade_to_head(url_or_engine: str | URL | Engine | Connection) -> None:
    """Bring the database to the newest schema revision (a no-op when it is there).

    Accepts a URL, an engine (left open) or a connection (committed here).
    Concurrent callers are safe: SQLite serialises them through ``BEGIN
    IMMEDIATE``, PostgreSQL through an advisory lock taken in ``env.py``.

    Without the migrations folder (see `migrations_available`) nothing is
    migrated: a database at `SCHEMA_REVISION` passes, any other raises
    `SchemaNotUpgradableError` naming the command to run from a checkout.
    """
    if isinstance(url_or_engine, Connection):
        _upgrade(url_or_engine)
        return
    engine, owned = _engine_for(url_or_engine)
    try:
        with engine.connect() as connection:
            _upgrade(connection)
    finally:
        if owned:
            engine.dispose()


def _upgrade(connection: Connection) -> None:
    # The common case, a database already at head, needs neither Alembic (about
    # 0.15 s to import) nor its environment (on SQLite a foreign key scan under the
    # write lock): one look at the stored revision.
    if stored_revision(connection) == SCHEMA_REVISION:
        connection.commit()
        return
    if not migrations_available():
        _require_schema_revision(connection)
        connection.commit()
        return
    from alembic import command

    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
    # env.py commits the transaction it began; this commits one the caller had open.
    connection.commit()


def _require_schema_revision(connection: Connection) -> None:
    revision = stored_revision(connection)
    if revision == SCHEMA_REVISION:
        return
    shown = mask_url(connection.engine.url)
    found = f"schema revision {revision}" if revision else "no archive schema (never migrated)"
    raise SchemaNotUpgradableError(
        f"database {shown} has {found}, but this code needs revision {SCHEMA_REVISION} "
        f"and cannot migrate it: the migrations folder is not installed ({MIGRATIONS_DIR} "
        "is missing from this installation). From a checkout of the project, "
        "run `news-archive db upgrade --database-url URL` (or `alembic -x url=URL upgrade "
        "head`) with this database's URL, then start the crawl again"
        + (
            "; if the database was migrated by a newer version of the project, "
            "deploy that version instead"
            if revision
            else ""
        )
        + "."
    )


def current_revision(url_or_engine: str | URL | Engine) -> str | None:
    """The database's Alembic revision, or None when it has never been migrated."""
    engine, owned = _engine_for(url_or_engine)
    try:
        with engine.execution_options(**{READ_ONLY_OPTION: True}).connect() as connection:
            return stored_revision(connection)
    finally:
        if owned:
            engine.dispose()


def stored_revision(connection: Connection) -> str | None:
    """The revision Alembic recorded in ``alembic_version`` (None: never migrated),
    read with plain SQL so that Alembic need not be imported to ask."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    return connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()


def _engine_for(url_or_engine: str | URL | Engine) -> tuple[Engine, bool]:
    if isinstance(url_or_engine, Engine):
        return url_or_engine, False
    return create_archive_engine(url_or_engine), True


def mask_url(url: str | URL) -> str:
    """`url` with its password replaced by ``***``, for logs and error messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        # Unparseable: printing it could still leak a password, so do not.
        return "<unparseable database URL>"
