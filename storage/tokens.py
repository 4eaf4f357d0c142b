"""Search tokens for Korean text: character bigrams, as Lucene's CJK analyzer makes them.

Korean words carry their particles (``카카오와``, ``카카오의``) and most content words
are two syllables (정부, 금리), so a search must match inside words, at any
length from one syllable. A word index cannot (``카카오`` is not a token of
``카카오와``), and a trigram index cannot answer two syllables. Character bigrams
can: each run of CJK characters (Hangul, Han, kana) is indexed as its overlapping
two-character tokens, and a query word as the phrase of its own.

`index_tokens` turns a text into tokens; `word_tokens` a query word. The rule
that keeps them in step:

- A run of CJK characters ``c1 c2 … cn`` gives its bigrams ``c1c2 … c(n-1)cn``
  followed by the unigram ``cn`` (a run of one character gives only ``c1``).
  Every character of the run then begins a token (a bigram, or the final
  unigram), so a single syllable is found by the prefix query ``c*``.
- Any other run of letters and digits (``SKT``, ``5G``, ``2026``) is one token,
  case-folded: Latin words are matched as words.
- Everything else (spaces, punctuation) separates runs and gives no token.

A query word ``w1…wm`` (m ≥ 2) is the phrase of its bigrams; it matches inside
a run (``카카오`` in ``카카오와``) because the run's bigrams are consecutive.
A phrase of several words is the phrase of each word's full tokens (bigrams
and final unigram), the last word's bigrams alone: the text between them is then
whole runs, which is what a phrase means. Both SQLite (FTS5) and PostgreSQL
(``tsvector``) store these tokens, so both backends find the same articles.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator

from news_archive.vocabulary import Article

# What the index stores for an article: `index_text` of its title, and of its body.
SearchText = tuple[str, str]

# Hangul syllables and jamo, CJK ideographs, Japanese kana: scripts written
# without spaces between (all) words, indexed as bigrams.
_CJK = (
    "\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u3400-\u4dbf\u4e00-\u9fff"
    "\ua960-\ua97f\uac00-\ud7af\ud7b0-\ud7ff\uf900-\ufaff"
)
# A run of CJK characters, or a run of other letters and digits.
_RUN = re.compile(rf"([{_CJK}]+)|([^\W_{_CJK}]+)")


def normalize(text: str) -> str:
    """NFC (a macOS terminal may send decomposed Hangul; the pages are NFC)."""
    return unicodedata.normalize("NFC", text)


def runs(text: str) -> Iterator[tuple[str, bool]]:
    """The runs of `text` in order, each with True when it is CJK (bigrammed)."""
    for match in _RUN.finditer(normalize(text)):
        cjk, other = match.groups()
        yield (cjk, True) if cjk else (other, False)


def run_tokens(run: str, cjk: bool) -> list[str]:
    """One run's tokens: a CJK run's bigrams and final unigram; any other run
    itself, case-folded."""
    if not cjk:
        return [run.casefold()]
    return [run[i : i + 2] for i in range(len(run) - 1)] + [run[-1]]


def index_tokens(text: str) -> list[str]:
    """Every token of `text`, in order (positions matter for phrases): `run_tokens`
    of each of its `runs`, written out (the crawl indexes every article it stores)."""
    tokens: list[str] = []
    extend, append = tokens.extend, tokens.append
    for cjk, other in _RUN.findall(normalize(text)):
        if cjk:
            extend(map(str.__add__, cjk, cjk[1:]))  # its bigrams
            append(cjk[-1])
        else:
            append(other.casefold())
    return tokens


def index_text(text: str) -> str:
    """`index_tokens` joined by spaces: what the index stores for `text`."""
    return " ".join(index_tokens(text))


def search_text(title: str, body: str | None) -> SearchText:
    """What the index stores for an article of `title` and `body`."""
    return index_text(title), index_text(body or "")


def article_search_text(article: Article) -> SearchText:
    """`article`'s search text: the one it carries (`with_search_text`), else made now."""
    return article.search_text or search_text(article.title, article.body)


def with_search_text(article: Article) -> Article:
    """`article`, carrying its search text made now: an extraction worker calls this,
    so that the crawl's process, whose one interpreter lock the reactor and the
    writer threads share, does not tokenise (about 0.1 ms of Python an article)."""
    object.__setattr__(article, "search_text", search_text(article.title, article.body))
    return article


def word_tokens(run: str, cjk: bool, *, last: bool) -> list[str]:
    """The tokens a query run must match, in order. A CJK run of one character is
    a prefix (`is_prefix`); the last run of a phrase (`last`) drops its final
    unigram, so that it may go on inside a longer run of the text."""
    tokens = run_tokens(run, cjk)
    if cjk and last and len(run) > 1:
        return tokens[:-1]
    return tokens


def is_prefix(run: str, cjk: bool) -> bool:
    """A single CJK character is searched as a prefix of the tokens it begins."""
    return cjk and len(run) == 1


def text_pattern(text: str) -> str:
    """A regular expression (use it with `re.IGNORECASE`) for where `text` occurs as
    the index finds it: its runs in order; a CJK run anywhere (inside a longer
    run), any other run as a whole word (``AI`` in ``AI는``, not in ``SAID``);
    between two CJK runs at least one character that is no letter or digit (they
    are two runs), between others any such characters or none."""
    parts: list[str] = []
    previous_cjk = False
    for run, cjk in runs(text):
        escaped = re.escape(run)
        if parts:
            parts.append(r"[\W_]+" if cjk and previous_cjk else r"[\W_]*")
        # The look-behind after the word, so that the search starts from the literal.
        parts.append(escaped if cjk else rf"{escaped}(?<![^\W_{_CJK}]{escaped})(?![^\W_{_CJK}])")
        previous_cjk = cjk
    return "".join(parts)
