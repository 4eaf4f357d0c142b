"""Run real crawls (``scrapy crawl`` in a subprocess, replay mode) and read back
what they stored. A subprocess per crawl: Twisted's reactor starts once per
process, and this is exactly how cron runs the crawler."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scrapy import Spider
from scrapy.crawler import Crawler
from scrapy.utils.test import get_crawler
from sqlalchemy import create_engine, text

import news_archive.crawler.settings as project_settings

ROOT = Path(__file__).resolve().parents[2]
SEEDS = ROOT / "seeds"


def crawl(
    spider: str,
    replay_dir: Path | str | None,
    database_url: str,
    *arguments: str,
    expect_exit: int = 0,
    warc_dir: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """``scrapy crawl spider`` with REPLAY_DIR and DATABASE_URL from the environment,
    capturing WARC files into `warc_dir` (no capture when None).

    Raises with the crawl's log when it exits with another code than `expect_exit`."""
    env = {key: value for key, value in os.environ.items() if key not in ("REPLAY_DIR",)}
    env["DATABASE_URL"] = database_url
    env.update(crawl_environment(warc_dir))
    if replay_dir is not None:
        env["REPLAY_DIR"] = str(replay_dir)
    command = [sys.executable, "-m", "scrapy", "crawl", spider, *arguments]
    result = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    if result.returncode != expect_exit:
        raise AssertionError(
            f"{' '.join(command)} exited {result.returncode}, not {expect_exit}:\n{result.stderr}"
        )
    return result


def project_crawler(spidercls: type[Spider], **overrides: Any) -> Crawler:
    """An in-process crawler with the project's settings (as `scrapy crawl` has them)
    and `overrides`, its extensions built (``crawler.get_extension`` works) and its
    spider created: what Scrapy's own component tests use, without the reactor."""
    settings = {name: getattr(project_settings, name) for name in dir(project_settings)}
    settings = {name: value for name, value in settings.items() if name.isupper()}
    settings |= {"WARC_ENABLED": False, "LOG_LEVEL": "WARNING", **overrides}
    crawler = get_crawler(spidercls, settings)
    crawler.spider = crawler._create_spider()
    return crawler


def crawl_environment(warc_dir: Path | None = None) -> dict[str, str]:
    """Environment for test crawls: WARC capture only where a test asks for it,
    never into the repository's own warc/ folder."""
    if warc_dir is None:
        return {"WARC_ENABLED": "0"}
    return {"WARC_ENABLED": "1", "WARC_DIR": str(warc_dir)}


@dataclass
class Snapshot:
    """What a user sees with SQL after a crawl."""

    articles: dict[str, dict[str, Any]]
    versions: dict[str, int]
    errors: list[tuple[str, str, int | None, str]]
    aliases: dict[str, str]
    images: dict[str, list[tuple[str, str | None, str | None]]]
    tags: dict[str, list[str]]
    runs: list[dict[str, Any]]

    def site(self, name: str) -> dict[str, dict[str, Any]]:
        return {url: row for url, row in self.articles.items() if row["site"] == name}


def snapshot(database_url: str) -> Snapshot:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            articles = {
                row["url"]: dict(row)
                for row in connection.execute(text("SELECT * FROM articles")).mappings()
            }
            versions = dict(
                connection.execute(
                    text(
                        "SELECT a.url, count(v.id) FROM articles a "
                        "LEFT JOIN article_versions v ON v.article_id = a.id GROUP BY a.url"
                    )
                ).all()
            )
            errors = [
                tuple(row)
                for row in connection.execute(
                    text("SELECT spider, url, status, reason FROM crawl_errors ORDER BY id")
                ).all()
            ]
            aliases = dict(
                connection.execute(text("SELECT url, canonical_url FROM url_aliases")).all()
            )
            images: dict[str, list[tuple[str, str | None, str | None]]] = {}
            for url, image_url, caption, alt in connection.execute(
                text(
                    "SELECT a.url, i.url, i.caption, i.alt FROM article_images i "
                    "JOIN articles a ON a.id = i.article_id ORDER BY a.url, i.position"
                )
            ):
                images.setdefault(url, []).append((image_url, caption, alt))
            tags: dict[str, list[str]] = {}
            for url, tag in connection.execute(
                text(
                    "SELECT a.url, t.tag FROM article_tags t "
                    "JOIN articles a ON a.id = t.article_id "
                    "ORDER BY a.url, t.position"
                )
            ):
                tags.setdefault(url, []).append(tag)
            runs = [
                {**dict(row), "stats": json.loads(row["stats"] or "{}")}
                for row in connection.execute(
                    text("SELECT * FROM crawl_runs ORDER BY id")
                ).mappings()
            ]
    finally:
        engine.dispose()
    return Snapshot(articles, versions, errors, aliases, images, tags, runs)
