"""Learned boilerplate reaches extraction as data: `Site.extract(..., boilerplate=)`
drops the given blocks after the furniture, says which, and stays pure."""

from __future__ import annotations

from dataclasses import replace

import pytest

from news_archive.crawler.sites import SITES
from news_archive.vocabulary import Article, LearnedBoilerplate, block_hash, normalise_block
from tests.golden import FETCHED_AT, FixturePage, golden_cases

SEED_ARTICLES = [
    case.page
    for case in golden_cases()
    # The declared sites' pages (the configured ones of seeds/sites.toml sort first).
    if case.site in SITES
    and (expected := case.page.path.with_name(case.page.path.name + ".expected.json")).exists()
    and '"body"' in expected.read_text("utf-8")
]


def _extract(page: FixturePage, boilerplate: LearnedBoilerplate | None = None) -> Article:
    site = SITES[page.site]
    body = page.path.read_bytes()
    result = site.extract(page.url, body, page.headers, FETCHED_AT, boilerplate=boilerplate)
    assert isinstance(result, Article)
    return result


@pytest.mark.parametrize("page", SEED_ARTICLES[:4], ids=lambda page: page.id)
def test_given_blocks_are_dropped_and_named(page: FixturePage) -> None:
    plain = _extract(page)
    lines = plain.body.split("\n")
    assert len(lines) >= 2
    learned = LearnedBoilerplate(plain.site, frozenset({block_hash(lines[-1]), "f" * 32}))
    result = _extract(page, learned)
    assert result.body == "\n".join(lines[:-1])
    assert result.dropped_blocks == (block_hash(lines[-1]),)
    assert result.to_json()["dropped_blocks"] == [block_hash(lines[-1])]
    # Pure: the same input gives the same output; nothing learned gives the plain one.
    assert _extract(page, learned) == result
    assert _extract(page, LearnedBoilerplate(plain.site)) == plain
    assert replace(result, body=plain.body, dropped_blocks=()) == plain
    assert "dropped_blocks" not in plain.to_json()


def test_learned_blocks_never_make_a_page_no_article() -> None:
    """Dropping every line, or all but a line too short for a body, would turn the
    article into a no_body rejection: the page keeps its lines."""
    page = SEED_ARTICLES[0]
    plain = _extract(page)
    lines = plain.body.split("\n")
    every_line = frozenset(block_hash(line) for line in lines)
    assert _extract(page, LearnedBoilerplate(plain.site, every_line)) == plain
    short = min(lines, key=len)
    assert len(short) < 40
    all_but_short = every_line - {block_hash(short)}
    assert _extract(page, LearnedBoilerplate(plain.site, all_but_short)) == plain


def test_blocks_are_lines_with_their_whitespace_collapsed() -> None:
    assert (
        normalise_block("  보도자료 및\u00a0사진은\t 자유롭게  ") == "보도자료 및 사진은 자유롭게"
    )
    assert block_hash("보도자료 및 사진은") == block_hash(" 보도자료  및 사진은 ")
    assert block_hash("보도자료 및 사진은") != block_hash("보도자료 및 사진")
    assert len(block_hash("x")) == 32
    lines = ["첫 문단", "반복 문단", "끝 문단"]
    learned = LearnedBoilerplate("maeil_ilbo", frozenset({block_hash("반복  문단")}))
    assert learned.remove(lines) == (["첫 문단", "끝 문단"], (block_hash("반복 문단"),))
    assert LearnedBoilerplate("maeil_ilbo").remove(lines) == (lines, ())
    assert learned.remove(lines, keep_characters=9) == (lines, ())
