"""Raw capture in WARC files, the archive rebuilt from them, and re-extraction.

Real crawls capture into a temporary WARC folder; the archive is then deleted
and rebuilt by replaying the WARC files, run by run, into a fresh database."""

from __future__ import annotations

import dataclasses
import gzip
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from news_archive.crawler import reextract as reextract_module
from news_archive.crawler.sites.maeil_ilbo import MaeilIlbo
from news_archive.storage.archive import Archive
from tests.conftest import BACKENDS, fresh_database
from tests.crawl.crawling import SEEDS, crawl, snapshot

ALWAYS_DUE = ("-s", "REVISIT_SCHEDULE=*=0s")
MAEIL = "https://www.m-i.kr/news/articleView.html?idxno={}"
SPIDERS = ("skt_insight", "maeil_ilbo")


def _rows(url: str, query: str) -> list[tuple[Any, ...]]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(query))]
    finally:
        engine.dispose()


def _content(url: str) -> dict[str, Any]:
    """The archive's content, without the times and ids that differ between builds."""
    return {
        "articles": _rows(
            url,
            "SELECT url, site, title, subtitle, author, published_at, "
            "modified_at, section, body, content_hash FROM articles ORDER BY url",
        ),
        "versions": _rows(
            url,
            "SELECT a.url, v.version, v.content_hash, v.title "
            "FROM article_versions v JOIN articles a ON a.id = v.article_id "
            "ORDER BY a.url, v.version",
        ),
        "tags": _rows(
            url,
            "SELECT a.url, t.position, t.tag FROM article_tags t "
            "JOIN articles a ON a.id = t.article_id ORDER BY 1, 2",
        ),
        "images": _rows(
            url,
            "SELECT a.url, i.position, i.url, i.caption, i.alt "
            "FROM article_images i JOIN articles a ON a.id = i.article_id "
            "ORDER BY 1, 2",
        ),
        "aliases": _rows(url, "SELECT url, canonical_url FROM url_aliases ORDER BY url"),
    }


@pytest.fixture(
    scope="module",
    params=BACKENDS,
)
def captured(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path]]:
    """Day 1 and day 2 of both sites crawled with capture on: (database URL, WARC folder)."""
    directory = tmp_path_factory.mktemp("capture")
    warc = directory / "warc"
    with fresh_database(request.param, directory) as url:
        for day in ("", "_day2"):
            for spider in SPIDERS:
                crawl(spider, SEEDS / f"{spider}{day}", url, *ALWAYS_DUE, warc_dir=warc)
        yield url, warc


def reextract_counts(database_url: str, warc: Path, **options: Any) -> dict[str, int]:
    archive = Archive.open(database_url, migrate=False)
    try:
        return reextract_module.reextract(archive, warc, **options)
    finally:
        archive.close()


def news_archive_reextract(database_url: str, warc: Path) -> subprocess.CompletedProcess[str]:
    """The installed ``news-archive reextract --json`` as a user runs it."""
    command = [str(Path(sys.executable).parent / "news-archive"), "reextract"]
    command += ["--database-url", database_url, "--warc-dir", str(warc), "--no-progress", "--json"]
    return subprocess.run(command, capture_output=True, text=True, check=False)


def test_every_response_is_captured_and_indexed(captured: tuple[str, Path]) -> None:
    url, warc = captured
    runs = sorted(p for p in warc.iterdir() if p.is_dir())
    assert len(runs) == 4 and all(list(run.glob("*.warc.gz")) for run in runs)
    statuses = {status for (status,) in _rows(url, "SELECT DISTINCT status FROM captures")}
    assert {200, 301, 304, 404, 500} <= statuses
    files = subprocess.run(
        [str(Path(sys.executable).parent / "warcio"), "check", *map(str, warc.rglob("*.warc.gz"))],
        capture_output=True,
        text=True,
        check=False,
    )
    assert files.returncode == 0, files.stdout + files.stderr
    # each stored version was produced by a capture that points at it
    unlinked = _rows(
        url,
        "SELECT count(*) FROM article_versions v WHERE NOT EXISTS "
        "(SELECT 1 FROM captures c WHERE c.article_version_id = v.id)",
    )
    assert unlinked == [(0,)]


def test_identical_payloads_are_written_once(captured: tuple[str, Path]) -> None:
    url, _ = captured
    # the 500 is answered three times on day 1 (Scrapy retries): one response, two
    # revisits; on day 2 it is not due again yet (5xx: an hour)
    rows = _rows(
        url,
        "SELECT record_type, count(*) FROM captures WHERE url = "
        f"'{MAEIL.format(800107)}' AND status = 500 GROUP BY record_type ORDER BY 1",
    )
    assert rows == [("response", 1), ("revisit", 2)]
    # no payload is written in full twice, across runs too
    duplicates = _rows(
        url,
        "SELECT payload_digest, count(*) FROM captures "
        "WHERE record_type = 'response' GROUP BY payload_digest HAVING count(*) > 1",
    )
    assert duplicates == []


def test_the_archive_rebuilt_from_warc_files_equals_the_original(
    captured: tuple[str, Path], tmp_path: Path
) -> None:
    url, warc = captured
    backend = "postgres" if url.startswith("postgresql") else "sqlite"
    with fresh_database(backend, tmp_path) as rebuilt:
        # replay each captured run, in the order it ran
        for run in sorted((p for p in warc.iterdir() if p.is_dir()), key=lambda p: p.name[-22:]):
            spider = next(name for name in SPIDERS if run.name.startswith(name))
            crawl(spider, run, rebuilt, *ALWAYS_DUE)
        assert _content(rebuilt) == _content(url)
        assert snapshot(rebuilt).versions == snapshot(url).versions


def test_capture_can_be_switched_off(sqlite_url: str, tmp_path: Path) -> None:
    crawl(
        "maeil_ilbo",
        SEEDS / "maeil_ilbo",
        sqlite_url,
        "-s",
        "WARC_ENABLED=False",
        "-s",
        f"WARC_DIR={tmp_path / 'warc'}",
    )
    assert _rows(sqlite_url, "SELECT count(*) FROM captures") == [(0,)]
    assert not (tmp_path / "warc").exists()


def test_reextraction_versions_exactly_the_changed_articles_and_is_idempotent(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    warc = tmp_path / "warc"
    for spider in SPIDERS:
        crawl(spider, SEEDS / spider, sqlite_url, warc_dir=warc)
    first = reextract_counts(sqlite_url, warc, progress=False, workers=2)
    assert first == {"targets": 11, "unchanged": 11}
    # A "parser fix" for 매일일보: a closing quote line becomes furniture. It runs in
    # this process (workers=1), where the patched class is the one in use.
    furniture = MaeilIlbo.furniture
    prefixes = (*furniture.prefixes, "삼성전자 관계자는")
    monkeypatch.setattr(MaeilIlbo, "furniture", dataclasses.replace(furniture, prefixes=prefixes))
    changed = reextract_counts(sqlite_url, warc, progress=False, workers=1)
    assert changed == {"targets": 11, "changed": 1, "unchanged": 10}
    notes = _rows(
        sqlite_url,
        "SELECT a.url, v.version, v.note FROM article_versions v "
        "JOIN articles a ON a.id = v.article_id WHERE v.note IS NOT NULL",
    )
    assert notes == [(MAEIL.format(800101), 2, "re-extraction")]
    again = reextract_counts(sqlite_url, warc, progress=False, workers=1)
    assert again == {"targets": 11, "unchanged": 11}


def test_reextraction_can_be_limited(sqlite_url: str, tmp_path: Path) -> None:
    warc = tmp_path / "warc"
    for spider in SPIDERS:
        crawl(spider, SEEDS / spider, sqlite_url, warc_dir=warc)
    by_site = reextract_counts(sqlite_url, warc, site="maeil_ilbo", progress=False)
    assert by_site["targets"] == 5
    by_url = reextract_counts(sqlite_url, warc, url=MAEIL.format(714398), progress=False)
    assert by_url["targets"] == 1
    with pytest.raises(KeyError, match="unknown site"):
        reextract_counts(sqlite_url, warc, site="nope", progress=False)


def test_warc_files_rotate_by_size_and_replay_across_files(sqlite_url: str, tmp_path: Path) -> None:
    warc = tmp_path / "warc"
    crawl(
        "maeil_ilbo", SEEDS / "maeil_ilbo", sqlite_url, "-s", "WARC_MAX_BYTES=20000", warc_dir=warc
    )
    (run,) = [p for p in warc.iterdir() if p.is_dir()]
    files = sorted(run.glob("*.warc.gz"))
    assert len(files) >= 4
    assert all(f.stat().st_size < 20000 + 40000 for f in files)  # one record past the limit
    indexed = {name for (name,) in _rows(sqlite_url, "SELECT DISTINCT warc_file FROM captures")}
    assert indexed == {f"{run.name}/{f.name}" for f in files}
    rebuilt = f"sqlite:///{tmp_path / 'rebuilt.db'}"
    crawl("maeil_ilbo", run, rebuilt)
    assert _content(rebuilt) == _content(sqlite_url)


def test_reextract_command(sqlite_url: str, tmp_path: Path) -> None:
    warc = tmp_path / "warc"
    crawl("maeil_ilbo", SEEDS / "maeil_ilbo", sqlite_url, warc_dir=warc)
    command = [
        str(Path(sys.executable).parent / "news-archive"),
        "reextract",
        "--database-url",
        sqlite_url,
        "--no-progress",
        "--json",
    ]
    done = subprocess.run(
        [*command, "--warc-dir", str(warc), "--site", "maeil_ilbo", "--since", "2026-01-01"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"targets": 4, "unchanged": 4}
    missing = subprocess.run(
        [*command, "--warc-dir", str(tmp_path / "nowhere")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert missing.returncode == 1 and "no WARC folder" in missing.stderr
    unknown = subprocess.run(
        [*command, "--warc-dir", str(warc), "--site", "nope"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert unknown.returncode == 2 and "unknown site" in unknown.stderr


def _gzip_encoded_copy(seed: Path, target: Path) -> Path:
    """A replay directory serving `seed` as live servers answer Scrapy: every body
    gzip-compressed (mtime 0, so equal pages stay equal bytes) with
    ``Content-Encoding: gzip``."""
    target.mkdir(parents=True)
    lines = []
    for line in (seed / "manifest.jsonl").read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        if entry.get("file"):
            encoded = target / entry["file"]
            encoded.parent.mkdir(parents=True, exist_ok=True)
            encoded.write_bytes(gzip.compress((seed / entry["file"]).read_bytes(), mtime=0))
            entry["headers"] = {**entry.get("headers", {}), "Content-Encoding": "gzip"}
        lines.append(json.dumps(entry, ensure_ascii=False))
    (target / "manifest.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return target


def test_reextract_reads_revisits_and_gzip_encoded_captures(
    sqlite_url: str, tmp_path: Path
) -> None:
    """Day 1 served gzip-encoded, then day 2 crawled in full: unchanged pages are
    revisit records, and every page's payload is gzip on the wire. Re-extraction
    must read them all back."""
    warc = tmp_path / "warc"
    for day in ("", "_day2"):
        seed = _gzip_encoded_copy(SEEDS / f"maeil_ilbo{day}", tmp_path / f"gzip{day}")
        crawl("maeil_ilbo", seed, sqlite_url, *ALWAYS_DUE, "-s", "INCREMENTAL=False", warc_dir=warc)
    revisits = _rows(
        sqlite_url,
        "SELECT count(*) FROM captures c JOIN article_versions v "
        "ON v.id = c.article_version_id WHERE c.record_type = 'revisit'",
    )
    assert revisits[0][0] > 0  # the case under test: articles whose newest capture is a revisit
    done = news_archive_reextract(sqlite_url, warc)
    assert (done.returncode, done.stderr) == (0, "")
    counts = json.loads(done.stdout)
    articles = _rows(sqlite_url, "SELECT count(*) FROM articles")[0][0]
    assert counts == {"targets": articles, "unchanged": articles}


def test_reextract_reports_each_article_it_could_not_read_and_fails(
    sqlite_url: str, tmp_path: Path
) -> None:
    warc = tmp_path / "warc"
    crawl("maeil_ilbo", SEEDS / "maeil_ilbo", sqlite_url, warc_dir=warc)
    # cut the WARC file in the middle of the last article's record (a crash mid-write)
    ((warc_file, offset, length, article_url),) = _rows(
        sqlite_url,
        "SELECT c.warc_file, c.offset, c.length, a.url FROM captures c "
        "JOIN article_versions v ON v.id = c.article_version_id "
        "JOIN articles a ON a.id = v.article_id ORDER BY c.offset DESC LIMIT 1",
    )
    path = warc / warc_file
    path.write_bytes(path.read_bytes()[: offset + length // 2])
    done = news_archive_reextract(sqlite_url, warc)
    assert done.returncode == 3, done.stderr
    assert json.loads(done.stdout) == {
        "targets": 5,
        "unchanged": 4,
        "unusable": 1,
        "unusable/unreadable": 1,
    }
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"news-archive: not re-extracted: {article_url}: unusable/unreadable: ")
    assert "gzip member cut short" in line
