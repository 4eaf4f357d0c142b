"""``news-archive show URL``: any URL a user may paste finds the stored article,
through the site rules (``http://``, AMP, print, old host, tracking parameters) and
the alias table, on both backends (the session's seed archive)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from news_archive.crawler.sites import SITES, url_candidates
from tests.conftest import SeedArchive
from tests.crawl.crawling import ROOT, SEEDS, crawl
from tests.test_cli import MAEIL_SEED, SKT_SEED, Cli, installed

MAEIL_VARIANTS = (
    "http://www.m-i.kr/news/articleView.html?idxno=714398",
    "https://www.m-i.kr/news/articleViewAmp.html?idxno=714398",
    "https://m.m-i.kr/news/articleViewAmp.html?idxno=714398",  # the mobile host, AMP
    "https://www.m-i.kr/news/articlePrint.html?idxno=714398",
    "https://www.m-i.kr/news/articleView.html?idxno=714398&utm_source=naver&fbclid=IwAR0x#c",
    "http://m-i.kr/news/articleView.html?idxno=714398",  # the bare host
    "www.m-i.kr/news/articleView.html?idxno=714398",  # pasted without a scheme
)
SKT_VARIANTS = (
    "http://news.sktelecom.com/129639",
    "https://news.sktelecom.com/129639/amp/",
    "https://news.sktelecom.com/129639?utm_source=facebook&utm_medium=social&fbclid=x",
    "https://www.sktinsight.com/129639",  # the old host, SKT Insight
    "http://sktinsight.com/129639/amp",
)
# Known only to the alias table: the seed crawl followed its redirect.
SKT_SHORTLINK = "https://www.sktinsight.com/?p=130003"


@pytest.mark.parametrize(
    ("variant", "canonical"),
    [(variant, MAEIL_SEED) for variant in MAEIL_VARIANTS]
    + [(variant, SKT_SEED) for variant in SKT_VARIANTS]
    + [(SKT_SHORTLINK, "https://news.sktelecom.com/130003")],
)
def test_show_finds_the_article_by_a_variant_of_its_url(
    cli: Cli, archive_url: str, variant: str, canonical: str
) -> None:
    article = json.loads(cli.succeed("show", variant, "--json", database_url=archive_url))
    assert article["url"] == canonical


def test_show_table_by_an_http_variant(cli: Cli, archive_url: str) -> None:
    output = cli.succeed("show", "http://www.sktinsight.com/129639", database_url=archive_url)
    assert f"url          {SKT_SEED}" in output


def test_a_url_of_no_stored_article_is_still_refused(cli: Cli, archive_url: str) -> None:
    missing = "http://www.m-i.kr/news/articleViewAmp.html?idxno=999999"
    result = cli.run("show", missing, database_url=archive_url)
    assert result.returncode == 1
    assert f"no archived article {missing!r}" in result.stderr


def test_url_candidates_put_the_url_as_given_first() -> None:
    pasted = "http://m.m-i.kr/news/articleViewAmp.html?idxno=714398&utm_source=x"
    assert url_candidates(pasted, SITES.values()) == [pasted, MAEIL_SEED]
    assert url_candidates(" news.sktelecom.com/129639 ", SITES.values()) == [SKT_SEED]
    assert url_candidates("https://example.com/129639", SITES.values()) == [
        "https://example.com/129639"
    ]


def test_a_configured_sites_rules_apply_too(tmp_path: Path) -> None:
    # 한강타임즈 exists only in a sites file (an NDSoft paper): its hosts and rules
    # come from SITES_FILE, as in the crawl.
    sites_file = {"SITES_FILE": str(SEEDS / "sites.toml")}
    database_url = f"sqlite:///{tmp_path / 'archive.db'}"
    crawl("hangang_times", SEEDS / "hangang_times", database_url, environment=sites_file)
    variant = "http://m.hangangtimes.example/news/articleViewAmp.html?idxno=30121&fbclid=x"
    shown = installed("show", variant, "--json", database_url=database_url, env=sites_file)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["url"] == (
        "https://www.hangangtimes.example/news/articleView.html?idxno=30121"
    )
    # Without the sites file the variant names no known site's article.
    unknown = installed("show", variant, database_url=database_url)
    assert unknown.returncode == 1


def test_show_by_url_imports_neither_scrapy_nor_trafilatura_nor_the_orm(
    seed_archives: dict[str, SeedArchive],
) -> None:
    # Start-up time is the command's own: the site rules must not pull in the
    # crawler (scrapy), the extraction engine (trafilatura, ~180 ms) or SQLAlchemy's
    # ORM (~100 ms; the table catalogue, storage/tables.py, is plain Core).
    program = (
        "import sys; from news_archive.cli.main import main; "
        f"status = main(['--database-url', {seed_archives['sqlite'].url!r}, 'show', "
        "'http://www.sktinsight.com/129639/amp', '--json']); "
        "print(sorted(name for name in ('scrapy', 'trafilatura', 'sqlalchemy.orm') "
        "if name in sys.modules)); "
        "sys.exit(status)"
    )
    result = subprocess.run(
        [sys.executable, "-c", program], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "[]"
