"""The bigram tokens and the queries compiled for each backend, without a database
(tests/storage/test_search.py runs them on both)."""

from __future__ import annotations

import dataclasses

from news_archive.storage import fulltext, tokens
from news_archive.storage.query import KOREA, parse
from tests.storage.factories import make_article


def test_index_tokens_are_bigrams_with_the_last_syllable() -> None:
    assert tokens.index_tokens("카카오와 SK텔레콤, AI는 5G") == [
        "카카", "카오", "오와", "와",
        "sk", "텔레", "레콤", "콤",
        "ai", "는",
        "5g",
    ]  # fmt: skip


def test_a_word_is_the_phrase_of_its_bigrams() -> None:
    query = parse('카카오 "협력 방안" 협 SK텔레콤', zone=KOREA)
    assert fulltext.fts5_expression(query.groups) == (
        '("카카 카오") AND ("협력 력 방안") AND ("협" *) AND ("sk 텔레 레콤")'
    )
    assert fulltext.tsquery_expression(query.groups) == (
        "(('카카' <-> '카오')) & (('협력' <-> '력' <-> '방안')) & (('협':*)) "
        "& (('sk' <-> '텔레' <-> '레콤'))"
    )


def test_or_and_not() -> None:
    query = parse("반도체 OR 배터리 SKT -카카오", zone=KOREA)
    assert fulltext.fts5_expression(query.groups, query.excluded) == (
        '("반도 도체" OR "배터 터리") AND ("skt") NOT "카카 카오"'
    )
    assert fulltext.tsquery_expression(query.groups, query.excluded) == (
        "(('반도' <-> '도체') | ('배터' <-> '터리')) & (('skt')) & !('카카' <-> '카오')"
    )


def test_tsvector_weights_the_title_and_leaves_a_gap() -> None:
    assert (
        fulltext.tsvector_literal(tokens.search_text("협력", "협력 방안"))
        == "'협력':1A,4 '력':2A,5 '방안':6 '안':7"
    )


def test_tsvector_stays_within_postgresql_limits() -> None:
    long_body = "가나 " * 20_000  # 40,000 tokens: positions past 16383, 20,000 of each token
    vector = fulltext.tsvector_literal(tokens.search_text("", long_body))
    places = dict(item.split(":", 1) for item in vector.split(" "))
    assert set(places) == {"'가나'", "'나'"}
    positions = places["'가나'"].split(",")
    assert len(positions) == fulltext.PG_MAX_POSITIONS_PER_TOKEN
    assert all(int(position) <= fulltext.PG_MAX_POSITION for position in positions)
    many = " ".join(f"w{number}" for number in range(200_000))  # 200,000 distinct tokens
    assert (
        len(fulltext.tsvector_literal(tokens.search_text("", many)).encode())
        < 2 * fulltext.PG_MAX_VECTOR_BYTES
    )


def test_an_articles_search_text_is_made_once_and_never_outlives_a_change() -> None:
    article = make_article(1, title="카카오와 협력", body="SK텔레콤의 5G")
    assert article.search_text is None
    expected = ("카카 카오 오와 와 협력 력", "sk 텔레 레콤 콤의 의 5g")
    assert tokens.article_search_text(article) == expected
    carried = tokens.with_search_text(article)
    assert carried.search_text == tokens.search_text(article.title, article.body)
    # a value beside the article: never compared, never exported
    assert carried == make_article(1, title="카카오와 협력", body="SK텔레콤의 5G")
    assert "search_text" not in carried.to_json()
    # a changed article does not keep the old text
    assert dataclasses.replace(carried, body="다른 본문").search_text is None
