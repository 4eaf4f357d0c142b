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
import math
import shutil
import sqlite3
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from sqlalchemy import Connection, Engine, Table, create_engine, event, inspect
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.sql.dml import Insert

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"

logger = logging.getLogger(__name__)

# The newest revision in migrations/versions/, i.e. Alembic's head: the schema this
# code expects.  Bump it with every new migration (tests/storage/test_engine.py
# fails while it differs from the head).
SCHEMA_REVISION = "0012"

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


@dataclass(frozen=True, slots=True)
class ConnectionTimeouts:
    """How long a PostgreSQL connection may wait before the archive calls it an outage.

    Seconds; None leaves that wait unbounded (libpq's and the server's defaults).

    - `connect`: to open a connection (TCP, TLS, authentication).
    - `statement`: the server cancels a statement running longer (``statement_timeout``),
      and the client gives up on an answer `ANSWER_GRACE` seconds after that, closing
      the connection: a server that accepts bytes but never answers (hung, stopped,
      a proxy in between that stalls) would otherwise hold the crawl for as long as
      it hangs, since TCP keepalives are answered by the kernel of a live host.
    - `keepalive_idle`, `keepalive_interval`, `keepalive_count`: TCP keepalives, so a
      peer that vanished (host down, network cut) is noticed on an idle connection
      within idle + interval x count seconds; the same bound is given to unacknowledged
      data (``tcp_user_timeout``).
    """

    connect: float | None = None
    statement: float | None = None
    keepalive_idle: int | None = None
    keepalive_interval: int | None = None
    keepalive_count: int | None = None

    def connect_args(self) -> dict[str, Any]:
        """libpq connection parameters for these timeouts."""
        args: dict[str, Any] = {}
        if self.connect is not None:
            args["connect_timeout"] = max(1, math.ceil(self.connect))
        if self.statement is not None:
            args["options"] = f"-c statement_timeout={round(self.statement * 1000)}"
        if self.keepalive_idle is not None:
            interval = self.keepalive_interval or 1
            count = self.keepalive_count or 1
            args |= {
                "keepalives": 1,
                "keepalives_idle": self.keepalive_idle,
                "keepalives_interval": interval,
                "keepalives_count": count,
                "tcp_user_timeout": (self.keepalive_idle + interval * count) * 1000,
            }
        return args

    @classmethod
    def from_settings(cls, setting: Callable[[str], Any]) -> ConnectionTimeouts:
        """The timeouts the ``DATABASE_*`` settings give (`setting` looks one up by
        name: Scrapy's ``settings.get``, or the settings module's attributes); 0 or
        empty leaves that wait unbounded."""

        def number(name: str, kind: Callable[[Any], float]) -> Any:
            value = setting(name)
            return kind(value) or None if value not in (None, "") else None

        return cls(
            connect=number("DATABASE_CONNECT_TIMEOUT", float),
            statement=number("DATABASE_STATEMENT_TIMEOUT", float),
            keepalive_idle=number("DATABASE_KEEPALIVE_IDLE", int),
            keepalive_interval=number("DATABASE_KEEPALIVE_INTERVAL", int),
            keepalive_count=number("DATABASE_KEEPALIVE_COUNT", int),
        )

    @property
    def answer(self) -> float | None:
        """Seconds the client waits for any one answer of the server."""
        if self.statement is None:
            return None
        return self.statement + min(ANSWER_GRACE, self.statement)


# Seconds (at most; never more than the statement timeout itself) between the
# server's statement timeout and the client giving up on an answer: time for the
# server's own cancellation to arrive first.
ANSWER_GRACE = 5.0


def create_archive_engine(
    url: str | URL,
    *,
    timeouts: ConnectionTimeouts | None = None,
    read_only: bool = False,
    **kw: Any,
) -> Engine:
    """Create an engine for the archive at `url` (``sqlite:///PATH`` or
    ``postgresql+psycopg://...``); extra keyword arguments go to `create_engine`.

    `read_only` (SQLite): the file is opened with ``mode=ro``, so that a reader never
    creates, migrates or converts it (a missing file is an error, a 0-byte file stays
    0 bytes); its connections neither switch the journal mode nor take the write lock.

    SQLite connections get WAL, foreign keys, a 30 s busy timeout, and
    transactions that start with ``BEGIN IMMEDIATE``: a deferred ``BEGIN``
    takes the write lock only at the first write, and two processes that both
    read first then deadlock on the upgrade ("database is locked") instead of
    waiting for each other.  Connections with the `READ_ONLY_OPTION` execution
    option keep a deferred ``BEGIN``.

    PostgreSQL connections are pinged before use, so a restarted server costs a
    reconnect, not a failed batch, and are replaced after `POOL_RECYCLE_SECONDS`.
    `timeouts` bound every wait on the server (see `ConnectionTimeouts`; a value
    given in the URL's query wins).
    """
    url = make_url(url)
    if url.get_backend_name() == "sqlite":
        if read_only and url.database and url.database != ":memory:":
            engine = create_engine(_read_only_sqlite_url(url), **kw)
            event.listen(engine, "connect", _configure_read_only_sqlite_connection)
            event.listen(engine, "begin", _begin_deferred)
            return engine
        engine = create_engine(url, **kw)
        event.listen(engine, "connect", _configure_sqlite_connection)
        event.listen(engine, "begin", _begin_immediate)
        return engine
    kw.setdefault("pool_pre_ping", True)
    kw.setdefault("pool_recycle", POOL_RECYCLE_SECONDS)
    if timeouts is not None:
        given = {**timeouts.connect_args(), **kw.pop("connect_args", {})}
        if "options" in url.query and "options" in given:
            # The URL's own server options (``-c search_path=...``) and the statement
            # timeout both go: libpq takes one ``options`` string.
            query_options = url.query["options"]
            if not isinstance(query_options, str):
                query_options = " ".join(query_options)
            given["options"] = f"{given['options']} {query_options}"  # the URL's last: it wins
            url = url.difference_update_query(["options"])
        # A timeout given in the URL wins over the setting.
        kw["connect_args"] = {name: value for name, value in given.items() if name not in url.query}
    engine = create_engine(url, **kw)
    if timeouts is not None and timeouts.answer is not None and url.get_driver_name() == "psycopg":
        event.listen(engine, "do_connect", _answer_within(timeouts.answer))
        _ping_within(engine, timeouts.connect or timeouts.answer)
    return engine


def dialect_insert(engine: Engine | Connection) -> Callable[[Table], Insert]:
    """The INSERT construct of `engine`'s database, with its ``ON CONFLICT`` clauses
    (``postgresql.insert`` or ``sqlite.insert``).  A dialect's module is imported
    when its database is first written: PostgreSQL's (all its drivers' modules)
    costs a crawl into SQLite 0.06 s of CPU."""
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert  # type: ignore[return-value]
    from sqlalchemy.dialects import sqlite

    return sqlite.insert  # type: ignore[return-value]


def _ping_within(engine: Engine, seconds: float) -> None:
    """Give the pre-ping (``SELECT 1`` at each checkout) `seconds` for its answer
    rather than a statement's whole deadline: a pooled connection to a hung server
    is then given up, and the outage reported, within ping + connect timeouts."""
    dialect = engine.dialect
    ping = dialect.do_ping

    def do_ping(dbapi_connection: Any) -> bool:
        deadline = getattr(dbapi_connection, "answer_timeout", None)
        if deadline is None:
            return ping(dbapi_connection)
        dbapi_connection.answer_timeout = min(deadline, seconds)
        try:
            return ping(dbapi_connection)
        finally:
            dbapi_connection.answer_timeout = deadline

    dialect.do_ping = do_ping  # type: ignore[method-assign]


# A pooled connection older than this is replaced at its next checkout: firewalls and
# NAT tables drop idle connections silently, and a fresh one costs little.
POOL_RECYCLE_SECONDS = 1800


def _answer_within(seconds: float) -> Callable[..., Any]:
    """A ``do_connect`` hook opening `AnswerDeadlineConnection` s."""

    def connect(dialect: Any, record: Any, cargs: Any, cparams: dict[str, Any]) -> Any:
        connection = _deadline_connection_class().connect(*cargs, **cparams)
        connection.answer_timeout = seconds
        return connection

    return connect


@functools.cache
def _deadline_connection_class() -> type:
    import psycopg

    class AnswerDeadlineConnection(psycopg.Connection):  # type: ignore[type-arg]
        """A psycopg connection that waits at most `answer_timeout` seconds for each
        answer of the server, then closes itself and raises `OperationalError`."""

        answer_timeout: float | None = None

        def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
            if timeout is None:
                timeout = self.answer_timeout
            try:
                return super().wait(gen, interval, timeout)
            except psycopg.OperationalError as error:
                if type(error).__name__ != "_WaitTimeout":
                    raise
                # Mid-protocol: the connection can never be used again.
                self.pgconn.finish()
                raise psycopg.OperationalError(
                    f"no answer from the database server within {timeout:g} s"
                ) from error

    return AnswerDeadlineConnection


@contextmanager
def _timeouts_lifted(connection: Connection) -> Iterator[None]:
    """No statement timeout and no answer deadline on `connection` while migrating:
    a migration (a new index, the advisory lock that makes a second crawl wait for
    the first one's migration) takes as long as it takes."""
    if connection.dialect.name != "postgresql":
        yield
        return
    dbapi_connection: Any = connection.connection.dbapi_connection
    deadline = getattr(dbapi_connection, "answer_timeout", None)
    connection.exec_driver_sql("SET statement_timeout = 0")
    dbapi_connection.answer_timeout = None
    try:
        yield
    except BaseException:
        # Its session state is unknown now: never hand it to the pool again.
        connection.invalidate()
        raise
    dbapi_connection.answer_timeout = deadline
    connection.exec_driver_sql("RESET statement_timeout")


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


def _read_only_sqlite_url(url: URL) -> URL:
    """``sqlite:///file:PATH?mode=ro&uri=true``: SQLite's URI form, which pysqlite
    passes on with ``uri=True`` (the path percent-encoded, as URIs want)."""
    path = urllib.parse.quote(str(Path(url.database or "").resolve()))
    return url.set(database=f"file:{path}", query={**url.query, "mode": "ro", "uri": "true"})


def _configure_read_only_sqlite_connection(dbapi_connection: Any, connection_record: Any) -> None:
    # As `_configure_sqlite_connection`, without the journal mode switch (a write).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def _begin_deferred(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN")


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
    with _timeouts_lifted(connection):
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


# Query parameters of a database URL that hold a secret (libpq's ``password`` and
# ``sslpassword``, and the names people reach for); compared in lower case.
SECRET_QUERY_PARAMETERS = frozenset(
    {"password", "passwd", "pwd", "pass", "secret", "token", "sslpassword", "api_key", "apikey"}
)


def mask_url(url: str | URL) -> str:
    """`url` with every secret replaced by ``***``: the password of its user part
    and the value of each query parameter named in `SECRET_QUERY_PARAMETERS`
    (``?password=...``), for logs, error messages and run records."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        # Unparseable (or a port that is no number): printing it could still leak a
        # password, so do not.
        return "<unparseable database URL>"
    shown = parsed.render_as_string(hide_password=True)
    secrets = [name for name in parsed.query if name.lower() in SECRET_QUERY_PARAMETERS]
    if not secrets:
        return shown
    base, _, query = shown.partition("?")
    kept = [
        f"{name}=***"
        if unquote_plus(name).lower() in SECRET_QUERY_PARAMETERS
        else f"{name}={value}"
        for name, _, value in (pair.partition("=") for pair in query.split("&"))
    ]
    return f"{base}?{'&'.join(kept)}"
