"""The house's floors: no import runs back up.

    news_archive.vocabulary  the ground floor (with news_archive.zones): imports nothing
                             of the project
    news_archive.storage     speaks SQL; imports the vocabulary only
    news_archive.crawler     Scrapy; reaches the database through storage only; inside it,
                             extract/ (pure extraction) < cms/ (CMS profiles) < sites/
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


@pytest.mark.parametrize("module", ["archive/vocabulary.py", "archive/zones.py"])
def test_the_ground_floor_imports_nothing_of_the_project(module: str) -> None:
    assert _offending(module, ("news_archive", "tests")) == []


@pytest.mark.parametrize(
    ("folder", "forbidden"),
    [
        ("storage", ("news_archive.crawler", "news_archive.cli", "scrapy")),
        ("migrations", ("news_archive.crawler", "news_archive.cli", "scrapy")),
        ("crawler", ("news_archive.cli",)),
        # Extraction is pure and generic: no Scrapy, no profile, no site.
        (
            "crawler/extract",
            (
                "scrapy",
                "news_archive.crawler.cms",
                "news_archive.crawler.sites",
                "news_archive.crawler.spiders",
            ),
        ),
        # A profile knows a CMS, never a site of it.
        ("crawler/cms", ("scrapy", "news_archive.crawler.sites", "news_archive.crawler.spiders")),
    ],
)
def test_no_import_runs_back_up(folder: str, forbidden: tuple[str, ...]) -> None:
    assert _offending(folder, forbidden) == []


# Calls that send their first argument to the database as SQL text.
_RAW_SQL_CALLS = ("text", "exec_driver_sql", "execute")


def _raw_sql_built_from_values(folder: Path) -> Iterator[tuple[Path, int]]:
    """Raw SQL whose text is not a literal: an f-string, a concatenation or a
    `%`/`.format` substitution is how a value ends up inside a statement."""
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if not (isinstance(node, ast.Call) and node.args):
                continue
            name = getattr(node.func, "attr", None) or getattr(node.func, "id", None)
            sql = node.args[0]
            built = isinstance(sql, ast.JoinedStr | ast.BinOp) or (
                isinstance(sql, ast.Call) and getattr(sql.func, "attr", None) == "format"
            )
            if name in _RAW_SQL_CALLS and built:
                yield path, node.lineno


@pytest.mark.parametrize("folder", ["storage", "migrations"])
def test_no_value_is_spliced_into_sql_text(folder: str) -> None:
    """Every value reaches the database as a bound parameter (the campaign found all
    SQL parameterised; this keeps it so)."""
    built = _raw_sql_built_from_values(ROOT / folder)
    assert [f"{path.relative_to(ROOT)}:{line}" for path, line in built] == []


def test_the_sql_text_check_sees_a_spliced_value(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text(
        'connection.execute(text(f"SELECT * FROM articles WHERE url = {url}"))\n'
        'connection.exec_driver_sql("SET x = " + value)\n'
        'connection.execute(text("SELECT 1 WHERE a = :a"), {"a": 1})\n',
        "utf-8",
    )
    assert sorted(line for _, line in _raw_sql_built_from_values(tmp_path)) == [1, 2]
