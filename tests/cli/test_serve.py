"""``news-archive serve``: Datasette on a copy of the SQLite seed archive, started as
a user starts it (the installed script, a process on 127.0.0.1) and asked over HTTP:
a Korean two-syllable search on the views returns exactly the articles containing
the word, table pages cut the body, every table and view is described."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from news_archive.cli import serve
from news_archive.cli.serve import TRUNCATE_CELLS_HTML, metadata_for
from tests.conftest import SeedArchive
from tests.crawl.crawling import ROOT
from tests.test_cli import NEWS_ARCHIVE, Cli

# The served copy's file name: Datasette calls the database "news".
DATABASE = "news"
WORD = "협력"  # in 5 of the seed archive's 13 articles


@dataclass(frozen=True)
class Served:
    """Datasette serving `path` at `base` (``http://127.0.0.1:PORT``)."""

    base: str
    path: Path

    def get(self, path: str, **query: str) -> str:
        """The page at `path` (under the database, or the site's when it starts
        with a slash)."""
        url = f"{self.base}{path}" if path.startswith("/") else f"{self.base}/{DATABASE}/{path}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        with urllib.request.urlopen(url, timeout=10) as response:
            return str(response.read().decode("utf-8"))

    def json(self, path: str, **query: str) -> Any:
        return json.loads(self.get(path, **query))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_until_up(base: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"serve exited {process.returncode}: {log.read_text()}")
        try:
            with urllib.request.urlopen(f"{base}/-/versions.json", timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("Datasette did not answer within 60 s")


@pytest.fixture(scope="module")
def served(
    seed_archives: dict[str, SeedArchive], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """`news-archive serve` on a copy of the SQLite seed archive, on a free port of
    127.0.0.1."""
    source = make_url(seed_archives["sqlite"].url).database
    assert source is not None
    path = tmp_path_factory.mktemp("serve") / f"{DATABASE}.db"
    shutil.copyfile(source, path)
    port = _free_port()
    environment = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    log = path.with_suffix(".log")
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                str(NEWS_ARCHIVE),
                "--database-url",
                f"sqlite:///{path}",
                "serve",
                "--port",
                str(port),
            ],
            cwd=ROOT,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(base, process, log)
        yield Served(base, path)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _containing(path: Path, word: str) -> set[str]:
    with closing(sqlite3.connect(path)) as connection:
        rows = connection.execute(
            "SELECT url FROM articles WHERE instr(title, ?) > 0 OR instr(body, ?) > 0",
            (word, word),
        ).fetchall()
    return {url for (url,) in rows}


@pytest.mark.parametrize("view", ["current_articles", "articles"])
@pytest.mark.parametrize("word", [WORD, "카카오", "협"])
def test_a_korean_search_returns_exactly_its_articles(served: Served, view: str, word: str) -> None:
    """Two syllables (one index token), three and one (through the project's plugin,
    which compiles the query language for Datasette's search box)."""
    expected = _containing(served.path, word)
    everything = served.json(f"{view}.json", _shape="array", _col="url", _size="max")
    assert 0 < len(expected) < len(everything)  # a search that is ignored shows all
    found = served.json(f"{view}.json", _search=word, _shape="array", _col="url", _size="max")
    assert sorted(row["url"] for row in found) == sorted(expected)


def test_the_search_box_reads_phrases_or_and_exclusions(served: Served) -> None:
    def urls(query: str) -> set[str]:
        rows = served.json(
            "current_articles.json", _search=query, _shape="array", _col="url", _size="max"
        )
        return {row["url"] for row in rows}

    assert urls("SKT -카카오") == _containing(served.path, "SKT") - _containing(
        served.path, "카카오"
    )
    assert urls("카카오 OR 똠방각하") == _containing(served.path, "카카오") | _containing(
        served.path, "똠방각하"
    )
    assert urls('"') == set()


def test_the_body_is_cut_on_table_pages_and_whole_in_json(served: Served) -> None:
    page = served.get("current_articles", _size="max")
    cells = [
        html.unescape(cell)
        for cell in re.findall(r'<td class="col-body type-str">(.*?)</td>', page, re.DOTALL)
    ]
    bodies = served.json("current_articles.json", _shape="array", _col="body", _size="max")
    assert len(cells) == len(bodies)
    assert all(len(cell) <= TRUNCATE_CELLS_HTML + 1 for cell in cells)
    longest = max((row["body"] for row in bodies), key=len)
    assert len(longest) > 1000  # whole in JSON
    assert longest[:TRUNCATE_CELLS_HTML] + "…" in cells


def test_every_table_and_view_is_described_with_its_facets(served: Served) -> None:
    with closing(sqlite3.connect(served.path)) as connection:
        names = {
            name
            for (name,) in connection.execute(
                "SELECT name FROM sqlite_master WHERE type IN ('table', 'view')"
                " AND name NOT LIKE 'articles_fts%' AND name NOT LIKE 'articles_search%'"
            )
        }
    metadata = served.json("/-/metadata.json")
    tables = metadata["databases"][DATABASE]["tables"]
    assert {name for name, table in tables.items() if table.get("description")} == names
    facets = served.json("current_articles.json", _size="0")["facet_results"]
    assert {"site", "author", "section"} <= set(facets)
    assert {"site", "day"} <= set(served.json("daily_counts.json", _size="0")["facet_results"])


def test_the_metadata_names_the_served_file(tmp_path: Path) -> None:
    metadata = metadata_for(tmp_path / "my-archive.db")
    assert list(metadata["databases"]) == ["my-archive"]
    assert metadata["databases"]["my-archive"]["tables"]["current_articles"]["fts_pk"] == "id"


def test_postgresql_is_a_one_line_error(cli: Cli) -> None:
    result = cli.run("serve", database_url="postgresql+psycopg://postgres:secret@127.0.0.1/test")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "Datasette serves SQLite files" in result.stderr
    assert "secret" not in result.stderr


def test_without_datasette_a_one_line_error(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(serve, "datasette_installed", lambda: False)
    result = cli.run("serve", database_url=f"sqlite:///{tmp_path / 'archive.db'}")
    assert result.returncode == 1
    assert result.stderr == (
        "news-archive: error: Datasette is not installed: pip install 'news-archive[datasette]'\n"
    )
