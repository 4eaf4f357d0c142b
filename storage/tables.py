"""The table catalogue: each table of the archive as a SQLAlchemy Core `Table`,
named once here (from the declarative models in `storage.models`) and imported by
every module that writes SQL against it."""

from __future__ import annotations

from sqlalchemy import Table

from news_archive.storage.models import (
    ArticleImage,
    ArticleRecord,
    ArticleTag,
    ArticleVersion,
    BoilerplateBlock,
    Capture,
    CrawlError,
    CrawlLock,
    CrawlRun,
    HeldVersion,
    UrlAlias,
    UrlState,
)

articles: Table = ArticleRecord.__table__  # type: ignore[assignment]
versions: Table = ArticleVersion.__table__  # type: ignore[assignment]
held: Table = HeldVersion.__table__  # type: ignore[assignment]
tags: Table = ArticleTag.__table__  # type: ignore[assignment]
images: Table = ArticleImage.__table__  # type: ignore[assignment]
aliases: Table = UrlAlias.__table__  # type: ignore[assignment]
runs: Table = CrawlRun.__table__  # type: ignore[assignment]
errors: Table = CrawlError.__table__  # type: ignore[assignment]
url_state: Table = UrlState.__table__  # type: ignore[assignment]
locks: Table = CrawlLock.__table__  # type: ignore[assignment]
captures: Table = Capture.__table__  # type: ignore[assignment]
boilerplate: Table = BoilerplateBlock.__table__  # type: ignore[assignment]
