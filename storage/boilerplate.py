"""Learned boilerplate (table ``boilerplate_blocks``): blocks of body text that recur
verbatim across many articles of one site, their evidence, and reviewers' verdicts.

A block is one body line (bodies hold one paragraph a line), identified by
`news_archive.vocabulary.block_hash`. `learn` counts, over a site's newest articles,
in how many distinct articles each block occurs (in the body, or dropped from it as
learned boilerplate: ``articles.dropped_blocks``), and keeps every block found in at
least ``min_articles`` of them. `status_of` then says what becomes of a block:

- ``confirmed``: a reviewer said it is furniture (verdict ``furniture``): applied;
- ``kept``: a reviewer said it is article text (verdict ``article``): never applied;
- ``applied``: no verdict, and its evidence reaches both thresholds (at least
  ``min_articles`` articles, and at least ``min_share`` of the articles read);
- ``candidate``: no verdict, below a threshold: listed for review, not applied (a
  paragraph a site prints in every article of one series is a few percent of it).

`applied` gives extraction the blocks to drop, as a plain value.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Engine, bindparam, case, select, update

from news_archive.storage import tables
from news_archive.storage.engine import READ_ONLY_OPTION, dialect_insert
from news_archive.vocabulary import LearnedBoilerplate, block_hash, normalise_block

# The longest block text kept, in characters (the hash covers the whole block).
BLOCK_TEXT_MAX = 2000
# Rows per statement when writing, and bodies per fetch when reading.
_CHUNK = 500
FURNITURE = "furniture"
ARTICLE_TEXT = "article"
VERDICTS = (FURNITURE, ARTICLE_TEXT)


class Status(StrEnum):
    """What becomes of a learned block (see the module docstring)."""

    CONFIRMED = "confirmed"
    APPLIED = "applied"
    CANDIDATE = "candidate"
    KEPT = "kept"

    @property
    def is_applied(self) -> bool:
        return self in (Status.CONFIRMED, Status.APPLIED)


@dataclass(frozen=True, slots=True)
class Thresholds:
    """When a block without a verdict is applied: found in at least `min_articles`
    articles of its site, and in at least `min_share` (0..1) of those read."""

    min_articles: int
    min_share: float


@dataclass(frozen=True, slots=True)
class Block:
    """One row of ``boilerplate_blocks`` and its status under some thresholds."""

    site: str
    block_hash: str
    text: str
    articles: int
    site_articles: int
    first_learned_at: datetime
    learned_at: datetime
    verdict: str | None
    verdict_at: datetime | None
    status: Status

    @property
    def share(self) -> float:
        """`articles` as a share (0..1) of `site_articles`."""
        return min(1.0, self.articles / self.site_articles) if self.site_articles else 0.0


@dataclass(frozen=True, slots=True)
class Learning:
    """What one learning of a site did: `site_articles` bodies read, `blocks`
    counted in at least the minimum of them (written), `new` of those first learned."""

    site: str
    site_articles: int
    blocks: int
    new: int


def status_of(
    verdict: str | None, articles: int, site_articles: int, thresholds: Thresholds
) -> Status:
    """The status of a block with this verdict and evidence."""
    if verdict == FURNITURE:
        return Status.CONFIRMED
    if verdict == ARTICLE_TEXT:
        return Status.KEPT
    enough = articles >= thresholds.min_articles
    common = site_articles > 0 and articles >= thresholds.min_share * site_articles
    return Status.APPLIED if enough and common else Status.CANDIDATE


def learn(
    engine: Engine,
    site: str,
    *,
    window: int,
    min_articles: int,
    min_characters: int,
    now: datetime,
) -> Learning:
    """Count the blocks of `site`'s newest `window` articles (by publication time) and
    write every block found in at least `min_articles` distinct articles: its count
    (the larger of the stored and the new one: evidence never decays as old articles
    leave the window) and, for every block of the site, the number of articles read.

    Bodies are read a chunk at a time; memory holds a counter per distinct block of the window and
    the text of the blocks that reach `min_articles` only. Lines shorter than
    `min_characters` (after `normalise_block`) are never blocks."""
    if min_articles < 2:
        raise ValueError(f"min_articles must be at least 2, not {min_articles}")
    counts, texts, read = _count(engine, site, window, min_articles, min_characters)
    learned = {hashed: count for hashed, count in counts.items() if count >= min_articles}
    with engine.begin() as connection:
        table = tables.boilerplate
        known = set(
            connection.execute(select(table.c.block_hash).where(table.c.site == site)).scalars()
        )
        connection.execute(update(table).where(table.c.site == site).values(site_articles=read))
        # A block met only as dropped from bodies has no text at hand: it is updated
        # when known (it always is: it was learned before it could be dropped).
        inserts = [
            {
                "site": site,
                "block_hash": hashed,
                "text": texts[hashed][:BLOCK_TEXT_MAX],
                "articles": count,
                "site_articles": read,
                "first_learned_at": now,
                "learned_at": now,
            }
            for hashed, count in sorted(learned.items())
            if hashed not in known and hashed in texts
        ]
        updates = [
            {"wanted": hashed, "counted": count}
            for hashed, count in sorted(learned.items())
            if hashed in known
        ]
        # A learning of the same site running at once (a crawl's end, the command) may
        # have written a block meanwhile: its row stands, this count is not lost for
        # long (the next learning raises it).
        insert = dialect_insert(engine)(table).on_conflict_do_nothing(
            index_elements=[table.c.site, table.c.block_hash]
        )
        for start in range(0, len(inserts), _CHUNK):
            connection.execute(insert, inserts[start : start + _CHUNK])
        # The stored count when it is larger: a block is counted in the window only.
        counted = bindparam("counted")
        raise_count = (
            update(table)
            .where(table.c.site == site, table.c.block_hash == bindparam("wanted"))
            .values(
                articles=case((table.c.articles < counted, counted), else_=table.c.articles),
                learned_at=now,
            )
        )
        for start in range(0, len(updates), _CHUNK):
            connection.execute(raise_count, updates[start : start + _CHUNK])
    return Learning(site, read, len(inserts) + len(updates), len(inserts))


def _count(
    engine: Engine, site: str, window: int, min_articles: int, min_characters: int
) -> tuple[Counter[str], dict[str, str], int]:
    """Per block hash, the distinct articles carrying it; the text of those found in
    at least `min_articles`; and how many articles were read."""
    articles = tables.articles
    # The newest ids first, then their bodies a chunk at a time: ordering the rows
    # themselves would make the database sort every body of the site (SQLite picks
    # the site index and sorts: 1.1 s instead of 0.1 s for 1,000 of 10,000 articles).
    newest = (
        select(articles.c.id)
        .where(articles.c.site == site)
        .order_by(articles.c.published_at.desc(), articles.c.id.desc())
        .limit(window)
    )
    counts: Counter[str] = Counter()
    texts: dict[str, str] = {}
    read = 0
    reader = engine.execution_options(**{READ_ONLY_OPTION: True})
    with reader.connect() as connection:
        ids = list(connection.execute(newest).scalars())
        for start in range(0, len(ids), _CHUNK):
            chunk = select(articles.c.body, articles.c.dropped_blocks).where(
                articles.c.id.in_(ids[start : start + _CHUNK])
            )
            for body, dropped in connection.execute(chunk):
                read += 1
                lines: dict[str, str] = {}
                for line in body.splitlines():
                    block = normalise_block(line)
                    if len(block) >= min_characters:
                        lines.setdefault(block_hash(block, normalised=True), block)
                counts.update(set(lines) | set((dropped or "").split()))
                for hashed, block in lines.items():
                    if counts[hashed] >= min_articles and hashed not in texts:
                        texts[hashed] = block
    return counts, texts, read


def blocks(
    engine: Engine, thresholds: Thresholds, *, site: str | None = None, prefix: str = ""
) -> list[Block]:
    """The learned blocks (of `site`; whose hash starts with `prefix`), most
    widespread first, each with its status under `thresholds`."""
    table = tables.boilerplate
    query = select(table).order_by(table.c.site, table.c.articles.desc(), table.c.block_hash)
    if site is not None:
        query = query.where(table.c.site == site)
    if prefix:
        if not _is_hex(prefix):
            return []
        query = query.where(table.c.block_hash.startswith(prefix.lower()))
    reader = engine.execution_options(**{READ_ONLY_OPTION: True})
    with reader.connect() as connection:
        return [
            Block(
                **row,
                status=status_of(row["verdict"], row["articles"], row["site_articles"], thresholds),
            )
            for row in connection.execute(query).mappings()
        ]


def applied(engine: Engine, site: str, thresholds: Thresholds) -> LearnedBoilerplate:
    """The blocks of `site` that extraction drops, as the value it is handed."""
    return LearnedBoilerplate(
        site,
        frozenset(
            block.block_hash
            for block in blocks(engine, thresholds, site=site)
            if block.status.is_applied
        ),
    )


def set_verdict(engine: Engine, site: str, hashed: str, verdict: str | None, now: datetime) -> bool:
    """Record a reviewer's `verdict` (``furniture``, ``article``, or None to let the
    thresholds decide again) on one block; False when there is no such block."""
    if verdict is not None and verdict not in VERDICTS:
        raise ValueError(f"verdict must be one of {', '.join(VERDICTS)} or None, not {verdict!r}")
    table = tables.boilerplate
    with engine.begin() as connection:
        result = connection.execute(
            update(table)
            .where(table.c.site == site, table.c.block_hash == hashed)
            .values(verdict=verdict, verdict_at=now if verdict is not None else None)
        )
        return bool(result.rowcount)


def _is_hex(text: str) -> bool:
    return all(character in "0123456789abcdefABCDEF" for character in text)
