"""UTCDateTime: aware UTC in, aware UTC out, on both backends."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Column, Engine, Integer, MetaData, Table, insert, select, text
from sqlalchemy.exc import StatementError

from news_archive.storage.engine import create_archive_engine
from news_archive.storage.types import UTCDateTime

KST = timezone(timedelta(hours=9))

metadata = MetaData()
stamps = Table(
    "stamps",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", UTCDateTime(), nullable=True),
)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_archive_engine(database_url)
    metadata.create_all(engine)
    try:
        yield engine
    finally:
        engine.dispose()


def _store_and_load(engine: Engine, value: datetime | None) -> datetime | None:
    with engine.begin() as connection:
        row_id = connection.execute(
            insert(stamps).values(at=value).returning(stamps.c.id)
        ).scalar_one()
    with engine.connect() as connection:
        return connection.execute(select(stamps.c.at).where(stamps.c.id == row_id)).scalar_one()


def test_aware_utc_round_trips(engine: Engine) -> None:
    value = datetime(2024, 5, 1, 3, 4, 5, 123456, tzinfo=UTC)
    loaded = _store_and_load(engine, value)
    assert loaded == value
    assert loaded is not None and loaded.tzinfo is UTC


def test_other_zone_comes_back_as_utc(engine: Engine) -> None:
    loaded = _store_and_load(engine, datetime(2024, 5, 1, 9, 0, tzinfo=KST))
    assert loaded == datetime(2024, 5, 1, 0, 0, tzinfo=UTC)
    assert loaded is not None and loaded.utcoffset() == timedelta(0)
    assert loaded.tzinfo is UTC


def test_none_round_trips(engine: Engine) -> None:
    assert _store_and_load(engine, None) is None


def test_naive_datetime_is_rejected(engine: Engine) -> None:
    with pytest.raises(StatementError) as raised, engine.begin() as connection:
        connection.execute(insert(stamps).values(at=datetime(2024, 5, 1, 9, 0)))
    assert isinstance(raised.value.orig, ValueError)
    assert "naive" in str(raised.value.orig)


def test_naive_datetime_rejected_without_database() -> None:
    from sqlalchemy.dialects import sqlite

    with pytest.raises(ValueError, match="naive"):
        UTCDateTime().process_bind_param(datetime(2024, 1, 1), sqlite.dialect())


def test_storage_form(engine: Engine) -> None:
    """SQLite keeps SQLAlchemy's naive UTC text; PostgreSQL a real timestamptz."""
    _store_and_load(engine, datetime(2024, 5, 1, 9, 0, tzinfo=KST))
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            stored = connection.execute(text("SELECT at FROM stamps")).scalar_one()
            assert stored == "2024-05-01 00:00:00.000000"
        else:
            kind = connection.execute(text("SELECT pg_typeof(at)::text FROM stamps")).scalar_one()
            assert kind == "timestamp with time zone"


@pytest.mark.parametrize(
    "database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_session_time_zone_does_not_leak(engine: Engine) -> None:
    """PostgreSQL answers in the session's zone; the type must still give UTC."""
    _store_and_load(engine, datetime(2024, 5, 1, 0, 0, tzinfo=UTC))
    with engine.connect() as connection:
        connection.execute(text("SET LOCAL TIME ZONE 'Asia/Seoul'"))
        loaded = connection.execute(select(stamps.c.at)).scalar_one()
    assert loaded == datetime(2024, 5, 1, 0, 0, tzinfo=UTC)
    assert loaded.tzinfo is UTC
