"""The vocabulary every layer shares: article, image, feed entry, rejection, fetch
failure, alias and visit, and the content hash that decides a new version.

The ground floor of the house: this module imports nothing of the project, so the
crawler produces these values and storage persists them without either importing
the other.  Plain frozen dataclasses, so that extraction stays pure (no Scrapy, no
SQLAlchemy) and Scrapy's item machinery (itemadapter) accepts them as items.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

_SPACES = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class Image:
    """One photo of an article: absolute URL, its visible caption and its alt text."""

    url: str
    caption: str | None = None
    alt: str | None = None


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """What a feed or list page says about one article; weakest metadata signal."""

    url: str
    title: str | None = None
    published_at: datetime | None = None
    published_raw: str | None = None
    authors: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    summary: str | None = None


@dataclass(frozen=True, slots=True)
class Article:
    """One extracted article page.

    All datetimes are timezone-aware UTC. `url` is the canonical article URL;
    `fetched_url` is the URL the bytes came from. `sources` names, for each
    metadata field, the signal it was taken from (e.g. ``"published_at": "json-ld"``).
    """

    site: str
    url: str
    fetched_url: str
    fetched_at: datetime
    title: str
    body: str
    published_at: datetime
    published_raw: str
    subtitles: tuple[str, ...] = ()
    authors: tuple[str, ...] = ()
    modified_at: datetime | None = None
    modified_raw: str | None = None
    section: str | None = None
    tags: tuple[str, ...] = ()
    images: tuple[Image, ...] = ()
    language: str | None = None
    sources: dict[str, str] = field(default_factory=dict)
    # Why this capture may be cut short (``no closing </body> or </html>``, fewer bytes
    # than Content-Length), or None. Storage then holds a changed version back until
    # a later fetch confirms it (``suspect_truncation``).
    suspect: str | None = None
    # The learned boilerplate blocks (`block_hash` of each) dropped from the body, in
    # body order: storage keeps them with the article, so that a block's evidence
    # still counts the articles it was dropped from (docs/archive.md, "Learned
    # boilerplate").
    dropped_blocks: tuple[str, ...] = ()
    # SHA-256 of the normalised title and body (`content_hash`): computed once, when
    # the article is made (in an extraction worker, off the crawl's busy thread), and
    # carried with it, instead of at each of storage's several reads.
    content_hash: str = field(init=False)
    # What the search index stores for the title and the body (`storage.tokens`), when
    # it was made ahead, with the article, by the extraction worker (off the crawl's
    # busy thread); None otherwise, and storage makes it as it writes. Never compared,
    # never exported, and not carried by `dataclasses.replace`: a changed article is
    # indexed as it is.
    search_text: tuple[str, str] | None = field(default=None, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "content_hash", content_hash(self.title, self.body))

    @property
    def author(self) -> str | None:
        """Byline names joined by ``", "``, or None when the page names no person."""
        return ", ".join(self.authors) or None

    @property
    def subtitle(self) -> str | None:
        """Subtitle lines joined by newlines, or None."""
        return "\n".join(self.subtitles) or None

    @property
    def body_source(self) -> BodySource | None:
        """`sources["body"]` as a typed value (None when absent or of another form)."""
        recorded = self.sources.get("body")
        return BodySource.parse(recorded) if recorded else None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (ISO 8601 datetimes), the shape of the golden files."""
        data = asdict(self)
        del data["search_text"]  # the index's, made ahead or not: not the article's
        for key, value in data.items():
            if isinstance(value, datetime):
                data[key] = value.isoformat()
            elif isinstance(value, tuple):
                data[key] = list(value)
        data["images"] = [asdict(image) for image in self.images]
        if data["suspect"] is None:  # the usual case: the shape of older files
            del data["suspect"]
        if not data["dropped_blocks"]:  # likewise: no learned boilerplate dropped
            del data["dropped_blocks"]
        return data


class BodyMethod(StrEnum):
    """How an article's body was found."""

    CONTAINER = "container"  # the site's body container, handed to trafilatura
    WHOLE_PAGE = "trafilatura-page"  # no container found: trafilatura on the whole page


UNKNOWN_TEMPLATE = "unknown"


@dataclass(frozen=True, slots=True)
class BodySource:
    """Where an article's body came from: the site's template version (``V1``,
    ``V2``..., or ``unknown`` when no declared version matched) and the method.

    Written as ``<template>/<method>`` (``V2/container``) in ``Article.sources["body"]``,
    the golden files and the stats ``archive/body_source/<template>/<method>``;
    `parse` reads that form back.
    """

    template: str
    method: BodyMethod

    def __str__(self) -> str:
        return f"{self.template}/{self.method}"

    @classmethod
    def parse(cls, text: str) -> BodySource | None:
        """The value `str` wrote, or None for text of another form."""
        template, _, method = text.partition("/")
        if not template or method not in {m.value for m in BodyMethod}:
            return None
        return cls(template, BodyMethod(method))

    @property
    def is_fallback(self) -> bool:
        """True unless the body came from the container of a known template version:
        the health checks count these as the site's layout having drifted."""
        return self.method is not BodyMethod.CONTAINER or self.template == UNKNOWN_TEMPLATE


@dataclass(frozen=True, slots=True)
class Rejection:
    """A page that yielded no article. `reason` is a short slug used in stats
    (``archive/rejected/<reason>``) and in the ``crawl_errors`` table."""

    site: str
    url: str
    reason: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class FetchFailure:
    """A request that failed: HTTP error status, DNS/TCP error, timeout."""

    site: str
    url: str
    reason: str
    status: int | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class AliasSeen:
    """`alias_url` was found to name the article at `canonical_url`."""

    site: str
    alias_url: str
    canonical_url: str


def normalise_text(text: str) -> str:
    """NFC, each line's whitespace collapsed, blank lines dropped."""
    text = unicodedata.normalize("NFC", text)
    lines = (_SPACES.sub(" ", line).strip() for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def content_hash(title: str, body: str) -> str:
    """SHA-256 (hex) of the normalised title and body: whitespace-only edits keep the hash."""
    payload = normalise_text(title) + "\n\n" + normalise_text(body)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


# Hex digits of SHA-256 kept in a block's hash: 128 bits, no collision among the
# blocks of any archive, and short enough to type after `news-archive boilerplate list`.
BLOCK_HASH_LENGTH = 32


def normalise_block(text: str) -> str:
    """A body line as a block: NFC, whitespace runs collapsed to one space, stripped."""
    # str.split() rather than a regular expression: a learning normalises every line
    # of a thousand bodies, and this is ten times faster on long Hangul lines.
    return " ".join(unicodedata.normalize("NFC", text).split())


def block_hash(text: str, *, normalised: bool = False) -> str:
    """The identity of a block of body text (one line of a body): the first
    `BLOCK_HASH_LENGTH` hex digits of the SHA-256 of `normalise_block(text)`
    (`normalised`: `text` already is)."""
    block = text if normalised else normalise_block(text)
    return hashlib.sha256(block.encode("utf-8")).hexdigest()[:BLOCK_HASH_LENGTH]


@dataclass(frozen=True, slots=True)
class LearnedBoilerplate:
    """The learned boilerplate blocks of one site that extraction drops from bodies:
    their `block_hash` values, as the archive applies them (storage decides which,
    from its evidence and the thresholds; extraction only receives this value)."""

    site: str
    hashes: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.hashes)

    def __len__(self) -> int:
        return len(self.hashes)

    def remove(
        self, lines: list[str], *, keep_characters: int = 1
    ) -> tuple[list[str], tuple[str, ...]]:
        """`lines` without the learned blocks, and the hashes of those dropped (in
        line order). Learned boilerplate changes what a body holds, never whether a
        page is an article: when the lines left would hold fewer than
        `keep_characters` characters (extraction's least body), all are kept."""
        if not self.hashes:
            return lines, ()
        hashes = [block_hash(line) for line in lines]
        kept = [
            line for line, hashed in zip(lines, hashes, strict=True) if hashed not in self.hashes
        ]
        if sum(len(line) for line in kept) < keep_characters:
            return lines, ()
        return kept, tuple(hashed for hashed in hashes if hashed in self.hashes)


@dataclass(frozen=True, slots=True)
class PageVisit:
    """An article page answered (200, or 304 to a conditional request): the
    validators for the next revisit and the age that sets its date."""

    site: str
    url: str  # canonical when known
    status: int
    fetched_at: datetime
    etag: str | None = None
    last_modified: str | None = None
    published_at: datetime | None = None
    next_visit_at: datetime | None = None  # when the URL is due again (the schedule's say)
    # The WARC record of this response, if captured: (file relative to WARC_DIR, offset).
    capture: tuple[str, int] | None = None
