"""Golden files: the expected extraction of every fixture page, beside the page.

    python -m tests.golden              # write the missing ones
    python -m tests.golden --overwrite  # rewrite all (review the diff!)

Each replay directory under ``seeds/`` has a ``manifest.jsonl``; every 200
response under ``pages/`` is extracted with its site's module, exactly as the
spider would (but with a fixed ``fetched_at`` and no feed entry), and written to
``<page>.expected.json`` (sorted keys, ``ensure_ascii=False``, indent 2).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from news_archive.crawler.sites import SITES
from news_archive.vocabulary import Article, Rejection

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
FETCHED_AT = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class FixturePage:
    site: str
    url: str
    path: Path
    headers: dict[str, str]

    @property
    def expected_path(self) -> Path:
        return self.path.with_name(self.path.name + ".expected.json")

    @property
    def id(self) -> str:
        return str(self.path.relative_to(SEEDS))


def fixture_pages() -> Iterator[FixturePage]:
    """Every 200 HTML page under ``seeds/*/pages`` with the site its directory names."""
    for manifest in sorted(SEEDS.glob("*/manifest.jsonl")):
        site = next((name for name in SITES if manifest.parent.name.startswith(name)), None)
        # `*_changed` replays a site whose template changed: its pages are meant to
        # extract badly (the health checks must notice), so they have no golden files.
        if site is None or manifest.parent.name.endswith("_changed"):
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
            yield FixturePage(site, entry["url"], path, entry.get("headers") or {})


def extract(page: FixturePage) -> Article | Rejection:
    return SITES[page.site].extract(page.url, page.path.read_bytes(), page.headers, FETCHED_AT)


def as_json(result: Article | Rejection) -> dict[str, Any]:
    if isinstance(result, Rejection):
        return {"rejected": result.reason}
    return result.to_json()


def dump(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--overwrite", action="store_true", help="rewrite existing files")
    args = parser.parse_args(argv)
    written = kept = 0
    for page in fixture_pages():
        if page.expected_path.exists() and not args.overwrite:
            kept += 1
            continue
        text = dump(as_json(extract(page)))
        if not page.expected_path.exists() or page.expected_path.read_text("utf-8") != text:
            page.expected_path.write_text(text, encoding="utf-8")
            written += 1
            print(f"wrote {page.expected_path.relative_to(SEEDS)}")
    print(f"{written} written, {kept} kept")
    return 0


if __name__ == "__main__":
    sys.exit(main())
