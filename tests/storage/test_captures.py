"""The capture index's look-ups (``storage/captures.py``)."""

from __future__ import annotations

import sqlite3
import time

from news_archive.storage import captures
from news_archive.storage.engine import create_archive_engine, upgrade_to_head


def test_a_look_up_never_waits_for_the_write_lock(sqlite_url: str) -> None:
    """The WARC writer asks the index from its own thread while the crawl writes
    articles: on SQLite its read takes no write lock, so it waits for no writer (a
    write lock taken for it would wait here for the busy timeout, 30 s)."""
    engine = create_archive_engine(sqlite_url)
    upgrade_to_head(engine)
    writer = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")  # another writer holds the lock
        started = time.monotonic()
        assert captures.first_with_digests(engine, ["sha1:ABC"]) == {}
        assert time.monotonic() - started < 2.0
    finally:
        writer.execute("ROLLBACK")
        writer.close()
        engine.dispose()
