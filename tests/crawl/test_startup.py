"""Start-up: a crawl imports what it uses, when it uses it (crawler/startup.py, the
migration check of storage/engine.py, the extraction pool).

No timing here: a crawl whose start-up regresses imports a module it had no need of,
and these tests name the modules (``bench/startup.py`` measures the seconds)."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.settings import Settings
from scrapy.utils.test import get_crawler

import news_archive.crawler.settings as project_settings
from news_archive.crawler.commands.crawl import (
    SWITCH_INTERVAL,
    YOUNG_OBJECTS,
    skip_unhandled_records,
)
from news_archive.crawler.startup import (
    HTTP_HANDLER,
    LazyHttpDownloadHandler,
    LeanStartup,
    TunnelErrorWhenLoaded,
)
from tests.crawl.crawling import ROOT, crawl_environment

SPIDER = "maeil_ilbo"
REMOTE_CONTROL = "scrapy.extensions.remote_control.RemoteControl"
COOKIES = "scrapy.downloadermiddlewares.cookies.CookiesMiddleware"
LAZY_HANDLER = "news_archive.crawler.startup.LazyHttpDownloadHandler"

# Never imported by a crawl of a feed whose one article is archived, into an SQLite
# database at head: nothing to migrate (Alembic), to extract (trafilatura), to
# download (the HTTP handler: replay), nothing that is switched off (the remote
# control's aiohttp, the cookies middleware's tldextract), no other database's dialect.
NOT_NEEDED = (
    "alembic",
    "trafilatura",
    "aiohttp",
    "tldextract",
    "scrapy.core.downloader.handlers.http11",
    "sqlalchemy.dialects.postgresql",
)

# `scrapy crawl ARGS...` that writes the names in sys.modules, as the process ends, to
# the file named by $MODULES_FILE.
CRAWL_RECORDING_MODULES = """
import atexit, gc, json, logging, os, sys

def record():
    with open(os.environ["MODULES_FILE"], "w") as file:
        json.dump(
            {
                "modules": sorted(sys.modules),
                "switch_interval": sys.getswitchinterval(),
                "young_objects": gc.get_threshold()[0],
                "root_level": logging.getLogger().level,
                "scrapy_level": logging.getLogger("scrapy").getEffectiveLevel(),
            },
            file,
        )

atexit.register(record)
from scrapy.cmdline import execute
execute(["scrapy", *sys.argv[1:]])
"""


def _project_settings(**given: object) -> Settings:
    settings = Settings()
    settings.setmodule(project_settings, priority="project")
    settings.setdict(dict(given), priority="cmdline")
    LeanStartup().update_settings(settings)
    return settings


def test_components_that_are_off_are_left_out() -> None:
    settings = _project_settings()
    assert REMOTE_CONTROL not in settings["EXTENSIONS_BASE"]
    assert COOKIES not in settings["DOWNLOADER_MIDDLEWARES_BASE"]
    # What is on stays, in Scrapy's order.
    assert (
        settings["DOWNLOADER_MIDDLEWARES_BASE"][
            "scrapy.downloadermiddlewares.retry.RetryMiddleware"
        ]
        == 550
    )
    assert "scrapy.extensions.closespider.CloseSpider" in settings["EXTENSIONS_BASE"]


def test_a_component_switched_on_is_kept() -> None:
    settings = _project_settings(COOKIES_ENABLED=True)
    assert settings["DOWNLOADER_MIDDLEWARES_BASE"][COOKIES] == 700


def test_the_http_handler_is_lazy_and_builds_scrapys_own() -> None:
    settings = _project_settings()
    assert settings["DOWNLOAD_HANDLERS_BASE"]["http"] == LAZY_HANDLER
    assert settings["DOWNLOAD_HANDLERS_BASE"]["https"] == LAZY_HANDLER
    assert LazyHttpDownloadHandler.lazy is True
    crawler = get_crawler(settings_dict={"TELNETCONSOLE_ENABLED": False})
    handler = LazyHttpDownloadHandler.from_crawler(crawler)
    assert f"{type(handler).__module__}.{type(handler).__name__}" == HTTP_HANDLER


def test_a_tunnel_error_is_still_retried() -> None:
    retried = RetryMiddleware(_project_settings()).exceptions_to_retry
    assert TunnelErrorWhenLoaded in retried
    from scrapy.core.downloader.handlers.http11 import TunnelError

    assert isinstance(TunnelError("proxy said no"), retried)
    assert not isinstance(ValueError("no"), TunnelErrorWhenLoaded)


def _generate_corpus(directory: Path, articles: int) -> Path:
    """A replay corpus of `articles` generated articles per site (bench/run.py); the
    replay directory of `SPIDER`."""
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "bench" / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)
    spec.loader.exec_module(module)
    module.generate(directory, 2 * articles)
    return directory / SPIDER


def _crawl_process(replay_dir: Path, database_url: str, tmp_path: Path) -> dict[str, Any]:
    """What a ``scrapy crawl SPIDER`` process (replay, WARC capture on, the project's
    settings) held as it ended: its ``modules``, its ``switch_interval``, its garbage
    collector's ``young_objects`` threshold and the ``root_level`` of its logging."""
    modules_file = tmp_path / "modules.json"
    env = {key: value for key, value in os.environ.items() if key != "REPLAY_DIR"}
    env |= crawl_environment(tmp_path / "warc")
    env |= {
        "DATABASE_URL": database_url,
        "REPLAY_DIR": str(replay_dir),
        "MODULES_FILE": str(modules_file),
    }
    command = [sys.executable, "-c", CRAWL_RECORDING_MODULES, "crawl", SPIDER]
    result = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr
    recorded: dict[str, Any] = json.loads(modules_file.read_text())
    return recorded


def _crawl_modules(replay_dir: Path, database_url: str, tmp_path: Path) -> set[str]:
    return set(_crawl_process(replay_dir, database_url, tmp_path)["modules"])


@pytest.fixture
def near_empty(tmp_path: Path) -> Path:
    """The replay directory of a feed that lists one article."""
    return _generate_corpus(tmp_path / "corpus", 1)


def _imported(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return [name for name in names if name in modules]


def test_a_near_empty_crawl_imports_only_what_it_uses(near_empty: Path, tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'archive.db'}"
    (tmp_path / "archive.db").touch()
    # The first crawl, on an empty file: the schema is created, the article extracted
    # (by a worker, which imports trafilatura itself: the crawl's own process never).
    first = _crawl_modules(near_empty, database_url, tmp_path)
    assert _imported(first, ("alembic", "trafilatura")) == ["alembic"]
    # The next: at head, its one article archived and not due.
    assert _imported(_crawl_modules(near_empty, database_url, tmp_path), NOT_NEEDED) == []


def test_the_crawl_process_hands_the_lock_over_quickly_collects_rarely_and_skips_unlogged_records(
    near_empty: Path, tmp_path: Path
) -> None:
    process = _crawl_process(near_empty, f"sqlite:///{tmp_path / 'archive.db'}", tmp_path)
    assert process["switch_interval"] == pytest.approx(SWITCH_INTERVAL)
    assert process["young_objects"] == YOUNG_OBJECTS
    # LOG_LEVEL: no DEBUG record is built, Scrapy's own included
    assert (process["root_level"], process["scrapy_level"]) == (logging.INFO, logging.INFO)


@contextmanager
def root_handlers(*handlers: logging.Handler) -> Iterator[logging.Logger]:
    """The root logger with only `handlers` (none of pytest's) and no level, restored
    afterwards."""
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    root.handlers[:] = handlers
    root.setLevel(logging.NOTSET)
    try:
        yield root
    finally:
        root.handlers[:] = saved
        root.setLevel(level)


def test_records_no_handler_takes_are_not_built() -> None:
    handler = logging.StreamHandler()
    handler.setLevel(logging.INFO)  # as Scrapy installs it, at LOG_LEVEL
    scrapys = logging.getLogger("scrapy")
    level = scrapys.level
    scrapys.setLevel(logging.DEBUG)  # as Scrapy sets it
    try:
        with root_handlers(handler) as root:
            skip_unhandled_records()
            assert root.level == logging.INFO
            assert not logging.getLogger("scrapy.core.engine").isEnabledFor(logging.DEBUG)
            assert logging.getLogger("scrapy.core.engine").isEnabledFor(logging.INFO)
    finally:
        scrapys.setLevel(level)


def test_a_debug_handler_anywhere_keeps_debug_records() -> None:
    scrapys, users = logging.StreamHandler(), logging.StreamHandler()
    scrapys.setLevel(logging.WARNING)
    users.setLevel(logging.DEBUG)
    debugging = logging.getLogger("news_archive.tests.debugging")
    debugging.addHandler(users)
    try:
        with root_handlers(scrapys) as root:
            skip_unhandled_records()
            assert root.level <= logging.DEBUG
            assert logging.getLogger("scrapy.core.engine").isEnabledFor(logging.DEBUG)
    finally:
        debugging.removeHandler(users)
