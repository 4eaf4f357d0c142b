"""The house's floors: no import runs back up.

    news_archive.vocabulary  the ground floor: imports nothing of the project
    news_archive.storage     speaks SQL; imports the vocabulary only
    news_archive.crawler     Scrapy; reaches the database through storage only
    news_archive.cli         the top floor

Read from the source with `ast`, so a lazy import inside a function counts too.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.crawl.crawling import ROOT


def _imports(folder: Path) -> Iterator[tuple[Path, str]]:
    for path in sorted(folder.rglob("*.py")) if folder.is_dir() else [folder]:
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                yield path, node.module
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    yield path, alias.name


def _offending(folder: str, forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{path.relative_to(ROOT)}: {module}"
        for path, module in _imports(ROOT / folder)
        if any(module == name or module.startswith(name + ".") for name in forbidden)
    ]


def test_the_vocabulary_imports_nothing_of_the_project() -> None:
    assert _offending("archive/vocabulary.py", ("news_archive", "tests")) == []


@pytest.mark.parametrize(
    ("folder", "forbidden"),
    [
        ("storage", ("news_archive.crawler", "news_archive.cli", "scrapy")),
        ("migrations", ("news_archive.crawler", "news_archive.cli", "scrapy")),
        ("crawler", ("news_archive.cli",)),
    ],
)
def test_no_import_runs_back_up(folder: str, forbidden: tuple[str, ...]) -> None:
    assert _offending(folder, forbidden) == []
