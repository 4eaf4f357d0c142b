"""A Datasette plugin (entry point ``datasette: news_archive``): Datasette's search
box reads what `news-archive search` reads.

Datasette searches a table through ``articles_search MATCH escape_fts(:search)``;
its own ``escape_fts`` quotes each word as one FTS5 token, which finds only
two-syllable Korean words in our bigram index. This plugin registers an
``escape_fts`` that compiles the words of the query language (words ANDed,
``"phrases"``, ``OR``, ``-exclusions``) to the index's tokens instead, so any
length works (``카카오``, ``협``). Filters (``site:``...) are Datasette's facets
there, not words; a query with none of its words finds nothing.
"""

from __future__ import annotations

import sqlite3

from datasette import hookimpl

from news_archive.storage.fulltext import fts5_expression
from news_archive.storage.query import KOREA, QuerySyntaxError, parse

# An FTS5 query no article matches: the empty phrase.
NOTHING = '""'


def escape_fts(text: str) -> str:
    """The FTS5 expression for a query typed into Datasette's search box."""
    try:
        query = parse(text, zone=KOREA)
    except QuerySyntaxError:
        return NOTHING
    if not query.groups:
        return NOTHING
    return fts5_expression(query.groups, query.excluded)


@hookimpl(trylast=True)  # after Datasette's own, which it replaces
def prepare_connection(conn: sqlite3.Connection) -> None:
    conn.create_function("escape_fts", 1, escape_fts, deterministic=True)
