"""Body text through trafilatura, and photos from the markup.

Site modules hand in the article container when they can find it (fast and
precise: trafilatura then never sees the page furniture) or the whole document
when they cannot (trafilatura's own boilerplate removal, with its fallbacks).
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Iterable
from configparser import ConfigParser
from typing import TYPE_CHECKING
from urllib.parse import urljoin

from lxml import etree
from lxml import html as lxml_html

from news_archive.crawler.extract.furniture import prepare
from news_archive.vocabulary import Image

if TYPE_CHECKING:
    from trafilatura.settings import Extractor


@functools.cache
def _trafilatura_config() -> ConfigParser:
    # Built on first use: importing trafilatura takes some 180 ms, which the command
    # line's site rules (`news-archive show URL`, `--site`) should not pay.
    from trafilatura.settings import use_config

    # trafilatura drops extractions under 250 characters by default and then tries its
    # fallback extractors; short news items are real articles, so keep everything and
    # let the site module decide what is too little.
    config = use_config()
    config.set("DEFAULT", "MIN_EXTRACTED_SIZE", "1")
    config.set("DEFAULT", "MIN_OUTPUT_SIZE", "1")
    config.set("DEFAULT", "MIN_EXTRACTED_COMM_SIZE", "1")
    config.set("DEFAULT", "EXTRACTION_TIMEOUT", "0")
    return config


@functools.cache
def _trafilatura_options(fast: bool) -> Extractor:
    """trafilatura's options for our calls (`fast`: no fallback extractors), built once:
    built from keywords at each call, they cost 5 % of a page's extraction. trafilatura
    copies them before changing any (its recall retry)."""
    from trafilatura.settings import Extractor

    return Extractor(
        config=_trafilatura_config(),
        output_format="txt",
        fast=fast,
        comments=False,
        tables=True,
        images=False,
        links=False,
        formatting=False,
        dedup=False,
        with_metadata=False,
    )


def load_trafilatura() -> None:
    """Import trafilatura (about 0.17 s of CPU) and build its configuration now, not
    at the first page: each extraction worker calls this as it starts."""
    import trafilatura  # noqa: F401

    _trafilatura_options(fast=True)
    _trafilatura_options(fast=False)


_SPACES = re.compile(r"[ \t\u00a0\u3000]+")


def body_lines(root: lxml_html.HtmlElement, *, whole_page: bool) -> list[str]:
    """Paragraph lines trafilatura finds under `root`, comments excluded.

    `root` is left untouched (trafilatura prunes the tree it is given). A container
    (not `whole_page`) is first prepared by `furniture.prepare`. `whole_page` enables
    trafilatura's fallback extractors, worth their cost only when no container was
    found.
    """
    tree = copy.deepcopy(root)
    if not whole_page:
        # Subtitles out, <br>-separated runs as paragraphs, furniture blocks pruned
        # (crawler/extract/furniture.py): trafilatura then reads article text only.
        prepare(tree)
        # trafilatura expects a document; a bare container gets a <body> around it,
        # and an <article> inside that: trafilatura reads a frame it recognises as the
        # main content in full (headings, lists, quotes), but one it does not (a
        # ``<div id=...>`` with an unknown class) only through its fallback, which
        # keeps <p> alone and drops in-text headings and lists.
        document = lxml_html.Element("html")
        body = etree.SubElement(document, "body")
        etree.SubElement(body, "article").append(tree)
        tree = document
    import trafilatura

    text = trafilatura.extract(tree, options=_trafilatura_options(fast=not whole_page))
    return clean_lines((text or "").splitlines())


def clean_lines(lines: Iterable[str]) -> list[str]:
    """Collapse runs of spaces in each line and drop empty lines."""
    cleaned = (_SPACES.sub(" ", line).strip() for line in lines)
    return [line for line in cleaned if line]


def text_of(element: lxml_html.HtmlElement | None) -> str:
    """Visible text of an element, whitespace collapsed ('' for None)."""
    if element is None:
        return ""
    return " ".join(element.text_content().split())


def lines_of(element: lxml_html.HtmlElement | None) -> list[str]:
    """Text of an element split at ``<br>``, one entry per visual line."""
    if element is None:
        return []
    element = copy.deepcopy(element)
    for br in element.iter("br"):
        br.tail = "\n" + (br.tail or "")
    return clean_lines(element.text_content().splitlines())


def figures(container: lxml_html.HtmlElement, base_url: str) -> tuple[Image, ...]:
    """Photos inside the article container with their caption and alt text.

    trafilatura never outputs ``<figcaption>``, so captions come from markup:
    the figure's ``<figcaption>``, else nothing. Images outside a figure count
    too (alt only). Duplicate image URLs are kept once.
    """
    images: dict[str, Image] = {}
    for img in container.iter("img", "amp-img"):
        source = img.get("src") or img.get("data-src") or img.get("data-lazy-src")
        if not source or source.startswith("data:"):
            continue
        url = urljoin(base_url, source.strip())
        figure = next((a for a in img.iterancestors("figure")), None)
        caption_element = figure.find(".//figcaption") if figure is not None else None
        caption = text_of(caption_element) or None
        alt = " ".join((img.get("alt") or "").split()) or None
        images.setdefault(url, Image(url=url, caption=caption, alt=alt))
    return tuple(images.values())


def without_furniture(
    lines: Iterable[str],
    *,
    exact: frozenset[str] = frozenset(),
    prefixes: tuple[str, ...] = (),
    contains: tuple[str, ...] = (),
    captions: Iterable[str] = (),
    subtitles: Iterable[str] = (),
) -> list[str]:
    """Drop lines that are page furniture, a photo caption or a subtitle.

    Whole-line rules only: a real paragraph that merely mentions ``댓글`` stays.
    """
    dropped = (
        exact | {" ".join(c.split()) for c in captions} | {" ".join(s.split()) for s in subtitles}
    )
    kept = []
    for line in lines:
        if line in dropped or line.startswith(prefixes) or any(c in line for c in contains):
            continue
        kept.append(line)
    return kept
