"""Outages, contention and refused values told apart, on both backends: a refused
value costs its own row, text is cleaned at the storage boundary, URL keys are
capped, and PostgreSQL connections are given timeouts."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from news_archive.storage.archive import (
    Archive,
    DatabaseUnavailable,
    StoreFailures,
    refused_for_good,
)
from news_archive.storage.engine import ConnectionTimeouts, create_archive_engine
from news_archive.storage.faults import CONTENTION, OUTAGE, REFUSED, fault_kind, is_transient
from news_archive.storage.types import MAX_KEY_BYTES, clean_text
from news_archive.storage.visits import VisitRecord
from news_archive.vocabulary import AliasSeen, FetchFailure, Rejection
from tests.storage.factories import FETCHED_AT, make_article

LONG_URL = "https://www.m-i.kr/news/articleView.html?idxno=1&utm_source=" + "x" * 6000


def _wrapped(error: Exception) -> DBAPIError:
    return DBAPIError("INSERT ...", {}, error)


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        # PostgreSQL, by SQLSTATE: the server cannot serve...
        (psycopg.errors.AdminShutdown("terminating connection"), OUTAGE),  # 57P01
        (psycopg.errors.CannotConnectNow("the database system is starting up"), OUTAGE),
        (psycopg.errors.QueryCanceled("canceling statement due to statement timeout"), OUTAGE),
        (psycopg.errors.TooManyConnections("too many clients"), OUTAGE),  # 53300
        (psycopg.errors.ReadOnlySqlTransaction("read-only transaction"), OUTAGE),  # standby
        (psycopg.OperationalError("server closed the connection unexpectedly"), OUTAGE),
        (psycopg.InterfaceError("the connection is closed"), OUTAGE),
        # ...another transaction is in the way...
        (psycopg.errors.DeadlockDetected("deadlock detected"), CONTENTION),
        (psycopg.errors.SerializationFailure("could not serialize"), CONTENTION),
        (psycopg.errors.LockNotAvailable("could not obtain lock"), CONTENTION),
        # ...or it refuses the values, however often it is asked.
        (psycopg.errors.ProgramLimitExceeded("index row size 6080 exceeds maximum"), REFUSED),
        (psycopg.errors.CharacterNotInRepertoire("invalid byte sequence"), REFUSED),
        (psycopg.errors.UniqueViolation("duplicate key"), REFUSED),
        (psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes"), REFUSED),
        # SQLite
        (sqlite3.OperationalError("database is locked"), CONTENTION),
        (sqlite3.OperationalError("unable to open database file"), OUTAGE),
        (sqlite3.IntegrityError("NOT NULL constraint failed: articles.title"), REFUSED),
        # Not the database's answer at all: a value our own types refuse.
        (ValueError("naive datetime 2024-05-01T03:00:00 has no time zone; refusing"), REFUSED),
    ],
)
def test_fault_kinds(error: Exception, kind: str) -> None:
    assert fault_kind(_wrapped(error)) == kind
    assert is_transient(_wrapped(error)) == (kind != REFUSED)


def test_a_pool_with_no_free_connection_is_an_outage() -> None:
    error = PoolTimeout("QueuePool limit of size 5 overflow 10 reached")
    assert fault_kind(error) == OUTAGE


@pytest.mark.parametrize(
    ("error", "for_good"),
    [
        (psycopg.OperationalError('FATAL:  database "nope" does not exist'), True),
        (psycopg.OperationalError("FATAL:  password authentication failed"), True),
        (psycopg.errors.InvalidCatalogName('database "nope" does not exist'), True),
        (sqlite3.DatabaseError("file is not a database"), True),
        # A migration that failed is the server's answer to a statement, not the URL's.
        (psycopg.errors.UndefinedTable('relation "crawl_locks" does not exist'), False),
        (psycopg.OperationalError("connection refused"), False),
    ],
)
def test_only_a_url_that_can_never_work_is_refused_for_good(
    error: Exception, for_good: bool
) -> None:
    assert refused_for_good(_wrapped(error)) is for_good


def test_a_value_our_types_refuse_is_refused_not_an_outage() -> None:
    error = StatementError("naive datetime", "INSERT ...", {}, ValueError("naive"))
    assert fault_kind(error) == REFUSED


def test_clean_text_drops_control_characters_but_tab_and_newline() -> None:
    assert clean_text("a\x00b\x07c\td\ne\x1bf\x7fg\x85h") == "abc\td\nefgh"
    assert clean_text("lone \ud800 surrogate") == "lone \ufffd surrogate"
    text_ = "그대로 둔다\n\t"
    assert clean_text(text_) is text_  # clean text is not copied


@pytest.fixture
def archive(archive_engine: Engine) -> Archive:
    return Archive(archive_engine)


def test_text_with_nul_bytes_is_stored_cleaned_on_every_table(archive: Archive) -> None:
    article = make_article(title="제목\x00", body="본문\x00 첫 문단.\n둘째\x01 문단.")
    assert archive.articles.store([article]) == ["new"]
    visit = VisitRecord("maeil_ilbo", article.url, 200, FETCHED_AT, FETCHED_AT, etag='"a\x00b"')
    assert archive.visits.record([visit]) == []
    problem = Rejection("maeil_ilbo", article.url + "\x00", "not_article", "nul\x00here")
    assert archive.runs.record_errors(None, "maeil_ilbo", [problem], FETCHED_AT) == []
    with archive.engine.connect() as connection:
        title, body = connection.execute(text("SELECT title, body FROM articles")).one()
        etag = connection.execute(text("SELECT etag FROM url_state")).scalar_one()
        url, detail = connection.execute(text("SELECT url, detail FROM crawl_errors")).one()
    assert (title, body) == ("제목", "본문 첫 문단.\n둘째 문단.")
    assert etag == '"ab"'
    assert (url, detail) == (article.url, "nulhere")
    # Lookups are cleaned alike: they find what was stored.
    assert article.url in archive.visits.states([article.url + "\x00"])


def test_an_overlong_alias_is_refused_alone(archive: Archive) -> None:
    good = [
        AliasSeen("maeil_ilbo", f"https://m.m-i.kr/news/articleView.html?idxno={n}", f"c{n}")
        for n in range(3)
    ]
    bad = AliasSeen("maeil_ilbo", LONG_URL, "https://www.m-i.kr/news/articleView.html?idxno=1")
    refused = archive.articles.record_aliases([good[0], bad, good[1], good[2]], FETCHED_AT)
    assert [each.item for each in refused] == [bad]
    assert f"longer than {MAX_KEY_BYTES}" in str(refused[0].error)
    assert not isinstance(refused[0].error, DatabaseUnavailable)
    found = archive.visits.canonical_of([alias.alias_url for alias in good] + [LONG_URL])
    assert found == {alias.alias_url: alias.canonical_url for alias in good}


def test_an_overlong_visit_is_refused_alone(archive: Archive) -> None:
    def visit(url: str) -> VisitRecord:
        return VisitRecord("maeil_ilbo", url, 200, FETCHED_AT, FETCHED_AT + timedelta(days=1))

    urls = [f"https://www.m-i.kr/news/articleView.html?idxno={n}" for n in range(3)]
    refused = archive.visits.record([visit(urls[0]), visit(LONG_URL), visit(urls[1])])
    assert [each.item.url for each in refused] == [LONG_URL]
    assert set(archive.visits.states([*urls, LONG_URL])) == set(urls[:2])


def test_a_problem_with_an_overlong_url_is_kept_with_its_url_cut(archive: Archive) -> None:
    problems = [
        FetchFailure("maeil_ilbo", LONG_URL, "bad_link", None, "too long"),
        Rejection("maeil_ilbo", "https://www.m-i.kr/a", "not_article"),
    ]
    assert archive.runs.record_errors(None, "maeil_ilbo", problems, FETCHED_AT) == []
    with archive.engine.connect() as connection:
        rows = connection.execute(text("SELECT url, detail FROM crawl_errors ORDER BY id")).all()
    assert len(rows[0].url.encode()) <= MAX_KEY_BYTES and rows[0].url.endswith("…")
    assert rows[0].detail == f"too long (URL of {len(LONG_URL)} characters cut)"
    assert rows[1].url == "https://www.m-i.kr/a"


def test_an_article_with_an_overlong_url_fails_alone(archive: Archive) -> None:
    good = [make_article(1), make_article(2)]
    bad = make_article(3, url=LONG_URL, fetched_url=LONG_URL)
    with pytest.raises(StoreFailures) as raised:
        archive.articles.store([good[0], bad, good[1]])
    assert raised.value.outcomes == ["new", None, "new"]
    ((index, error),) = raised.value.failures
    assert index == 1 and not isinstance(error, DatabaseUnavailable)
    assert archive.articles.count() == 2


def test_an_article_fetched_at_an_overlong_url_is_stored_without_that_alias(
    archive: Archive,
) -> None:
    article = make_article(1, fetched_url=LONG_URL)
    assert archive.articles.store([article]) == ["new"]
    assert archive.visits.canonical_of([LONG_URL]) == {}


def test_timeouts_become_libpq_parameters() -> None:
    timeouts = ConnectionTimeouts(
        connect=10, statement=30, keepalive_idle=10, keepalive_interval=5, keepalive_count=3
    )
    assert timeouts.connect_args() == {
        "connect_timeout": 10,
        "options": "-c statement_timeout=30000",
        "keepalives": 1,
        "keepalives_idle": 10,
        "keepalives_interval": 5,
        "keepalives_count": 3,
        "tcp_user_timeout": 25000,
    }
    assert timeouts.answer == 35
    assert ConnectionTimeouts(statement=1).answer == 2
    assert ConnectionTimeouts().connect_args() == {} and ConnectionTimeouts().answer is None


def test_timeouts_come_from_the_database_settings() -> None:
    """As Scrapy hands them (``-s`` gives strings) or as the settings module has them;
    0 or empty leaves a wait unbounded."""
    given = {
        "DATABASE_CONNECT_TIMEOUT": "2.5",
        "DATABASE_STATEMENT_TIMEOUT": 0,
        "DATABASE_KEEPALIVE_IDLE": 10,
        "DATABASE_KEEPALIVE_INTERVAL": "",
        "DATABASE_KEEPALIVE_COUNT": None,
    }
    assert ConnectionTimeouts.from_settings(given.get) == ConnectionTimeouts(
        connect=2.5, keepalive_idle=10
    )


@pytest.mark.postgres
def test_a_postgresql_archive_runs_with_its_statement_timeout(
    database_url: str, postgres_url: str
) -> None:
    if database_url != postgres_url:
        pytest.skip("PostgreSQL only")
    archive = Archive.open(database_url, timeouts=ConnectionTimeouts(connect=5, statement=2))
    try:
        with archive.engine.connect() as connection:
            shown: Any = connection.exec_driver_sql("SHOW statement_timeout").scalar()
            assert shown == "2s"
            with pytest.raises(DBAPIError) as raised:
                connection.exec_driver_sql("SELECT pg_sleep(5)")
        assert fault_kind(raised.value) == OUTAGE
    finally:
        archive.close()


@pytest.mark.postgres
def test_server_options_in_the_url_keep_the_statement_timeout(postgres_url: str) -> None:
    engine = create_archive_engine(
        f"{postgres_url}?options=-c%20search_path%3Dpg_catalog",
        timeouts=ConnectionTimeouts(statement=2),
    )
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("SHOW statement_timeout").scalar() == "2s"
            assert connection.exec_driver_sql("SHOW search_path").scalar() == "pg_catalog"
    finally:
        engine.dispose()
