"""Visits (``url_state``) written a batch at a time, on both backends."""

from __future__ import annotations

from sqlalchemy import Engine, select

from news_archive.storage import tables, visits
from news_archive.storage.repository import ArchiveRepository
from news_archive.storage.visits import VisitRecord
from tests.storage.factories import FETCHED_AT, later, make_article

URL = make_article(1).url


def _visit(status: int, hours: int, **changes: object) -> VisitRecord:
    fields: dict[str, object] = {
        "site": "maeil_ilbo",
        "url": URL,
        "status": status,
        "visited_at": later(hours),
        "next_visit_at": later(hours + 24),
    }
    fields.update(changes)
    return VisitRecord(**fields)  # type: ignore[arg-type]


def _visit_count(engine: Engine, url: str) -> int:
    with engine.connect() as connection:
        return connection.execute(
            select(tables.url_state.c.visits).where(tables.url_state.c.url == url)
        ).scalar_one()


def test_a_batch_writes_each_visit_in_its_order(repository: ArchiveRepository) -> None:
    """Visits of one URL in one batch are each counted, the last one's values kept;
    a 304 keeps the stored validators, a visit that must be whole (keep_validators
    False) clears them, and other URLs of the batch are written alongside."""
    engine = repository.engine
    other = make_article(2).url
    batch = [
        _visit(200, 1, etag='"a"', last_modified="Wed, 01 May 2024 04:00:00 GMT"),
        _visit(200, 1, url=other, etag='"b"'),
        _visit(304, 2),  # keeps "a"
        _visit(200, 3, keep_validators=False),  # a held change: validators forgotten
        _visit(304, 4, etag='"c"'),
    ]
    assert visits.record(engine, batch) == []

    states = visits.states(engine, [URL, other])
    assert states[URL].etag == '"c"'
    assert states[URL].last_modified is None
    assert states[URL].last_status == 304
    assert states[URL].last_visit_at == later(4)
    assert states[URL].next_visit_at == later(28)
    assert states[other].etag == '"b"'
    assert _visit_count(engine, URL) == 4
    assert _visit_count(engine, other) == 1


def test_a_304_moves_the_article_seen_forward_never_back(
    repository: ArchiveRepository,
) -> None:
    repository.store_articles([make_article(1)])
    engine = repository.engine
    visits.record(engine, [_visit(304, 5), _visit(304, 2)])

    stored = repository.get_article(URL)
    assert stored is not None
    assert stored["first_seen_at"] == FETCHED_AT
    assert stored["last_seen_at"] == later(5)
