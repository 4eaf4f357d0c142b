"""Learned boilerplate end to end: real crawls learn it, `news-archive boilerplate`
lists and reviews it, re-extraction applies it to old articles and the next crawl
drops it at extraction; a paragraph of a series is listed, never dropped unasked.

The site is SKT 뉴스룸 as a replay folder written here: 60 posts from one seed page's
template, each with text of its own; the company's description ends 48 of them (80%)
and a series paragraph sits in 6 (10%)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from news_archive.crawler.spiders.sites import SktInsightSpider
from news_archive.vocabulary import block_hash
from tests.conftest import BACKENDS, fresh_database
from tests.crawl.crawling import SEEDS, HandCrawl, crawl

# What ends every press release of a company: a description of itself, no notice or
# box the extraction rules could tell by its wording or structure.
NOTE = "SK텔레콤은 AI 인프라와 서비스로 고객의 일상을 바꾸어 가는 대한민국 대표 통신 기업입니다."
SERIES = "‘AI 통신의 내일’은 SK텔레콤의 AI 전환을 짚어 보는 연재로, 매주 금요일에 이어집니다."
TEMPLATE_ID = "130002"
FIRST_ID = 140001
POSTS = 60
PAGE = "https://news.sktelecom.com/{}"


def carries_note(number: int) -> bool:
    return number % 5 != 0


def carries_series(number: int) -> bool:
    return number % 10 == 7


def paragraphs(number: int) -> list[str]:
    """The body of post `number` (1-based) as a careful reader gives it."""
    own = [
        f"SK텔레콤이 {number}번째 소식을 전했습니다. 이 문단은 이 글에만 있는 내용입니다.",
        f"회사는 {number}개 지역에서 새 서비스를 시작한다고 밝혔습니다. 서비스는 고객의 "
        "일상에서 자주 쓰이는 기능부터 차례로 선보이며, 이용자의 의견을 받아 다듬어 갈 "
        "계획입니다. 회사 관계자는 더 많은 고객이 새 기술의 혜택을 누리도록 하겠다고 "
        "말했습니다. 이번 서비스는 지난해부터 준비해 온 것으로, 회사는 앞으로도 고객의 "
        "목소리에 귀 기울이겠다고 덧붙였습니다.",
    ]
    extra = [SERIES] if carries_series(number) else []
    note = [NOTE] if carries_note(number) else []
    return [own[0], *extra, own[1], *note]


def write_site(folder: Path, numbers: Iterable[int]) -> Path:
    """A replay folder: the feed listing `numbers` and one page per post."""
    seed = SEEDS / "skt_insight"
    template = (seed / "pages" / f"{TEMPLATE_ID}.html").read_text("utf-8")
    start = template.index('<div class="entry-content">')
    end = template.index("</div><!-- .entry-content -->")
    (folder / "pages").mkdir(parents=True)
    (folder / "robots.txt").write_bytes((seed / "robots.txt").read_bytes())
    manifest = [
        {"url": "https://news.sktelecom.com/robots.txt", "file": "robots.txt"},
        {
            "url": "https://news.sktelecom.com/feed",
            "file": "feed.xml",
            "headers": {"Content-Type": "application/rss+xml; charset=UTF-8"},
        },
    ]
    items = []
    for number in numbers:
        post = str(FIRST_ID + number - 1)
        content = "".join(f"<p>{line}</p>\n" for line in paragraphs(number))
        page = template[:start] + f'<div class="entry-content">\n{content}' + template[end:]
        page = page.replace(TEMPLATE_ID, post).replace(
            "T 멤버십 시스템 정기 점검에 따른 서비스 일시 중단 안내", f"{number}번째 소식"
        )
        (folder / "pages" / f"{post}.html").write_text(page, "utf-8")
        manifest.append(
            {
                "url": PAGE.format(post),
                "file": f"pages/{post}.html",
                "headers": {"Content-Type": "text/html; charset=UTF-8"},
            }
        )
        items.append(
            f"<item><title>{number}번째 소식</title><link>{PAGE.format(post)}</link>"
            "<pubDate>Sat, 21 Nov 2026 06:00:00 +0000</pubDate></item>"
        )
    (folder / "feed.xml").write_text(
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        "<title>SKT 뉴스룸</title><link>https://news.sktelecom.com</link>"
        + "".join(items)
        + "</channel></rss>",
        "utf-8",
    )
    (folder / "manifest.jsonl").write_text(
        "".join(json.dumps(entry, ensure_ascii=False) + "\n" for entry in manifest), "utf-8"
    )
    return folder


def news_archive(database_url: str, *arguments: str) -> subprocess.CompletedProcess[str]:
    """The installed ``news-archive`` as a user runs it."""
    command = [str(Path(sys.executable).parent / "news-archive"), *arguments]
    return subprocess.run(
        [*command, "--database-url", database_url],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def listed(database_url: str) -> dict[str, dict[str, Any]]:
    """`boilerplate list --json`, by block text."""
    done = news_archive(database_url, "boilerplate", "list", "--json")
    assert done.returncode == 0, done.stderr
    return {block["text"]: block for block in json.loads(done.stdout)}


def reextract(database_url: str, warc: Path) -> dict[str, int]:
    done = news_archive(
        database_url, "reextract", "--warc-dir", str(warc), "--no-progress", "--json"
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def bodies(database_url: str) -> dict[int, list[str]]:
    """Post number → its stored body lines."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT url, body FROM articles")).all()
    finally:
        engine.dispose()
    return {int(url.rsplit("/", 1)[1]) - FIRST_ID + 1: body.split("\n") for url, body in rows}


def last_run_stats(database_url: str) -> dict[str, Any]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            stats = connection.execute(
                text("SELECT stats FROM crawl_runs ORDER BY id DESC LIMIT 1")
            ).scalar_one()
    finally:
        engine.dispose()
    return json.loads(stats)


def with_note(lines: dict[int, list[str]]) -> set[int]:
    return {number for number, body in lines.items() if NOTE in body}


def with_series(lines: dict[int, list[str]]) -> set[int]:
    return {number for number, body in lines.items() if SERIES in body}


@dataclass(frozen=True)
class Archived:
    url: str
    warc: Path
    folder: Path


@pytest.fixture
def first_crawl(request: pytest.FixtureRequest, tmp_path: Path) -> Iterable[Archived]:
    """The 60 posts crawled once, with WARC capture, on the backend the test names
    (both for the whole story; the review and command details on SQLite)."""
    with fresh_database(request.param, tmp_path) as url:
        warc = tmp_path / "warc"
        site = write_site(tmp_path / "day1", range(1, POSTS + 1))
        crawl("skt_insight", site, url, warc_dir=warc)
        yield Archived(url, warc, tmp_path)


@pytest.mark.parametrize("first_crawl", BACKENDS, indirect=True)
def test_a_crawl_learns_reextraction_applies_and_the_next_crawl_drops(
    first_crawl: Archived,
) -> None:
    url, warc = first_crawl.url, first_crawl.warc
    # The first crawl knew nothing: the bodies are as printed.
    assert with_note(bodies(url)) == {n for n in range(1, POSTS + 1) if carries_note(n)}
    # ...and learned at its end: the note applies, the series paragraph is a candidate.
    blocks = listed(url)
    assert set(blocks) == {NOTE, SERIES}
    assert blocks[NOTE] | {"first_learned_at": None, "learned_at": None} == {
        "hash": block_hash(NOTE),
        "site": "skt_insight",
        "articles": 48,
        "site_articles": 60,
        "share": 0.8,
        "status": "applied",
        "verdict": None,
        "text": NOTE,
        "first_learned_at": None,
        "learned_at": None,
    }
    assert (blocks[SERIES]["articles"], blocks[SERIES]["status"]) == (6, "candidate")
    assert last_run_stats(url)["archive/boilerplate/learned"] == 2

    # Re-extraction applies it to the old articles: a new version each, the series kept.
    assert reextract(url, warc) == {"targets": 60, "changed": 48, "unchanged": 12}
    after = bodies(url)
    assert with_note(after) == set()
    assert with_series(after) == {7, 17, 27, 37, 47, 57}
    assert after[1] == paragraphs(1)[:1] + paragraphs(1)[1:-1]
    assert reextract(url, warc) == {"targets": 60, "unchanged": 60}
    # The evidence holds although no stored body shows the note any more.
    assert listed(url)[NOTE]["status"] == "applied"
    news_archive(url, "boilerplate", "learn", "--site", "skt_insight")
    assert (listed(url)[NOTE]["articles"], listed(url)[NOTE]["status"]) == (48, "applied")

    # The next crawl (in worker processes) drops it at extraction.
    day2 = write_site(first_crawl.folder / "day2", range(1, POSTS + 6))
    crawl("skt_insight", day2, url, warc_dir=warc)
    stats = last_run_stats(url)
    assert (stats["archive/stored/new"], stats["archive/boilerplate/dropped"]) == (5, 4)
    assert with_note(bodies(url)) == set()
    assert listed(url)[NOTE]["articles"] == 52  # 61..64 carry it too, dropped or not


@pytest.mark.parametrize("first_crawl", ["sqlite"], indirect=True)
def test_a_reviewer_keeps_an_applied_block_and_confirms_a_candidate(
    first_crawl: Archived,
) -> None:
    url, warc = first_crawl.url, first_crawl.warc
    assert reextract(url, warc)["changed"] == 48
    kept = news_archive(url, "boilerplate", "keep", block_hash(NOTE)[:8])
    assert kept.returncode == 0, kept.stderr
    assert "applied -> kept" in kept.stdout and "reextract --site skt_insight" in kept.stdout
    assert reextract(url, warc) == {"targets": 60, "changed": 48, "unchanged": 12}
    assert len(with_note(bodies(url))) == 48  # back where the site printed it

    dropped = news_archive(url, "boilerplate", "drop", block_hash(SERIES))
    assert dropped.returncode == 0 and "candidate -> confirmed" in dropped.stdout
    assert reextract(url, warc) == {"targets": 60, "changed": 6, "unchanged": 54}
    assert with_series(bodies(url)) == set()
    statuses = {text: block["status"] for text, block in listed(url).items()}
    assert statuses == {NOTE: "kept", SERIES: "confirmed"}

    reset = news_archive(url, "boilerplate", "reset", block_hash(SERIES))
    assert reset.returncode == 0 and "confirmed -> candidate" in reset.stdout


@pytest.mark.parametrize("first_crawl", ["sqlite"], indirect=True)
def test_extraction_in_process_applies_it_too(first_crawl: Archived) -> None:
    """EXTRACTION_WORKERS=0: the crawl's own process extracts with the learned set."""
    day2 = write_site(first_crawl.folder / "day2", range(1, POSTS + 3))
    with HandCrawl(SktInsightSpider, day2, first_crawl.url) as run:
        run.crawl(run.start())
    assert run.stats.get_value("archive/boilerplate/applied") == 1
    assert run.stats.get_value("archive/boilerplate/dropped") == 2
    assert run.stats.get_value("archive/stored/new") == 2
    new = {n: body for n, body in bodies(first_crawl.url).items() if n > POSTS}
    assert new == {n: paragraphs(n)[:-1] for n in (61, 62)}


@pytest.mark.parametrize("first_crawl", ["sqlite"], indirect=True)
def test_the_commands_say_what_is_wrong_in_one_line(first_crawl: Archived) -> None:
    url = first_crawl.url
    table = news_archive(url, "boilerplate", "list")
    assert table.returncode == 0
    assert re.search(rf"{block_hash(NOTE)[:12]} +skt_insight +48/60 +80% +applied", table.stdout)
    assert "2 block(s), 1 applied" in table.stdout
    only = news_archive(url, "boilerplate", "list", "--status", "candidate", "--json")
    assert [block["text"] for block in json.loads(only.stdout)] == [SERIES]
    for arguments, exit_code, message in (
        (("keep", "0123456789"), 1, "no learned block with hash '0123456789'"),
        (("drop", "abc"), 2, "give at least 6 digits"),
        (("keep", block_hash(NOTE), "--site", "maeil_ilbo"), 1, "no learned block of maeil_ilbo"),
        (("list", "--site", "nope"), 2, "unknown site 'nope'"),
    ):
        done = news_archive(url, "boilerplate", *arguments)
        assert done.returncode == exit_code, done.stderr
        assert done.stderr.count("\n") == 1 and message in done.stderr, done.stderr
    learned = news_archive(url, "boilerplate", "learn")
    assert learned.returncode == 0, learned.stderr
    assert "skt_insight: 60 article(s) read, 2 block(s) in at least 5 (0 new), 1 applied" in (
        learned.stdout
    )
    assert "maeil_ilbo: 0 article(s) read" in learned.stdout
