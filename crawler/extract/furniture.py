"""The body container made ready for trafilatura: rules by kind, not by string.

`Site.locate` finds the container; `prepare` then works on a COPY of it (photo
captions and in-body subtitles have already been read from the original), in this
order:

1. **Subtitles** (`subtitle_elements`): an element whose class or id names it a
   subtitle (``subheading``, ``subtitle``, ``sub-title``, ``sub_title``,
   ``article-sub...``, ``부제``) is a subtitle wherever it sits in the container,
   and leaves the body. A plain in-text heading (``<h3>``, a bold line) carries no
   such name and stays in the body.
2. **Paragraphs from ``<br>``** (`paragraphs_from_breaks`): a run of inline text
   (text and inline elements) in the container or in a ``div``-like block,
   delimited by ``<br>`` (one or more) or by a block element, becomes a ``<p>``.
   trafilatura's fast extraction only emits the elements it recognises
   (paragraphs, headings, lists...) once the container has any ``<p>``: text lying
   loose in a ``<div>`` before its first ``<br>``, which is exactly where an older
   template puts the dateline paragraph ``[매일일보 박효길 기자] ...``, belongs to no
   such element and is dropped, and a bold dateline is cut off from its sentence.
   Paragraphs made from the markup are what trafilatura keeps.
3. **Furniture by structure** (`prune_furniture`): a block is removed when its
   structure says it is no article text, whatever its words:
   - a *box of links*: two or more links making up most of its text
     (`link_density`: link text / all text);
   - a *list of headlines*: a ``ul``/``ol`` whose items are each essentially one
     link, or two or more consecutive blocks each of which is one link;
   - a *download/attachment box*: a class or id naming a download, attachment or
     file (``wp-block-file``), or a block made mostly of links to files
     (``.pdf``, ``.hwp``, ``.docx``, ``.zip``, images...) or ``download`` links;
   - a *usage or rights note*: a short block whose words are a notice about reuse
     of the material (``©``, ``Copyright``, ``All rights reserved``, ``저작권자``,
     ``무단 전재·배포 금지``, ``...자유롭게 사용하실 수 있습니다``);
   - a *heading over links*: a heading, or a short bold or title-like line, right
     before a removed box or list (``관련기사``, ``보도자료 다운로드``).
   Never removed: the container itself, tables and anything inside them (data
   tables), and a paragraph with an inline link (its link text is a minority).

Pure: lxml elements in, the same elements changed in place; no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from copy import deepcopy as copy_element
from urllib.parse import urlsplit

from lxml import etree
from lxml import html as lxml_html

# ------------------------------------------------------------------ subtitles

# Class or id words naming a subtitle, alone or as a part of a compound name:
# subheading, sub-heading, subtitle, sub_title, subhead, post-subtitle,
# entry-sub-title, article-sub, article_subtitle, 부제 (and 부제목). Not subheader,
# subscribe, sub-menu.
_SUBTITLE_NAME = re.compile(
    r"(?:^|[-_])sub[-_]?(?:heading|head|title)s?(?:$|[-_])|^article[-_]?sub(?:$|[-_])|부제",
    re.I,
)


def _names(element: lxml_html.HtmlElement) -> list[str]:
    """The class names and the id of `element`."""
    return [*(element.get("class") or "").split(), *(element.get("id") or "").split()]


def is_subtitle(element: lxml_html.HtmlElement) -> bool:
    """Whether a class name or the id of `element` names it a subtitle."""
    return any(_SUBTITLE_NAME.search(name) for name in _names(element))


def subtitle_elements(container: lxml_html.HtmlElement) -> list[lxml_html.HtmlElement]:
    """Subtitle elements anywhere inside `container` (not nested in one another),
    in document order."""
    found: list[lxml_html.HtmlElement] = []
    for element in container.iterdescendants():
        if not isinstance(element.tag, str):
            continue
        if is_subtitle(element) and not any(a in found for a in element.iterancestors()):
            found.append(element)
    return found


# ------------------------------------------------------- paragraphs from <br>

# Elements that flow inside a line of text; everything else is a block.
INLINE = frozenset(
    {
        "a", "abbr", "b", "bdi", "bdo", "big", "cite", "code", "data", "del", "dfn", "em",
        "font", "i", "img", "ins", "kbd", "mark", "q", "s", "samp", "small", "span",
        "strike", "strong", "sub", "sup", "time", "tt", "u", "var", "wbr",
    }
)  # fmt: skip
# Blocks whose loose text runs become paragraphs (not tables, lists or quotes:
# trafilatura reads those as they are).
_TEXT_HOLDERS = ("div", "section", "article", "main", "center")


def _is_inline(node: etree._Element) -> bool:
    # Comments and processing instructions flow with the text they sit in.
    return not isinstance(node.tag, str) or node.tag in INLINE


def _has_text(text: str | None) -> bool:
    return bool(text and text.strip())


def _loose_text(element: lxml_html.HtmlElement) -> bool:
    """Whether `element` holds text outside any child block (its own text, a
    child's tail or an inline child with text)."""
    if _has_text(element.text):
        return True
    for child in element:
        if _has_text(child.tail):
            return True
        if _is_inline(child) and isinstance(child.tag, str) and _has_text(child.text_content()):
            return True
    return False


def paragraphs_from_breaks(root: lxml_html.HtmlElement) -> None:
    """Wrap every run of inline content in `root` and its ``div``-like blocks into a
    ``<p>``; runs end at a ``<br>`` (dropped) or a block child (kept in place).
    A ``div`` holding one run of text becomes a ``div`` holding one paragraph
    (trafilatura skips a bare text ``div`` once the container has paragraphs).
    Elements without loose text are left alone."""
    for element in [root, *root.iterdescendants(*_TEXT_HOLDERS)]:
        if _loose_text(element):
            _wrap_runs(element)


def _wrap_runs(element: lxml_html.HtmlElement) -> None:
    children = list(element)
    paragraph = lxml_html.Element("p")
    paragraph.text = element.text
    element.text = None
    rebuilt: list[etree._Element] = []

    def flush() -> None:
        nonlocal paragraph
        if _has_text(paragraph.text_content()):
            rebuilt.append(paragraph)
        paragraph = lxml_html.Element("p")

    for child in children:
        tail, child.tail = child.tail, None
        element.remove(child)
        if child.tag == "br":
            flush()
            paragraph.text = tail
        elif _is_inline(child):
            paragraph.append(child)
            child.tail = tail
        else:
            flush()
            rebuilt.append(child)
            paragraph.text = tail
    flush()
    for node in rebuilt:
        element.append(node)


# ------------------------------------------------------ furniture by structure

# Files a link may offer for download (attachments, press kits, photos).
FILE_EXTENSIONS = frozenset(
    {
        "pdf", "hwp", "hwpx", "doc", "docx", "xls", "xlsx", "ppt", "pptx", "zip", "7z",
        "rar", "txt", "rtf", "odt", "csv", "jpg", "jpeg", "png", "gif", "tif", "tiff",
        "mp3", "mp4", "mov", "avi",
    }
)  # fmt: skip
# Class or id words of a download/attachment box (split at - and _: wp-block-file).
_DOWNLOAD_WORDS = frozenset(
    {"download", "downloads", "attach", "attachment", "attachments", "file", "files", "첨부"}
)
# Notices about the reuse of the material. A notice is worded as one, not as a
# sentence that reports on copyright (an article about a copyright lawsuit says
# "저작권자" and "무단 복제" too): a copyright sign, "Copyright" followed by a sign or
# a year, "All rights reserved", "저작권자" followed by a sign;
# a prohibition of reprinting or redistribution that ENDS the line (a report goes
# on: "...금지하기로 했다"); a permission to use the material that ends the line in
# the form a notice addresses its reader (자유롭게 사용하실 수 있습니다 / 이용할 수
# 있다), never a report of one ("사용할 수 없다고 밝혔다").
_RIGHTS_NOTICE = re.compile(
    r"[©ⓒ]|\(c\)\s*\d{4}|copyright\s*(?:\(c\)|\d{4})"
    r"|all\s+rights\s+reserved"
    r"|무단\s*(?:전재|복제|배포|게재|사용)[^.]{0,20}(?:금지|금합니다|금함|엄금)\W*$"
    r"|(?:전재|재배포|배포)\s*(?:금지|를\s*금합니다)\W*$"
    r"|(?:보도자료|사진|이미지|영상|기사|콘텐츠|자료)[^.]{0,40}"
    r"(?:자유롭게|출처를\s*밝히\w*|보도\s*목적\w*)[^.]{0,20}"
    r"(?:사용|이용|활용|게재|인용)\s*(?:하실|할)\s*수\s*있(?:습니다|다)\W*$",
    re.I,
)
NOTE_MAX_CHARACTERS = 200  # a usage note is a line, not a paragraph of the article
HEADING_MAX_CHARACTERS = 40  # a heading over a box of links is a few words
LINK_BOX_DENSITY = 0.6  # link text / all text of a box of links or list of headlines
LINK_ITEM_DENSITY = 0.5  # ... of each item of a list of headlines (a date may follow)
LINK_LINE_DENSITY = 0.8  # ... of a block that is one link
_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_BOXES = frozenset(
    {"div", "section", "aside", "nav", "ul", "ol", "dl", "p", "footer", "header", "figure"}
)
_LINES = frozenset({"p", "div", "li", "dd", "dt"})
_SENTENCE_END = re.compile(r"[.!?。…]$|다$")
# The end of a sentence, closing quotes and brackets allowed after it.
_SENTENCE = re.compile(r"(?:[.!?。]|다|요)[\"'”’」』)\]]*\s*$")
# A reported sentence: news prose ends in the plain ``...다.`` (했다, 밝혔다), a
# notice in the polite ``...니다.`` (금합니다); closing quotes allowed.
_REPORTED = re.compile(r"(?<!니)다[.!]?[\"'”’」』)\]]*\s*$")
# The permission form of a notice (it is declarative too).
_PERMISSION = re.compile(r"(?:하실|할)\s*수\s*있(?:습니다|다)\W*$")


def _text(element: etree._Element) -> str:
    return " ".join(element.text_content().split()) if isinstance(element.tag, str) else ""


def _links(element: lxml_html.HtmlElement) -> list[lxml_html.HtmlElement]:
    return [a for a in element.iter("a") if a.get("href") is not None]


def link_density(element: lxml_html.HtmlElement) -> float:
    """Characters of link text over all characters of text in `element`, spaces
    ignored (0.0 for an element without text)."""
    total = len("".join(element.text_content().split()))
    if total == 0:
        return 0.0
    linked = sum(len("".join(a.text_content().split())) for a in element.iter("a"))
    return min(1.0, linked / total)


def _in_table(element: lxml_html.HtmlElement) -> bool:
    return element.tag in {"table", "tr", "td", "th"} or any(
        a.tag == "table" for a in element.iterancestors()
    )


def _is_file_link(link: lxml_html.HtmlElement) -> bool:
    """A link that offers a file: a ``download`` attribute, or a path with a file
    extension and link TEXT naming what it offers. A link around an image and
    nothing else is a photo ("link to media file"), not a download."""
    if link.get("download") is not None:
        return True
    if not _has_text(link.text_content()):
        return False
    path = urlsplit((link.get("href") or "").strip()).path.lower()
    return path.rsplit(".", 1)[-1] in FILE_EXTENSIONS if "." in path.rsplit("/", 1)[-1] else False


def _is_leaf(element: lxml_html.HtmlElement) -> bool:
    """A line: an element with inline content only (no block inside it)."""
    return all(_is_inline(node) or node.tag == "br" for node in element.iterdescendants())


def _outside_links(element: lxml_html.HtmlElement) -> str:
    """The text of `element` that is no link text, whitespace collapsed."""
    copy = copy_element(element)
    for link in list(copy.iter("a")):
        _remove_keeping_tail(link)
    return " ".join(copy.text_content().split())


def reads_as_sentence(element: lxml_html.HtmlElement) -> bool:
    """A line whose own words (outside its links) end a sentence (``...에 담겼다.``,
    ``...가 만났다.``): article text that cites or links something, never a box of
    links (a related headline's own ``다`` is link text and does not count)."""
    own = _outside_links(element)
    return bool(re.search(r"\w", own)) and bool(_SENTENCE.search(own))


def _holds_sentence(element: lxml_html.HtmlElement) -> bool:
    """Whether `element` is, or holds, a line of article text: a line that reads as
    a sentence and is no usage note."""
    lines = (
        [element]
        if _is_leaf(element)
        else [e for e in element.iter(*_LINES) if isinstance(e.tag, str) and _is_leaf(e)]
    )
    return any(reads_as_sentence(line) and not _is_notice(_text(line)) for line in lines)


def _named_download(element: lxml_html.HtmlElement) -> bool:
    words = {w.lower() for name in _names(element) for w in re.split(r"[-_]", name) if w}
    return bool(words & _DOWNLOAD_WORDS)


def is_link_line(element: lxml_html.HtmlElement) -> bool:
    """A block that is one link and little else (an item of a list of headlines)."""
    return (
        element.tag in _LINES
        and len(_links(element)) == 1
        and link_density(element) >= LINK_LINE_DENSITY
        and not reads_as_sentence(element)
    )


def _is_notice(text: str) -> bool:
    """A line worded as a usage or rights notice (`_RIGHTS_NOTICE`) that does not
    report one: a sign inside a sentence ending ``다.`` (``...ⓒ 표시가 붙은 사진을
    게재했다”고 주장했다.``) is article text; the permission form is the exception,
    since a notice granting use says ``...사용하실 수 있습니다.`` itself."""
    if not text or len(text) > NOTE_MAX_CHARACTERS or not _RIGHTS_NOTICE.search(text):
        return False
    return not _REPORTED.search(text) or bool(_PERMISSION.search(text))


def furniture_kind(element: lxml_html.HtmlElement) -> str | None:
    """The kind of furniture `element` is by its structure, or None. A line that
    reads as a sentence (`reads_as_sentence`) is never a box, and a block that holds
    one is never a named download box: article text citing a file or linking two
    names stays."""
    if not isinstance(element.tag, str) or _in_table(element):
        return None
    text = _text(element)
    links = _links(element)
    leaf = _is_leaf(element)
    sentence = leaf and reads_as_sentence(element)
    if (element.tag in _BOXES or element.tag in _LINES) and not sentence:
        if _named_download(element) and not _holds_sentence(element):
            return "download box"
        file_links = [a for a in links if _is_file_link(a)]
        if file_links and link_density(element) >= 0.5:
            return "download box"
    if element.tag in {"ul", "ol"}:
        items = [li for li in element if isinstance(li.tag, str) and li.tag == "li"]
        if (
            items
            and all(
                _links(li) and link_density(li) >= LINK_ITEM_DENSITY and not reads_as_sentence(li)
                for li in items
            )
            and link_density(element) >= LINK_BOX_DENSITY
        ):
            return "list of headlines"
    if (
        element.tag in _BOXES
        and not sentence
        and len(links) >= 2
        and link_density(element) >= LINK_BOX_DENSITY
    ):
        return "box of links"
    # A note is a line: a wrapper holding one is never removed whole (the article's
    # paragraphs may sit beside it).
    if leaf and (element.tag in _LINES or element.tag in _BOXES) and _is_notice(text):
        return "usage note"
    return None


def is_heading(element: lxml_html.HtmlElement) -> bool:
    """A heading tag, or a short line that reads as a title: all bold, or without
    a sentence ending (``관련기사``, ``▶ 보도자료 다운로드``)."""
    if not isinstance(element.tag, str) or _in_table(element):
        return False
    text = _text(element)
    if not text or len(text) > HEADING_MAX_CHARACTERS:
        return False
    if element.tag in _HEADINGS:
        return True
    if element.tag not in _LINES or _links(element):
        return False
    bold = "".join(_text(b) for b in element.iter("b", "strong"))
    return bold.replace(" ", "") == text.replace(" ", "") or not _SENTENCE_END.search(text)


def prune_furniture(root: lxml_html.HtmlElement) -> list[tuple[str, str]]:
    """Remove the furniture blocks inside `root` (never `root` itself), and the
    heading right before a removed box; ``(kind, text)`` of each block removed, in
    document order."""
    removed: list[tuple[str, lxml_html.HtmlElement]] = []
    gone: set[lxml_html.HtmlElement] = set()

    def mark(kind: str, element: lxml_html.HtmlElement) -> None:
        removed.append((kind, element))
        gone.add(element)

    for element in _blocks(root, gone):
        kind = furniture_kind(element)
        if kind is not None:
            mark(kind, element)
    # Runs of two or more consecutive one-link blocks: a list of headlines spelt as
    # paragraphs.
    for parent in [root, *root.iterdescendants()]:
        if parent in gone or any(a in gone for a in parent.iterancestors()):
            continue
        run: list[lxml_html.HtmlElement] = []
        for child in [*_element_children(parent), None]:
            if child is not None and child not in gone and is_link_line(child):
                run.append(child)
                continue
            if len(run) >= 2:
                for line in run:
                    mark("list of headlines", line)
            run = []
    # A heading right before a removed box (skipping other removed blocks, but not
    # past a heading already taken) goes too.
    headings: set[lxml_html.HtmlElement] = set()
    for kind, element in list(removed):
        if kind == "usage note":
            continue
        previous = element.getprevious()
        while previous is not None and (
            not isinstance(previous.tag, str) or (previous in gone and previous not in headings)
        ):
            previous = previous.getprevious()
        if previous is not None and previous not in gone and is_heading(previous):
            mark("heading over links", previous)
            headings.add(previous)
    order = {e: i for i, e in enumerate(root.iter())}
    result = []
    for kind, element in sorted(removed, key=lambda pair: order.get(pair[1], 0)):
        result.append((kind, _text(element)))
        parent = element.getparent()
        if parent is not None:
            _remove_keeping_tail(element)
    return result


def _element_children(parent: lxml_html.HtmlElement) -> Iterator[lxml_html.HtmlElement]:
    return (c for c in parent if isinstance(c.tag, str))


def _blocks(
    root: lxml_html.HtmlElement, gone: set[lxml_html.HtmlElement]
) -> Iterator[lxml_html.HtmlElement]:
    """Descendants of `root` top-down, skipping those inside a block already marked."""
    stack = list(reversed(list(_element_children(root))))
    while stack:
        element = stack.pop()
        yield element
        if element not in gone:
            stack.extend(reversed(list(_element_children(element))))


def _remove_keeping_tail(element: lxml_html.HtmlElement) -> None:
    """Remove `element` but keep the text after it (it belongs to the parent)."""
    parent = element.getparent()
    if parent is None:
        return
    tail = element.tail
    previous = element.getprevious()
    if _has_text(tail):
        if previous is not None:
            previous.tail = (previous.tail or "") + tail
        else:
            parent.text = (parent.text or "") + tail
    parent.remove(element)


def prepare(container: lxml_html.HtmlElement) -> lxml_html.HtmlElement:
    """`container` (a copy the caller owns) without subtitle elements, with its loose
    text runs as paragraphs and its furniture blocks pruned; returned for chaining."""
    for element in subtitle_elements(container):
        _remove_keeping_tail(element)
    paragraphs_from_breaks(container)
    prune_furniture(container)
    return container
