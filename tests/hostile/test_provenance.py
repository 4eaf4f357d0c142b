"""Provenance: every archived article can be traced to, and extracted again from, the
WARC record it came from, even when the database went away during the crawl; and a
WARC file cut short is an error on every path that reads it, never a short page.

Failures 4 and 10 of the campaign: after a 20 s PostgreSQL outage 1,126 of 2,000
articles could not be re-extracted and ``reextract`` reported success; a truncated
WARC folder replayed silently.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from scrapy.utils.test import get_crawler
from sqlalchemy import create_engine, text

from bench.run import generate
from news_archive.crawler.middlewares.replay import ReplayMiddleware
from news_archive.crawler.warc import WarcArchive, WarcError
from tests.conftest import empty_postgres_database
from tests.crawl.crawling import ROOT, SEEDS, crawl, crawl_environment, snapshot, wait_until
from tests.crawl.test_capture import news_archive_reextract, reextract_counts
from tests.hostile.proxy import TcpProxy

ARTICLES = 120  # of 매일일보 in the generated replay directory
# Replay answers at once: without a small scraper backlog every page is fetched (and
# captured) in the first half second, before any outage can begin. Index batches of
# 10 rows, so that capture writes during the outage.
PACED = (
    "-s",
    "SCRAPER_SLOT_MAX_ACTIVE_SIZE=50000",
    "-s",
    "CONCURRENT_REQUESTS=2",
    "-s",
    "WARC_INDEX_BATCH_SIZE=10",
)


def _rows(database: str, query: str, **parameters: Any) -> list[tuple[Any, ...]]:
    engine = create_engine(database)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(query), parameters)]
    finally:
        engine.dispose()


def _reextract(url: str, warc: Path) -> dict[str, int]:
    return dict(reextract_counts(url, warc, progress=False, workers=1))


def _warc_bytes(warc: Path) -> int:
    return sum(path.stat().st_size for path in warc.rglob("*.warc.gz"))


# --- failure 4: a database outage during a capture crawl ---------------------------


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Crawl processes of the test, killed if it leaves them running."""
    processes: list[subprocess.Popen[bytes]] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.postgres
def test_an_outage_mid_crawl_leaves_every_article_linked_to_its_capture(
    postgres_url: str, tmp_path: Path, started: list[subprocess.Popen[bytes]]
) -> None:
    """PostgreSQL goes away (connections refused) for 3 s while a capture crawl of
    120 articles runs, then comes back: every article's 200 capture is linked to
    its version, and every article extracts again from the WARC files."""
    empty_postgres_database(postgres_url)
    generate(tmp_path / "corpus", 2 * ARTICLES)  # one replay directory per site
    warc = tmp_path / "warc"
    log = tmp_path / "crawl.log"
    with TcpProxy("127.0.0.1", 5432) as proxy, log.open("wb") as output:
        proxied = postgres_url.replace(":5432/", f":{proxy.port}/")
        env = {
            **os.environ,
            **crawl_environment(warc),
            "DATABASE_URL": proxied,
            "REPLAY_DIR": str(tmp_path / "corpus" / "maeil_ilbo"),
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "scrapy", "crawl", "maeil_ilbo", *PACED],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        started.append(process)
        # Mid-crawl: some article pages captured (about 10 kB each), most not yet.
        wait_until(lambda: _warc_bytes(warc) > 100_000 or process.poll() is not None, "captures")
        assert process.poll() is None, "the crawl ended before the outage: " + log.read_text()
        proxy.refuse()
        # The outage lasts until the capture index has met it, however loaded the machine.
        wait_until(
            lambda: (
                "Capture index unreachable" in log.read_text("utf-8", errors="replace")
                or process.poll() is not None
            ),
            "the capture index meeting the outage",
        )
        time.sleep(1)  # ...and a little longer, so that pages are captured meanwhile
        proxy.pass_through()
        process.wait(timeout=180)
    crawl_log = log.read_text("utf-8", errors="replace")
    articles = _rows(postgres_url, "SELECT count(*) FROM articles")[0][0]
    assert articles == ARTICLES, crawl_log[-3000:]
    unlinked = _rows(
        postgres_url,
        "SELECT a.url FROM articles a WHERE NOT EXISTS (SELECT 1 FROM captures c "
        "JOIN article_versions v ON v.id = c.article_version_id "
        "WHERE v.article_id = a.id AND c.status = 200)",
    )
    assert unlinked == []
    assert _reextract(postgres_url, warc) == {"targets": ARTICLES, "unchanged": ARTICLES}
    (stats,) = _rows(postgres_url, "SELECT stats FROM crawl_runs")[0]
    stats = stats if isinstance(stats, dict) else json.loads(stats)
    assert not [key for key in stats if key.startswith("archive/lost")], stats
    # the outage was met while capturing (else this test proves nothing)
    assert "Capture index unreachable" in crawl_log, crawl_log[-3000:]


# --- reextract lists and counts what it cannot use ---------------------------------


def test_reextract_lists_and_counts_every_article_it_cannot_use(
    sqlite_url: str, tmp_path: Path
) -> None:
    """An article with no capture linked, one whose WARC file is gone and one whose
    record is damaged: each a stderr line and a count, and the command fails."""
    warc = tmp_path / "warc"
    # one record a file, so that a file can go without taking the others along
    crawl("maeil_ilbo", SEEDS / "maeil_ilbo", sqlite_url, "-s", "WARC_MAX_BYTES=1", warc_dir=warc)
    targets = _rows(
        sqlite_url,
        'SELECT a.url, c.warc_file, c.id, c."offset" + c.length FROM captures c '
        "JOIN article_versions v ON v.id = c.article_version_id "
        "JOIN articles a ON a.id = v.article_id WHERE c.status = 200 ORDER BY a.url",
    )
    assert len(targets) == 5
    (unlinked, _, capture_id, _), (missing, missing_file, _, _), damaged_target = targets[:3]
    damaged, damaged_file, _, record_end = damaged_target
    engine = create_engine(sqlite_url)
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE captures SET article_version_id = NULL WHERE id = :id"), {"id": capture_id}
        )
    engine.dispose()
    (warc / missing_file).unlink()
    damaged_path = warc / damaged_file
    damaged_path.write_bytes(damaged_path.read_bytes()[: record_end - 3])  # in its gzip trailer

    done = news_archive_reextract(sqlite_url, warc)
    assert done.returncode == 3, done.stderr
    assert json.loads(done.stdout) == {
        "targets": 5,
        "unchanged": 2,
        "unusable": 3,
        "unusable/no_link": 1,
        "unusable/missing_file": 1,
        "unusable/unreadable": 1,
    }
    lines = sorted(done.stderr.splitlines())
    assert len(lines) == 3
    for url, reason in ((unlinked, "no_link"), (missing, "missing_file"), (damaged, "unreadable")):
        prefix = f"news-archive: not re-extracted: {url}: unusable/{reason}: "
        assert any(line.startswith(prefix) for line in lines), (prefix, lines)


# --- failure 10: a WARC file cut short ---------------------------------------------


@pytest.fixture(scope="module")
def captured(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A capture crawl of the 매일일보 seeds: its SQLite file and WARC folder."""
    directory = tmp_path_factory.mktemp("captured")
    url = f"sqlite:///{directory / 'archive.db'}"
    crawl("maeil_ilbo", SEEDS / "maeil_ilbo", url, warc_dir=directory / "warc")
    return directory, url


def _cut_in_content(member: bytes, keep: Callable[[bytes], int]) -> int:
    """How many bytes of gzip `member` to keep so that what they decompress to ends
    `keep(content)` bytes into the record (its WARC header, its payload ...)."""
    content = zlib.decompress(member, 16 + zlib.MAX_WBITS)
    wanted = keep(content)
    decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
    produced = 0
    for kept in range(len(member)):
        produced += len(decompressor.decompress(member[kept : kept + 1]))
        if produced >= wanted:
            return kept + 1
    raise AssertionError("never reached")


def _mid_header(content: bytes) -> int:
    return content.index(b"Content-Length") + 3  # in the WARC header's last line


def _before_target(content: bytes) -> int:
    return content.index(b"WARC-Target-URI")  # the WARC header without its URI


def _mid_payload(content: bytes) -> int:
    return content.index(b"\r\n\r\n", content.index(b"\r\n\r\n") + 4) + len(content) // 4


# Where the article's record is cut: (name, bytes of its member kept)
CUTS: dict[str, Callable[[bytes], int]] = {
    "before the target URI": lambda member: _cut_in_content(member, _before_target),
    "mid-header": lambda member: _cut_in_content(member, _mid_header),
    "mid-payload": lambda member: _cut_in_content(member, _mid_payload),
    "in the gzip trailer": lambda member: len(member) - 5,  # every byte decompressed
    "one byte short": lambda member: len(member) - 1,
}


@pytest.fixture(params=list(CUTS))
def cut(
    request: pytest.FixtureRequest, captured: tuple[Path, str], tmp_path: Path
) -> tuple[Path, str, str]:
    return _cut_copy(captured, tmp_path, request.param)


def _cut_copy(captured: tuple[Path, str], tmp_path: Path, where: str) -> tuple[Path, str, str]:
    """A copy of the captured WARC folder whose file is cut (`where`, a key of CUTS)
    inside the record of the last article written: (the folder, the database URL,
    that article's URL)."""
    directory, url = captured
    warc = tmp_path / "warc"
    shutil.copytree(directory / "warc", warc)
    ((warc_file, offset, length, article),) = _rows(
        url,
        'SELECT c.warc_file, c."offset", c.length, a.url FROM captures c '
        "JOIN article_versions v ON v.id = c.article_version_id "
        'JOIN articles a ON a.id = v.article_id ORDER BY c."offset" DESC LIMIT 1',
    )
    path = warc / warc_file
    data = path.read_bytes()
    kept = CUTS[where](data[offset : offset + length])
    assert 0 < kept < length
    path.write_bytes(data[: offset + kept])
    # reextract reads the database: a copy of its own
    shutil.copy(directory / "archive.db", tmp_path / "archive.db")
    return warc, f"sqlite:///{tmp_path / 'archive.db'}", article


def test_a_cut_record_is_an_error_on_every_read_path(cut: tuple[Path, str, str]) -> None:
    warc, url, article = cut
    archive = WarcArchive(warc)
    # the folder as a whole (replay's index, revisit resolution)
    with pytest.raises(WarcError, match=r"\.warc\.gz"):
        archive.captures()
    # the record itself, as captured and decoded
    ((warc_file, offset),) = _rows(
        url,
        'SELECT c.warc_file, c."offset" FROM captures c JOIN article_versions v '
        "ON v.id = c.article_version_id JOIN articles a ON a.id = v.article_id "
        "WHERE a.url = :url",
        url=article,
    )
    with pytest.raises(WarcError, match=rf"@{offset}: "):
        capture = archive.locate(warc_file, offset)
        archive.retrieve_response(capture, decode=False)
    # replay from the folder serves the others and hands the record out as damage
    (run,) = [path for path in warc.iterdir() if path.is_dir()]
    replay = ReplayMiddleware.from_crawler(get_crawler(settings_dict={"REPLAY_DIR": str(run)}))
    (damage,) = replay.damage()
    assert f"@{offset}: " in damage.detail
    # re-extraction counts the article unusable, re-extracts the others
    counts = _reextract(url, warc)
    assert counts == {"targets": 5, "unchanged": 4, "unusable": 1, "unusable/unreadable": 1}


def test_a_record_longer_than_its_file_or_not_matching_its_digest_is_an_error(
    captured: tuple[Path, str], tmp_path: Path
) -> None:
    """Records rewritten whole (valid gzip): one declaring more bytes than it holds,
    one whose payload lost a byte but kept its digests."""
    directory, url = captured
    ((warc_file, offset, length),) = _rows(
        url,
        'SELECT c.warc_file, c."offset", c.length FROM captures c '
        "JOIN article_versions v ON v.id = c.article_version_id "
        'ORDER BY c."offset" DESC LIMIT 1',
    )
    data = (directory / "warc" / warc_file).read_bytes()
    content = zlib.decompress(data[offset : offset + length], 16 + zlib.MAX_WBITS)
    declared = content.split(b"Content-Length: ", 1)[1].split(b"\r\n", 1)[0]
    longer = content.replace(
        b"Content-Length: " + declared, b"Content-Length: " + str(int(declared) + 500).encode(), 1
    )
    payload_end = content.rindex(b"</html>")
    altered = content[:payload_end] + content[payload_end + 1 :] + b" "  # same length
    for name, forged, message in (
        ("longer", longer, "of its Content-Length missing"),
        ("altered", altered, "digest failed"),
    ):
        warc = tmp_path / name
        path = warc / warc_file
        path.parent.mkdir(parents=True)
        member = zlib.compressobj(wbits=16 + zlib.MAX_WBITS)
        gzipped = member.compress(forged) + member.flush()
        path.write_bytes(data[:offset] + gzipped + data[offset + length :])
        archive = WarcArchive(warc)
        with pytest.raises(WarcError, match=message):
            archive.retrieve_response(archive.locate(warc_file, offset), decode=True)
        replay = ReplayMiddleware.from_crawler(
            get_crawler(settings_dict={"REPLAY_DIR": str(path.parent)})
        )
        (damage,) = replay.damage()
        assert message in damage.detail


@pytest.mark.parametrize("where", ["mid-payload", "before the target URI"])
def test_a_replay_of_a_cut_warc_folder_stores_the_whole_records_and_records_the_cut_one(
    captured: tuple[Path, str], tmp_path: Path, where: str
) -> None:
    """Replayed from a run folder whose last article record is cut: the other
    articles are stored, the cut record is one ``bad_replay`` row (under its URL
    while the record still names it, else under its WARC file, the offset in the
    detail) and one log line, and the run fails its ``bad_replays`` check (exit 3)."""
    warc, captured_url, article = _cut_copy(captured, tmp_path, where)
    ((warc_file, offset),) = _rows(
        captured_url,
        'SELECT c.warc_file, c."offset" FROM captures c JOIN article_versions v '
        "ON v.id = c.article_version_id JOIN articles a ON a.id = v.article_id "
        "WHERE a.url = :url",
        url=article,
    )
    captured_articles = {url for (url,) in _rows(captured_url, "SELECT url FROM articles")}
    (run,) = [path for path in warc.iterdir() if path.is_dir()]
    url = f"sqlite:///{tmp_path / 'replayed.db'}"
    done = crawl("maeil_ilbo", run, url, expect_exit=3)
    stored = snapshot(url)
    assert set(stored.articles) == captured_articles - {article}
    named = article if where == "mid-payload" else (warc / warc_file).as_uri()
    problems = _rows(url, "SELECT url, detail FROM crawl_errors WHERE reason = 'bad_replay'")
    assert [problem_url for problem_url, _ in problems] == [named]
    assert f"{warc_file}@{offset}: " in problems[0][1]
    assert done.stderr.count(f"Failed {named}: bad_replay") == 1, done.stderr[-3000:]
    (stats,) = _rows(url, "SELECT stats FROM crawl_runs")[0]
    stats = stats if isinstance(stats, dict) else json.loads(stats)
    assert stats["archive/failed/bad_replay"] == 1
    assert stats["archive/health/failed/bad_replays"] == 1
