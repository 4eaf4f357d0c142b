"""Scrapy's own commands work on the project as Scrapy users expect: ``list``,
``crawl -O`` (articles only), ``parse`` and ``check``. Subprocesses: the command
line is the point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from news_archive.crawler.sites import SITES
from tests.crawl.crawling import ROOT, SEEDS, crawl_environment, snapshot

SEED_ARTICLE = "https://www.m-i.kr/news/articleView.html?idxno=714398"
SEED_TITLE = "[변화하는 재계]미래먹거리 AI…ICT업계 합종연횡 본격화"


def _scrapy(*arguments: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k not in ("REPLAY_DIR", "DATABASE_URL")}
    environment |= crawl_environment() | env
    return subprocess.run(
        [sys.executable, "-m", "scrapy", *arguments],
        cwd=cwd, env=environment, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def test_scrapy_list_names_both_spiders() -> None:
    listed = _scrapy("list", cwd=ROOT)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split() == ["maeil_ilbo", "skt_insight"]


def test_crawl_with_an_output_file_exports_the_articles_only(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'archive.db'}"
    output = tmp_path / "articles.jsonl"
    crawled = _scrapy(
        "crawl", "maeil_ilbo", "-O", str(output), cwd=ROOT,
        REPLAY_DIR=str(SEEDS / "maeil_ilbo"), DATABASE_URL=database_url,
    )  # fmt: skip
    assert crawled.returncode == 0, crawled.stderr
    exported = [json.loads(line) for line in output.read_text("utf-8").splitlines()]
    stored = snapshot(database_url)
    assert sorted(article["url"] for article in exported) == sorted(stored.site("maeil_ilbo"))
    assert all(article["title"] and article["body"] for article in exported)
    # The bookkeeping still reached the archive.
    assert stored.errors and stored.runs[0]["finish_reason"] == "finished"


def test_parse_prints_the_extracted_article(tmp_path: Path) -> None:
    parsed = _scrapy(
        "parse", "--spider=maeil_ilbo", SEED_ARTICLE, "--nolog", cwd=ROOT,
        REPLAY_DIR=str(SEEDS / "maeil_ilbo"), DATABASE_URL=f"sqlite:///{tmp_path / 'a.db'}",
    )  # fmt: skip
    assert parsed.returncode == 0, parsed.stderr
    assert "# Scraped Items" in parsed.stdout
    assert SEED_TITLE in parsed.stdout
    assert "'published_at'" in parsed.stdout


@pytest.mark.parametrize("spider", sorted(SITES))
def test_check_runs_the_contracts_of_every_site(spider: str, tmp_path: Path) -> None:
    checked = _scrapy(
        "check", spider, cwd=ROOT,
        REPLAY_DIR=str(SEEDS / spider), DATABASE_URL=f"sqlite:///{tmp_path / 'a.db'}",
    )  # fmt: skip
    assert checked.returncode == 0, checked.stderr
    # @returns and @scrapes of parse_article, @returns of parse_listing
    assert "Ran 3 contracts" in checked.stderr
    assert checked.stderr.rstrip().endswith("OK")


def test_a_broken_contract_fails_the_check(tmp_path: Path) -> None:
    # An empty replay folder: every page is a 404, so no article and no request.
    (tmp_path / "nothing").mkdir()
    (tmp_path / "nothing" / "manifest.jsonl").write_text("", encoding="utf-8")
    checked = _scrapy(
        "check", "maeil_ilbo", cwd=ROOT,
        REPLAY_DIR=str(tmp_path / "nothing"), DATABASE_URL=f"sqlite:///{tmp_path / 'a.db'}",
    )  # fmt: skip
    assert checked.returncode != 0
    assert "FAILED" in checked.stderr
