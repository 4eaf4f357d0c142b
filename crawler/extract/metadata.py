"""Metadata signals every page may carry: JSON-LD, Open Graph / ``article:*`` metas,
``<link rel=canonical>``, the document language.

`Signals` reads them once from a parsed document; site modules ask it for values
in their own order of precedence and record which signal answered (`Pick`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from lxml import html as lxml_html

T = TypeVar("T")

ARTICLE_TYPES = frozenset(
    {"Article", "NewsArticle", "BlogPosting", "ReportageNewsArticle", "AnalysisNewsArticle"}
)


@dataclass(frozen=True, slots=True)
class Pick(Generic[T]):
    """A field value and the name of the signal it came from."""

    value: T
    source: str


def first(*candidates: tuple[str, Callable[[], T | None]]) -> Pick[T] | None:
    """Try ``(source, getter)`` pairs in order; the first non-empty value wins."""
    for source, getter in candidates:
        value = getter()
        if value:
            return Pick(value, source)
    return None


@dataclass(slots=True)
class Signals:
    """Metadata of one HTML document, read once."""

    metas: dict[str, list[str]] = field(default_factory=dict)
    json_ld: list[dict[str, Any]] = field(default_factory=list)
    canonical: str | None = None
    language: str | None = None
    html_title: str | None = None

    @classmethod
    def from_document(cls, document: lxml_html.HtmlElement) -> Signals:
        signals = cls()
        for meta in document.iter("meta"):
            key = meta.get("property") or meta.get("name") or meta.get("itemprop")
            content = meta.get("content")
            if key and content is not None and content.strip():
                signals.metas.setdefault(key.strip().lower(), []).append(content.strip())
        for script in document.iter("script"):
            if (script.get("type") or "").strip().lower() == "application/ld+json":
                signals.json_ld.extend(_json_ld_objects(script.text or ""))
        for link in document.iter("link"):
            if "canonical" in (link.get("rel") or "").lower().split() and link.get("href"):
                signals.canonical = link.get("href", "").strip()
                break
        root_language = document.get("lang")
        signals.language = root_language.strip() if root_language else None
        title = document.find(".//title")
        signals.html_title = title.text_content().strip() if title is not None else None
        return signals

    def meta(self, key: str) -> str | None:
        values = self.metas.get(key.lower())
        return values[0] if values else None

    def meta_all(self, key: str) -> list[str]:
        return list(self.metas.get(key.lower(), []))

    def article_ld(self) -> dict[str, Any] | None:
        """The first JSON-LD object whose ``@type`` is an article type."""
        for obj in self.json_ld:
            types = obj.get("@type")
            type_names = types if isinstance(types, list) else [types]
            if any(name in ARTICLE_TYPES for name in type_names):
                return obj
        return None

    def ld(self, key: str) -> Any:
        article = self.article_ld()
        return article.get(key) if article else None

    def ld_text(self, key: str) -> str | None:
        value = self.ld(key)
        if isinstance(value, list):
            value = value[0] if value else None
        if isinstance(value, dict):
            value = value.get("name")
        return value.strip() if isinstance(value, str) and value.strip() else None

    def ld_names(self, key: str) -> list[str]:
        """Names from a JSON-LD person/list field (``author``, ``keywords``...)."""
        value = self.ld(key)
        if value is None:
            return []
        items = value if isinstance(value, list) else [value]
        names: list[str] = []
        for item in items:
            if isinstance(item, dict):
                item = item.get("name")
            if isinstance(item, str):
                names.extend(part.strip() for part in item.split(",") if part.strip())
        return names

    def is_article(self) -> bool:
        return self.article_ld() is not None or (self.meta("og:type") or "") == "article"


def _json_ld_objects(text: str) -> Iterator[dict[str, Any]]:
    try:
        data = json.loads(text)
    except ValueError:
        # Broken JSON-LD is common; it only costs us one signal.
        return
    yield from _flatten(data)


def _flatten(data: Any) -> Iterator[dict[str, Any]]:
    if isinstance(data, list):
        for item in data:
            yield from _flatten(item)
    elif isinstance(data, dict):
        if "@graph" in data:
            yield from _flatten(data["@graph"])
        else:
            yield data


def unique(values: Iterable[str]) -> tuple[str, ...]:
    """Values in first-seen order without repeats or empties."""
    seen: dict[str, None] = {}
    for value in values:
        value = " ".join(value.split())
        if value:
            seen.setdefault(value, None)
    return tuple(seen)
