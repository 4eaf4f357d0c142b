"""Learned boilerplate in storage: learning counts distinct articles, the evidence
never decays, thresholds and verdicts decide what applies; on both backends."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine, select, text

from news_archive.storage import tables
from news_archive.storage.archive import Archive
from news_archive.storage.boilerplate import Status, Thresholds
from news_archive.vocabulary import LearnedBoilerplate, block_hash
from tests.storage.factories import FETCHED_AT, PUBLISHED_AT, make_article

NOTE = "보도자료 및 사진은 언론 보도 목적으로 자유롭게 사용하실 수 있습니다."
SERIES = "이 기사는 '반도체 이야기' 연재의 하나로, 매주 목요일에 실립니다."
THRESHOLDS = Thresholds(min_articles=5, min_share=0.2)
LEARN = {"window": 1000, "min_articles": 5, "min_characters": 10, "now": FETCHED_AT}


@pytest.fixture
def archive(archive_engine: Engine) -> Archive:
    return Archive(archive_engine)


def body(number: int, *extra: str) -> str:
    """An article body of its own text, with `extra` lines in the middle."""
    return "\n".join([f"{number}번 기사의 첫 문단입니다. 고유한 내용 {number}.", *extra, "끝 문단"])


def store(archive: Archive, bodies: dict[int, str], **changes: object) -> None:
    archive.articles.store(
        [
            make_article(
                number, body=text, published_at=PUBLISHED_AT + timedelta(hours=number), **changes
            )
            for number, text in bodies.items()
        ]
    )


def stored(archive: Archive) -> dict[str, tuple[int, int]]:
    """text → (articles, site_articles) of every learned block."""
    return {
        block.text: (block.articles, block.site_articles)
        for block in archive.boilerplate.blocks(THRESHOLDS)
    }


def test_learning_counts_distinct_articles_above_the_minimum(archive: Archive) -> None:
    # The note twice in article 1 counts once; "끝 문단" is shorter than 10 characters.
    bodies = {n: body(n, NOTE, NOTE) if n == 1 else body(n, NOTE) for n in range(1, 7)}
    bodies |= {n: body(n, SERIES) for n in range(7, 11)}  # 4 articles: below 5
    store(archive, bodies)
    learning = archive.boilerplate.learn("maeil_ilbo", **LEARN)
    assert (learning.site_articles, learning.blocks, learning.new) == (10, 1, 1)
    assert stored(archive) == {NOTE: (6, 10)}
    (block,) = archive.boilerplate.blocks(THRESHOLDS)
    assert block.block_hash == block_hash(NOTE) and block.status is Status.APPLIED
    assert block.share == pytest.approx(0.6)
    assert archive.boilerplate.learn("skt_insight", **LEARN).site_articles == 0


def test_window_and_minimums_are_respected(archive: Archive) -> None:
    # The note is in the 5 oldest of 10 articles: outside a window of the newest 5.
    store(archive, {n: body(n, NOTE) if n <= 5 else body(n) for n in range(1, 11)})
    assert archive.boilerplate.learn("maeil_ilbo", **(LEARN | {"window": 5})).blocks == 0
    assert archive.boilerplate.learn("maeil_ilbo", **(LEARN | {"min_articles": 6})).blocks == 0
    assert archive.boilerplate.learn("maeil_ilbo", **(LEARN | {"min_characters": 100})).blocks == 0
    assert archive.boilerplate.learn("maeil_ilbo", **LEARN).blocks == 1
    with pytest.raises(ValueError, match="at least 2"):
        archive.boilerplate.learn("maeil_ilbo", **(LEARN | {"min_articles": 1}))


def test_evidence_keeps_counting_dropped_blocks_and_never_decays(archive: Archive) -> None:
    store(archive, {n: body(n, NOTE) for n in range(1, 6)})
    archive.boilerplate.learn("maeil_ilbo", **LEARN)
    assert stored(archive) == {NOTE: (5, 5)}
    # Applied: later articles come without the note, which is noted as dropped.
    dropped = (block_hash(NOTE),)
    store(archive, {n: body(n) for n in range(6, 11)}, dropped_blocks=dropped)
    archive.boilerplate.learn("maeil_ilbo", **LEARN)
    assert stored(archive) == {NOTE: (10, 10)}
    (row,) = _rows(archive, "dropped_blocks", "url LIKE '%idxno=10'")
    assert row == dropped[0]
    # The articles that carried it leave the window: the count stays at its most.
    archive.boilerplate.learn("maeil_ilbo", **(LEARN | {"window": 3}))
    assert stored(archive) == {NOTE: (10, 3)}


def _rows(archive: Archive, column: str, where: str) -> list[object]:
    with archive.engine.connect() as connection:
        return list(
            connection.execute(select(tables.articles.c[column]).where(text(where))).scalars()
        )


def test_the_share_guards_a_series_and_verdicts_decide(archive: Archive) -> None:
    """A usage note in most articles applies; a paragraph of a series of 6 articles
    out of 60 is a candidate; a reviewer can keep the one and confirm the other."""
    bodies = {n: body(n, NOTE) if n % 5 else body(n) for n in range(1, 61)}  # 48 of 60
    for n in range(1, 7):
        bodies[n * 10 - 3] = body(n * 10 - 3, NOTE, SERIES)  # 6 of 60
    store(archive, bodies)
    archive.boilerplate.learn("maeil_ilbo", **LEARN)
    statuses = {b.text: b.status for b in archive.boilerplate.blocks(THRESHOLDS)}
    assert statuses == {NOTE: Status.APPLIED, SERIES: Status.CANDIDATE}
    assert archive.boilerplate.applied("maeil_ilbo", THRESHOLDS) == LearnedBoilerplate(
        "maeil_ilbo", frozenset({block_hash(NOTE)})
    )
    later = FETCHED_AT + timedelta(days=1)
    assert archive.boilerplate.set_verdict("maeil_ilbo", block_hash(NOTE), "article", later)
    assert archive.boilerplate.set_verdict("maeil_ilbo", block_hash(SERIES), "furniture", later)
    statuses = {b.text: b.status for b in archive.boilerplate.blocks(THRESHOLDS)}
    assert statuses == {NOTE: Status.KEPT, SERIES: Status.CONFIRMED}
    assert archive.boilerplate.applied("maeil_ilbo", THRESHOLDS).hashes == {block_hash(SERIES)}
    # A learning keeps the verdicts; reset hands the decision back to the thresholds.
    archive.boilerplate.learn("maeil_ilbo", **LEARN)
    assert archive.boilerplate.applied("maeil_ilbo", THRESHOLDS).hashes == {block_hash(SERIES)}
    assert archive.boilerplate.set_verdict("maeil_ilbo", block_hash(NOTE), None, later)
    assert archive.boilerplate.applied("maeil_ilbo", THRESHOLDS).hashes == {
        block_hash(NOTE),
        block_hash(SERIES),
    }
    assert not archive.boilerplate.set_verdict("maeil_ilbo", "0" * 32, "article", later)
    assert not archive.boilerplate.set_verdict("skt_insight", block_hash(NOTE), "article", later)
    with pytest.raises(ValueError, match="verdict"):
        archive.boilerplate.set_verdict("maeil_ilbo", block_hash(NOTE), "maybe", later)


def test_blocks_are_found_by_hash_prefix_and_site(archive: Archive) -> None:
    store(archive, {n: body(n, NOTE) for n in range(1, 6)})
    archive.boilerplate.learn("maeil_ilbo", **LEARN)
    hashed = block_hash(NOTE)
    assert [b.block_hash for b in archive.boilerplate.blocks(THRESHOLDS, prefix=hashed[:8])] == [
        hashed
    ]
    assert archive.boilerplate.blocks(THRESHOLDS, prefix=hashed[:8].upper())
    assert archive.boilerplate.blocks(THRESHOLDS, prefix="%") == []
    assert archive.boilerplate.blocks(THRESHOLDS, site="skt_insight") == []


def test_a_long_block_is_stored_cut(archive: Archive) -> None:
    long_line = "가" * 3000
    store(archive, {n: body(n, long_line) for n in range(1, 6)})
    archive.boilerplate.learn("maeil_ilbo", **LEARN)
    (block,) = archive.boilerplate.blocks(THRESHOLDS)
    assert len(block.text) == 2000 and block.block_hash == block_hash(long_line)
