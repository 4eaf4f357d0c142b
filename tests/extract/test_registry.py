"""The registry is the only list of sites: a site declared here, with a tiny fixture,
gets a spider, golden cases, a benchmark corpus and the command line's approval the
moment it is registered, and loses them all when it is not."""

from __future__ import annotations

import importlib
import importlib.util
import json
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult

import pytest
from lxml.cssselect import CSSSelector
from scrapy.settings import Settings
from scrapy.spiderloader import get_spider_loader
from scrapy.utils.test import get_crawler

import news_archive.crawler.spiders.sites as spider_module
from news_archive.cli.main import CliError, check_site
from news_archive.crawler.extract.signals import (
    FEED_PUBLISHED,
    FEED_TITLE,
    JSON_LD_HEADLINE,
    META_PUBLISHED,
    TEMPLATE_TITLE,
)
from news_archive.crawler.extract.site import Feed, Furniture, Site, Template
from news_archive.crawler.sites import SITES, site_for
from news_archive.vocabulary import Article
from tests.golden import FETCHED_AT, as_json, golden_cases, regenerate

ROOT = Path(__file__).resolve().parents[2]
HEADLINE = CSSSelector("h1.headline")


class ExampleGazette(Site):
    """The Example Gazette: a site that exists only in this test."""

    name = "example_gazette"
    hosts = frozenset({"gazette.example", "www.gazette.example"})
    article_url = "https://gazette.example/story/{id}"
    feed = Feed(("https://gazette.example/rss",))
    brands = ("Example Gazette",)
    templates = (Template("V1", marker=HEADLINE, title=HEADLINE),)
    containers = (CSSSelector("div.story"),)
    furniture = Furniture(exact=frozenset({"Share this story"}))
    title = (JSON_LD_HEADLINE, TEMPLATE_TITLE, FEED_TITLE)
    published = (META_PUBLISHED, FEED_PUBLISHED)

    def article_id(self, parts: SplitResult) -> int | None:
        match = re.fullmatch(r"/story/(\d+)/?", parts.path)
        return int(match.group(1)) if match else None


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Harbour reopens - Example Gazette</title>
<meta property="article:published_time" content="2026-11-20T17:00:00+09:00">
</head><body>
<h1 class="headline">Harbour reopens after the storm</h1>
<div class="story">
<p>The harbour reopened on Friday, four days after the storm closed it.</p>
<p>Ferries to the islands run on the winter timetable until Monday.</p>
<p>Share this story</p>
</div></body></html>
"""
URL = "https://www.gazette.example/story/42?utm_source=rss"
HEADERS = {"Content-Type": "text/html; charset=utf-8"}


def _write_replay(directory: Path, pages: dict[str, str]) -> None:
    """A replay directory serving `pages` (URL → HTML) from ``pages/``."""
    (directory / "pages").mkdir(parents=True)
    lines = []
    for number, (url, html) in enumerate(pages.items()):
        (directory / "pages" / f"{number}.html").write_text(html, "utf-8")
        lines.append({"url": url, "file": f"pages/{number}.html", "headers": HEADERS})
    (directory / "manifest.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))


@pytest.fixture
def seeds(tmp_path: Path) -> Path:
    """Seeds of the gazette: day 1, a byte-identical day 2, and the folder of a site
    nobody registered (which everything must skip, not trip over)."""
    root = tmp_path / "seeds"
    _write_replay(root / "example_gazette", {URL: PAGE})
    _write_replay(root / "example_gazette_day2", {URL: PAGE})
    _write_replay(root / "unregistered_site", {"https://elsewhere.example/1": PAGE})
    return root


@contextmanager
def registered(site: Site) -> Iterator[Site]:
    """`site` in the registry (and the spiders regenerated) for the block only."""
    SITES[site.name] = site
    try:
        importlib.reload(spider_module)
        yield site
    finally:
        del SITES[site.name]
        # A reload keeps the module's old names: drop the spider generated for `site`.
        delattr(spider_module, spider_module.SPIDERS[site.name].__name__)
        importlib.reload(spider_module)


def _spider_names() -> list[str]:
    settings = Settings({"SPIDER_MODULES": ["news_archive.crawler.spiders"]})
    return get_spider_loader(settings).list()


def _bench_generate() -> Callable[..., dict[str, Any]]:
    spec = importlib.util.spec_from_file_location("bench_run_registry", ROOT / "bench" / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while defined
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module.generate


def test_the_site_contract_works_for_a_declaration_alone() -> None:
    site = ExampleGazette()
    assert site.canonical_url(URL) == "https://gazette.example/story/42"
    assert site.canonical_url("https://gazette.example/about") is None
    article = site.extract(URL, PAGE.encode(), HEADERS, FETCHED_AT)
    assert isinstance(article, Article), article
    assert article.title == "Harbour reopens after the storm"
    assert article.body.splitlines() == [
        "The harbour reopened on Friday, four days after the storm closed it.",
        "Ferries to the islands run on the winter timetable until Monday.",
    ]
    assert article.published_at.isoformat() == "2026-11-20T08:00:00+00:00"
    assert article.sources == {
        "title": "markup",
        "body": "V1/container",
        "published_at": "article:published_time",
    }


def test_a_declaration_missing_a_required_part_is_refused() -> None:
    class Unfinished(Site):
        name = "unfinished"
        article_url = "https://unfinished.example/{id}"

    with pytest.raises(TypeError, match="Unfinished declares no hosts, feed"):
        Unfinished()


def test_registering_a_site_gives_spider_golden_cases_benchmark_and_cli(
    seeds: Path, tmp_path: Path
) -> None:
    generate = _bench_generate()
    assert "example_gazette" not in _spider_names()
    with registered(ExampleGazette()) as site:
        assert site_for("example_gazette") is site
        # A spider, with the site's exact hosts, without a spider module.
        assert "example_gazette" in _spider_names()
        spider_class = spider_module.SPIDERS["example_gazette"]
        assert spider_class.__name__ == "ExampleGazetteSpider"
        crawler = get_crawler(spider_class, {"INCREMENTAL": False})
        spider = spider_class.from_crawler(crawler)
        assert (spider.name, spider.site, spider.allowed_domains) == (
            "example_gazette",
            site,
            ["gazette.example", "www.gazette.example"],
        )
        # Golden cases: the day-2 copy is the same case; the golden file is written
        # beside the first copy only.
        (case,) = golden_cases(seeds)
        assert (case.site, [c.id for c in case.copies]) == (
            "example_gazette",
            ["example_gazette_day2/pages/0.html"],
        )
        assert regenerate(seeds) == [case.expected_path]
        assert json.loads(case.expected_path.read_text("utf-8")) == as_json(
            site.extract(URL, PAGE.encode(), HEADERS, FETCHED_AT)
        )
        assert not case.copies[0].expected_path.exists()
        # The benchmark corpus: a replay directory with a feed the site reads.
        corpus = generate(tmp_path / "corpus", 3, seeds=seeds)
        assert list(corpus) == ["example_gazette"]
        entries = site.feed_entries(
            (tmp_path / "corpus" / "example_gazette" / "feed.xml").read_bytes(), site.feed_urls[0]
        )
        assert [e.url for e in entries] == [url for url, _, _ in corpus["example_gazette"]]
        hashes = set()
        for url, body, headers in corpus["example_gazette"]:
            article = site.extract(url, body, headers, FETCHED_AT)
            assert isinstance(article, Article) and article.url == url
            hashes.add(article.content_hash)
        assert len(hashes) == 3
        # The command line accepts it.
        check_site("example_gazette")
    # Gone again, everywhere.
    assert "example_gazette" not in SITES
    assert "example_gazette" not in _spider_names()
    assert golden_cases(seeds) == []
    with pytest.raises(CliError, match="unknown site 'example_gazette'") as refused:
        check_site("example_gazette")
    assert refused.value.exit_code == 2


def test_every_registered_site_has_a_spider_of_its_name() -> None:
    assert sorted(_spider_names()) == sorted(SITES)
    for name, spider_class in spider_module.SPIDERS.items():
        assert spider_class.site is SITES[name]


def test_the_declaration_in_the_guide_runs() -> None:
    """docs/adding-a-site.md shows a declaration: it must extract the fixture page
    exactly as the one in this test does, so that the guide cannot drift."""
    guide = (ROOT / "docs" / "adding-a-site.md").read_text("utf-8")
    (declaration,) = re.findall(r"```python\n(.*?)```", guide, flags=re.S)[:1]
    namespace: dict[str, Any] = {"__name__": "adding_a_site_example"}
    exec(compile(declaration, "docs/adding-a-site.md", "exec"), namespace)
    site = namespace["ExampleGazette"]()
    assert site.name == "example_gazette"
    assert as_json(site.extract(URL, PAGE.encode(), HEADERS, FETCHED_AT)) == as_json(
        ExampleGazette().extract(URL, PAGE.encode(), HEADERS, FETCHED_AT)
    )
