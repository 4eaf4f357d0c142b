"""Golden files: the expected extraction of every distinct fixture page, beside it.

    python -m tests.golden              # write the missing ones
    python -m tests.golden --overwrite  # rewrite all (review the diff!)

Each replay directory under ``seeds/`` belongs to the site whose name it carries
(``<site>``, or ``<site>_<variant>`` such as ``maeil_ilbo_day2``): a declared site, or
one that ``seeds/sites.toml`` (the fixtures' ``SITES_FILE``) configures. It has a
``manifest.jsonl``; every 200 response under ``pages/`` is a fixture page. Pages
are keyed by content: the site, the URL, the headers and the body bytes decide the
extraction, so byte-identical copies (a day-2 page that did not change) are one
`GoldenCase`. Its golden file is ``<page>.expected.json`` beside the first copy
(sorted keys, ``ensure_ascii=False``, indent 2): the article as JSON, or
``{"rejected": <reason>}``. Extraction is run as the spider runs it, with a fixed
``fetched_at`` and no feed entry.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from news_archive.crawler.sites import SITES, Site, all_sites
from news_archive.vocabulary import Article, Rejection

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
FETCHED_AT = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)
# `<site>_changed` replays a site whose template changed: its pages are meant to
# extract badly (the health checks must notice), so they have no golden files.
NO_GOLDEN_VARIANTS = ("changed",)
# The configuration of the fixtures' configured sites (the SITES_FILE of their crawls).
SITES_FILE_NAME = "sites.toml"


def sites_of(seeds: Path = SEEDS) -> dict[str, Site]:
    """The sites of the fixtures under `seeds`: declared, plus those its
    ``sites.toml`` configures (when it has one)."""
    sites_file = seeds / SITES_FILE_NAME
    return all_sites(sites_file if sites_file.is_file() else None)


@dataclass(frozen=True, slots=True)
class FixturePage:
    """One page of a replay manifest: its site, URL, body file and headers."""

    site: str
    url: str
    path: Path
    headers: dict[str, str]
    seeds: Path = SEEDS

    @property
    def expected_path(self) -> Path:
        return self.path.with_name(self.path.name + ".expected.json")

    @property
    def id(self) -> str:
        return str(self.path.relative_to(self.seeds))

    @property
    def key(self) -> str:
        """SHA-256 (hex) of everything extraction reads: site, URL, headers, body."""
        digest = hashlib.sha256()
        for part in (self.site, self.url, json.dumps(self.headers, sort_keys=True)):
            digest.update(part.encode("utf-8") + b"\0")
        digest.update(self.path.read_bytes())
        return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class GoldenCase:
    """A distinct fixture page: `page`, whose golden file is the case's, and its
    byte-identical `copies` (same site, URL and headers) in other directories."""

    page: FixturePage
    copies: tuple[FixturePage, ...] = ()

    @property
    def site(self) -> str:
        return self.page.site

    @property
    def id(self) -> str:
        return self.page.id

    @property
    def expected_path(self) -> Path:
        return self.page.expected_path


def site_of_directory(name: str, sites: Mapping[str, Site] | None = None) -> str | None:
    """The site a replay directory belongs to (the longest site name it is, or starts
    with followed by ``_``), or None; `sites` default to the declared ones."""
    names = [
        s for s in (SITES if sites is None else sites) if name == s or name.startswith(s + "_")
    ]
    return max(names, key=len, default=None)


def fixture_pages(seeds: Path = SEEDS) -> Iterator[FixturePage]:
    """Every 200 page under ``seeds/*/pages`` of a site (`sites_of`), in directory and
    manifest order; directories of no known site are skipped."""
    sites = sites_of(seeds)
    for manifest in sorted(seeds.glob("*/manifest.jsonl")):
        directory = manifest.parent.name
        site = site_of_directory(directory, sites)
        if site is None or directory.removeprefix(site + "_") in NO_GOLDEN_VARIANTS:
            continue
        seen: set[Path] = set()
        for line in manifest.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            entry = json.loads(line)
            path = manifest.parent / entry.get("file", "")
            if (
                entry.get("status", 200) != 200
                or path.parent.name != "pages"
                or path in seen
                or not path.is_file()
            ):
                continue
            seen.add(path)
            yield FixturePage(site, entry["url"], path, entry.get("headers") or {}, seeds)


def golden_cases(seeds: Path = SEEDS) -> list[GoldenCase]:
    """The fixture pages grouped by `FixturePage.key`, first copy first."""
    groups: dict[str, list[FixturePage]] = {}
    for page in fixture_pages(seeds):
        groups.setdefault(page.key, []).append(page)
    return [GoldenCase(pages[0], tuple(pages[1:])) for pages in groups.values()]


def extract(page: FixturePage) -> Article | Rejection:
    """The page extracted by its site, as the spider would."""
    site = sites_of(page.seeds)[page.site]
    return site.extract(page.url, page.path.read_bytes(), page.headers, FETCHED_AT)


def as_json(result: Article | Rejection) -> dict[str, Any]:
    if isinstance(result, Rejection):
        return {"rejected": result.reason}
    return result.to_json()


def dump(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def expected_of(case: GoldenCase) -> dict[str, Any] | None:
    """The case's golden file as JSON, or None when it has none yet."""
    if not case.expected_path.exists():
        return None
    return json.loads(case.expected_path.read_text("utf-8"))


def regenerate(seeds: Path = SEEDS, *, overwrite: bool = False) -> list[Path]:
    """Write the golden file of every case that has none (all with `overwrite`);
    the files written or changed."""
    written = []
    for case in golden_cases(seeds):
        if case.expected_path.exists() and not overwrite:
            continue
        text = dump(as_json(extract(case.page)))
        if not case.expected_path.exists() or case.expected_path.read_text("utf-8") != text:
            case.expected_path.write_text(text, encoding="utf-8")
            written.append(case.expected_path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--overwrite", action="store_true", help="rewrite existing files")
    args = parser.parse_args(argv)
    written = regenerate(overwrite=args.overwrite)
    for path in written:
        print(f"wrote {path.relative_to(SEEDS)}")
    copies = [c for case in golden_cases() for c in case.copies if c.expected_path.exists()]
    for copy in copies:
        print(
            f"duplicate golden file (its page is a copy): {copy.expected_path.relative_to(SEEDS)}"
        )
    print(f"{len(written)} written, {len(golden_cases()) - len(written)} kept")
    return 1 if copies else 0


if __name__ == "__main__":
    sys.exit(main())
