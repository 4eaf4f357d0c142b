"""Alembic environment for the archive.

The database comes from, in order: a connection handed over in
``config.attributes["connection"]`` (what `storage.engine.upgrade_to_head`
does), or ``-x url=...`` on the command line (``news-archive db upgrade`` reads
``DATABASE_URL`` through the crawler's settings).
"""

from __future__ import annotations

from collections.abc import Mapping
from logging.config import fileConfig
from typing import Any

from alembic import context
from sqlalchemy import Connection, pool, text

from news_archive.storage import tables
from news_archive.storage.engine import create_archive_engine, mask_url

config = context.config
target_metadata = tables.metadata

# Any constant will do; it only has to be the same for every migrating process.
_MIGRATION_LOCK_ID = 0x61726368  # "arch"

if config.config_file_name is not None:
    # Keep loggers configured by the caller (pytest, Scrapy) working.
    fileConfig(config.config_file_name, disable_existing_loggers=False)


# Search objects made by hand-written SQL in migrations 0003 and 0010, not by the
# table catalogue (storage/tables.py): the SQLite FTS5 tables with their shadow
# tables (``articles_fts_data``, ``articles_search_data``, ...), PostgreSQL's trigram
# indexes (before 0010) and its ``articles_search`` table. Autogenerate must neither
# reflect nor drop them.
_UNMODELLED_TABLE_PREFIXES = ("articles_fts", "articles_search")
_UNMODELLED_INDEXES = {
    "ix_articles_title_trgm",
    "ix_articles_body_trgm",
    "ix_articles_search_tokens",
}


def _include_name(name: str | None, type_: str, parent_names: Mapping[str, Any]) -> bool:
    if type_ == "table" and name is not None:
        return not name.startswith(_UNMODELLED_TABLE_PREFIXES)
    if type_ == "index":
        return name not in _UNMODELLED_INDEXES
    return True


def _database_url() -> str:
    # No environment fallback here: the crawler's settings are the one place that
    # reads DATABASE_URL (`news-archive db upgrade` uses them).
    url = context.get_x_argument(as_dictionary=True).get("url")
    if not url:
        raise SystemExit(
            "name the database: alembic -x url=URL upgrade head "
            "(or run `news-archive db upgrade`, which reads DATABASE_URL)"
        )
    return url


def run_migrations_offline() -> None:
    """Emit the SQL to stdout instead of running it (``alembic upgrade --sql``)."""
    context.configure(
        url=_database_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_on(connection: Connection) -> None:
    is_sqlite = connection.dialect.name == "sqlite"
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
        include_name=_include_name,
        # SQLite DDL is transactional when the driver does not interfere, and
        # create_archive_engine() makes SQLAlchemy emit every BEGIN itself; so
        # the whole upgrade is one transaction and a failed one leaves nothing.
        transactional_ddl=True if is_sqlite else None,
    )
    # SQLite batch migrations rebuild a table by copy, DROP and rename; with
    # foreign_keys=ON that DROP would cascade-delete every child row.  The pragma
    # is ignored inside a transaction, so it must be switched before Alembic
    # begins one (a connection handed over mid-transaction keeps it as it is).
    toggle_foreign_keys = is_sqlite and not connection.in_transaction()
    if toggle_foreign_keys:
        connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
    try:
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                # Two crawlers starting at once must not both create the tables;
                # the lock is released when this transaction ends.
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:lock_id)"),
                    {"lock_id": _MIGRATION_LOCK_ID},
                )
            context.run_migrations()
            if toggle_foreign_keys:
                violations = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                if violations:
                    raise RuntimeError(f"migration left broken foreign keys: {violations[:5]}")
    finally:
        if toggle_foreign_keys:
            connection.connection.driver_connection.execute("PRAGMA foreign_keys=ON")


def run_migrations_online() -> None:
    """Run the migrations against a live database."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_on(connection)
        return
    url = _database_url()
    engine = create_archive_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            _run_on(connection)
    except Exception as exc:
        exc.add_note(f"database: {mask_url(url)}")
        raise
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
