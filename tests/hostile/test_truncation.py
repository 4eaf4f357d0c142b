"""Suspect changes are held, not published (failure 9 of the campaign).

A revisit that serves a page cut off mid-body (608 → 77 characters in the
campaign) used to become the current version: the only check was a 40-character
minimum. Now a change whose HTML is visibly cut (no closing tags, fewer bytes than
``Content-Length``) or whose body lost more than half its length is held in
``held_versions`` and recorded as ``suspect_truncation``; the same content on a
later fetch makes it current. Crawls in-process (`HandCrawl`), both backends.
"""

from __future__ import annotations

import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from news_archive.crawler.extract.site import visibly_cut
from news_archive.crawler.sites import site_for
from news_archive.crawler.spiders.sites import MaeilIlboSpider
from tests.crawl.crawling import SEEDS, HandCrawl, snapshot

MAEIL = "https://www.m-i.kr/news/articleView.html?idxno={}"
BODY_DIV = 'id="article-view-content-div"'
PARAGRAPH = re.compile(r"<p\b[^>]*>.*?</p>", re.DOTALL)


def _paragraphs(html: str) -> list[re.Match[str]]:
    start = html.index(BODY_DIV)
    end = html.index("</article>", start)
    return [m for m in PARAGRAPH.finditer(html, start, end)]


def cut_after_paragraph(html: str, number: int) -> str:
    """The page as a connection cut right after body paragraph `number` leaves it."""
    return html[: _paragraphs(html)[number - 1].end()]


def without_paragraphs(html: str, numbers: set[int]) -> str:
    """The page, whole, with body paragraphs `numbers` (1-based) deleted: an edit."""
    spans = [m.span() for i, m in enumerate(_paragraphs(html), 1) if i in numbers]
    for start, end in reversed(spans):
        html = html[:start] + html[end:]
    return html


def replay_with(directory: Path, pages: dict[int, str]) -> Path:
    """A copy of the 매일일보 seeds with `pages` (idxno → HTML) replaced."""
    shutil.copytree(SEEDS / "maeil_ilbo", directory)
    for number, html in pages.items():
        (directory / "pages" / f"{number}.html").write_text(html, "utf-8")
    return directory


def run(replay_dir: Path, database_url: str) -> HandCrawl:
    with HandCrawl(MaeilIlboSpider, replay_dir, database_url, INCREMENTAL=False) as crawl:
        crawl.crawl(crawl.start())
    return crawl


def _held(database_url: str) -> dict[str, str]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return dict(
                connection.execute(
                    text(
                        "SELECT a.url, h.reason FROM held_versions h "
                        "JOIN articles a ON a.id = h.article_id"
                    )
                ).all()
            )
    finally:
        engine.dispose()


def _versions(database_url: str, url: str) -> list[str]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return list(
                connection.execute(
                    text(
                        "SELECT v.body FROM article_versions v JOIN articles a "
                        "ON a.id = v.article_id WHERE a.url = :url ORDER BY v.version"
                    ),
                    {"url": url},
                ).scalars()
            )
    finally:
        engine.dispose()


def test_a_truncated_or_collapsed_revisit_is_held_until_a_second_fetch_confirms_it(
    database_url: str, tmp_path: Path
) -> None:
    pages = SEEDS / "maeil_ilbo" / "pages"
    cut = cut_after_paragraph((pages / "800101.html").read_text("utf-8"), 1)
    # 800103: the HTML is whole, but 5 of its 7 paragraphs are gone (402 → ~100 chars).
    collapsed = without_paragraphs((pages / "800103.html").read_text("utf-8"), {3, 4, 5, 6, 7})
    # 714398: an ordinary edit, 3 of 11 paragraphs deleted (less than half the text).
    edited = without_paragraphs((pages / "714398.html").read_text("utf-8"), {4, 5, 6})
    day2 = replay_with(tmp_path / "day2", {800101: cut, 800103: collapsed, 714398: edited})

    run(SEEDS / "maeil_ilbo", database_url)
    day1 = snapshot(database_url).articles
    crawl = run(day2, database_url)
    after2 = snapshot(database_url)

    # Held: the current versions are day 1's, one version each, and it is said.
    for number in (800101, 800103):
        url = MAEIL.format(number)
        assert after2.articles[url]["body"] == day1[url]["body"], number
        assert after2.versions[url] == 1, number
    suspects = {url for _, url, _, reason in after2.errors if reason == "suspect_truncation"}
    assert suspects == {MAEIL.format(800101), MAEIL.format(800103)}
    held = _held(database_url)
    assert held[MAEIL.format(800101)] == "no closing </body> or </html>"
    assert held[MAEIL.format(800103)].startswith("body shrank from 402 to ")
    assert crawl.stats.get_value("archive/stored/held") == 2
    # An edit shortening the article by less than half is published at once.
    edited_url = MAEIL.format(714398)
    assert after2.versions[edited_url] == 2
    assert len(after2.articles[edited_url]["body"]) < len(day1[edited_url]["body"])

    # Day 3: the same content again: consistent, so it becomes current.
    run(day2, database_url)
    after3 = snapshot(database_url)
    for number in (800101, 800103):
        url = MAEIL.format(number)
        versions = _versions(database_url, url)
        assert versions[0] == day1[url]["body"]
        assert len(versions) == 2 and after3.articles[url]["body"] == versions[1], number
        assert len(versions[1]) * 2 < len(versions[0])
    assert _held(database_url) == {}
    assert after3.versions[edited_url] == 2


def test_a_whole_page_again_drops_what_was_held(database_url: str, tmp_path: Path) -> None:
    pages = SEEDS / "maeil_ilbo" / "pages"
    cut = cut_after_paragraph((pages / "800101.html").read_text("utf-8"), 1)
    run(SEEDS / "maeil_ilbo", database_url)
    run(replay_with(tmp_path / "day2", {800101: cut}), database_url)
    assert set(_held(database_url)) == {MAEIL.format(800101)}
    run(SEEDS / "maeil_ilbo", database_url)  # the page is whole again
    assert _held(database_url) == {}
    assert snapshot(database_url).versions[MAEIL.format(800101)] == 1


def test_a_page_shorter_than_its_content_length_is_suspect() -> None:
    site = site_for("maeil_ilbo")
    body = (SEEDS / "maeil_ilbo" / "pages" / "800101.html").read_bytes()
    headers = {"Content-Type": "text/html; charset=UTF-8", "Content-Length": str(len(body) + 10)}
    article = site.extract(MAEIL.format(800101), body, headers, datetime.now(UTC))
    assert article.suspect == f"{len(body)} of {len(body) + 10} bytes (Content-Length)"
    headers["Content-Length"] = str(len(body))
    assert site.extract(MAEIL.format(800101), body, headers, datetime.now(UTC)).suspect is None


@pytest.mark.parametrize(
    ("html", "cut"),
    [
        ("<html><body><p>text</p></body></html>", False),
        ("<html><body><p>text</p></body>", False),  # no </html>: still closed
        ("<html><body><p>text</p>", True),
        ("<HTML><BODY><P>text</P></BODY></HTML>", False),
        ("<Html><Body><p>text</p></Body></Html>", False),  # any mix of cases
        ("<html><body><p>text</p><!-- </bod -->", True),
    ],
)
def test_visibly_cut_reads_the_closing_tags(html: str, cut: bool) -> None:
    assert (visibly_cut(html, html.encode(), {}) is not None) is cut


def _next_visits(database_url: str) -> dict[str, tuple[datetime, datetime]]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT url, last_visit_at, next_visit_at FROM url_state")
            ).all()
            return {url: (visited, due) for url, visited, due in rows}
    finally:
        engine.dispose()


def test_a_held_page_is_due_again_at_the_next_run(database_url: str, tmp_path: Path) -> None:
    """The confirming fetch comes with the next incremental run, not after the
    revisit schedule's interval."""
    pages = SEEDS / "maeil_ilbo" / "pages"
    cut = cut_after_paragraph((pages / "800101.html").read_text("utf-8"), 1)
    day2 = replay_with(tmp_path / "day2", {800101: cut})
    run(SEEDS / "maeil_ilbo", database_url)
    with HandCrawl(MaeilIlboSpider, day2, database_url, INCREMENTAL=False) as crawl:
        crawl.crawl(crawl.start())
    visits = _next_visits(database_url)
    held_url = MAEIL.format(800101)
    visited, due = visits[held_url]
    assert due == visited
    assert all(due > visited for url, (visited, due) in visits.items() if url != held_url)
    with HandCrawl(MaeilIlboSpider, day2, database_url) as incremental:
        incremental.crawl(incremental.start())
    assert held_url in incremental.fetched
    assert _held(database_url) == {}  # confirmed: current now
