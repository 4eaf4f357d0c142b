"""The fidelity report: how exactly extraction reproduces every golden page, beside
what trafilatura's defaults make of the same pages.

    python -m tests.fidelity            # the table, per site and over all pages
    python -m tests.fidelity --pages    # and one line per page
    python -m tests.fidelity --json     # the figures as JSON

Over every golden article page (`tests.golden.golden_cases`, rejections left out) it
measures, against the golden file:

- body token F1: the multiset of whitespace tokens of the extracted body against the
  golden body's (1.000 = the same words, as often);
- furniture lines: extracted body lines found nowhere in the golden body (a line that
  is part of a golden paragraph is not one: trafilatura may split paragraphs);
- title, authors and published date: exact equality. trafilatura reports a day, not a
  time: its date counts as right when it is the golden publication day in Korea time,
  which is generous to it; ours must be the exact instant.

trafilatura runs as a user would call it, with its defaults, on the decoded page:
``trafilatura.extract(text, url=url)`` for the body and
``trafilatura.bare_extraction(text, url=url, with_metadata=True)`` for the
metadata (its only non-default: without it there is no metadata at all).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import trafilatura

from news_archive.crawler.extract.decode import decode_html
from tests.golden import GoldenCase, as_json, expected_of, extract, golden_cases

KOREA = timezone(timedelta(hours=9))
EXTRACTORS = ("ours", "trafilatura")


@dataclass(frozen=True, slots=True)
class Measure:
    """One extractor on one page, against the page's golden file."""

    page: str
    site: str
    extractor: str
    body_f1: float
    furniture_lines: int
    title: bool
    authors: bool
    published: bool


def token_f1(extracted: str, golden: str) -> float:
    """F1 of the whitespace tokens of `extracted` against those of `golden`, as multisets."""
    got, want = Counter(extracted.split()), Counter(golden.split())
    common = sum((got & want).values())
    if not got and not want:
        return 1.0
    if common == 0:
        return 0.0
    precision, recall = common / sum(got.values()), common / sum(want.values())
    return 2 * precision * recall / (precision + recall)


def furniture_lines(extracted: str, golden: str) -> list[str]:
    """Lines of `extracted` that are no part of the golden body."""
    normalised = " ".join(golden.split())
    lines = (" ".join(line.split()) for line in extracted.splitlines())
    return [line for line in lines if line and line not in normalised]


def _names(raw: str | Sequence[str] | None) -> tuple[str, ...]:
    if not raw:
        return ()
    parts = raw.replace(";", ",").split(",") if isinstance(raw, str) else raw
    return tuple(" ".join(part.split()) for part in parts if part.strip())


def _golden_day(published_at: str) -> str:
    return datetime.fromisoformat(published_at).astimezone(KOREA).date().isoformat()


def measure_ours(case: GoldenCase, golden: dict[str, Any]) -> Measure:
    got = as_json(extract(case.page))
    body = got.get("body", "")
    return Measure(
        page=case.id,
        site=case.site,
        extractor="ours",
        body_f1=token_f1(body, golden["body"]),
        furniture_lines=len(furniture_lines(body, golden["body"])),
        title=got.get("title") == golden["title"],
        authors=tuple(got.get("authors") or ()) == tuple(golden["authors"]),
        published=got.get("published_at") == golden["published_at"],
    )


def measure_trafilatura(case: GoldenCase, golden: dict[str, Any]) -> Measure:
    text, _ = decode_html(case.page.path.read_bytes(), case.page.headers)
    body = trafilatura.extract(text, url=case.page.url) or ""
    document = trafilatura.bare_extraction(text, url=case.page.url, with_metadata=True)
    title = getattr(document, "title", None) if document is not None else None
    author = getattr(document, "author", None) if document is not None else None
    day = getattr(document, "date", None) if document is not None else None
    return Measure(
        page=case.id,
        site=case.site,
        extractor="trafilatura",
        body_f1=token_f1(body, golden["body"]),
        furniture_lines=len(furniture_lines(body, golden["body"])),
        title=" ".join((title or "").split()) == golden["title"],
        authors=_names(author) == tuple(golden["authors"]),
        published=(day or "")[:10] == _golden_day(golden["published_at"]),
    )


def measures(cases: Iterable[GoldenCase] | None = None) -> list[Measure]:
    """Both extractors on every golden article page."""
    results = []
    for case in golden_cases() if cases is None else cases:
        golden = expected_of(case)
        if golden is None or "rejected" in golden:
            continue
        results.append(measure_ours(case, golden))
        results.append(measure_trafilatura(case, golden))
    return results


@dataclass(frozen=True, slots=True)
class Summary:
    """One extractor over a group of pages."""

    group: str
    extractor: str
    pages: int
    body_f1_mean: float
    body_f1_min: float
    furniture_lines: int
    title: float
    authors: float
    published: float


def summarise(group: str, extractor: str, rows: Sequence[Measure]) -> Summary:
    count = len(rows)
    return Summary(
        group=group,
        extractor=extractor,
        pages=count,
        body_f1_mean=sum(r.body_f1 for r in rows) / count,
        body_f1_min=min(r.body_f1 for r in rows),
        furniture_lines=sum(r.furniture_lines for r in rows),
        title=sum(r.title for r in rows) / count,
        authors=sum(r.authors for r in rows) / count,
        published=sum(r.published for r in rows) / count,
    )


def summaries(rows: Sequence[Measure]) -> list[Summary]:
    """Per site, then over all pages, each extractor beside the other."""
    sites = sorted({r.site for r in rows})
    result = []
    for group in [*sites, "all"]:
        for extractor in EXTRACTORS:
            chosen = [r for r in rows if r.extractor == extractor and group in ("all", r.site)]
            if chosen:
                result.append(summarise(group, extractor, chosen))
    return result


def table(items: Sequence[Summary]) -> str:
    """A Markdown table of `items`."""
    lines = [
        "| pages | extractor | n | body F1 mean | body F1 min | furniture lines"
        " | title | authors | published |",
        "| --- | --- | --: | --: | --: | --: | --: | --: | --: |",
    ]
    for s in items:
        lines.append(
            f"| {s.group} | {s.extractor} | {s.pages} | {s.body_f1_mean:.3f} | {s.body_f1_min:.3f}"
            f" | {s.furniture_lines} | {s.title:.0%} | {s.authors:.0%} | {s.published:.0%} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--pages", action="store_true", help="also one line per page")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    rows = measures()
    items = summaries(rows)
    if args.json:
        data = {"summary": [asdict(s) for s in items]}
        if args.pages:
            data["pages"] = [asdict(r) for r in rows]
        print(json.dumps(data, ensure_ascii=False, indent=2))
        return 0
    print(table(items))
    if args.pages:
        print()
        for r in rows:
            flags = "".join(
                mark if ok else "-"
                for mark, ok in (("T", r.title), ("A", r.authors), ("P", r.published))
            )
            print(
                f"{r.page:60} {r.extractor:12} F1 {r.body_f1:.3f}"
                f" furniture {r.furniture_lines:2} {flags}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
