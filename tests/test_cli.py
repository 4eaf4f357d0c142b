"""The ``news-archive`` command on both backends: its `main` in-process for each
command and error, the installed script as a user runs it (a subprocess) where the
process is the point (the entry point, the environment, ``python -m``). Reading
commands use the session's seed archive: both sites' seed crawl and their day 2
(which edits 매일일보's 800101 and SKT's 130002)."""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import news_archive.crawler.settings as project_settings
from news_archive.cli.main import head_revision, main
from news_archive.storage.engine import create_archive_engine, upgrade_to_head
from news_archive.storage.repository import ArchiveRepository
from tests.conftest import SeedArchive, migrate_to
from tests.crawl.crawling import ROOT
from tests.storage.factories import KOREA_MORNING, make_article

NEWS_ARCHIVE = Path(sys.executable).with_name("news-archive")
MAEIL = "https://www.m-i.kr/news/articleView.html?idxno={}"
MAEIL_SEED = MAEIL.format(714398)
SKT_SEED = "https://news.sktelecom.com/129639"  # also about 초협력 (one of its tags)
EDITED = MAEIL.format(800101)
ARTICLES = 6  # of 매일일보: 5 on day 1, 1 new on day 2
SKT_ARTICLES = 7  # 6 on day 1, 1 new on day 2
RUNS = 6  # each site on day 1, day 1 again and day 2
ARTICLES_SINCE_2026 = 5  # of 매일일보: all but the 2020 seed
EXPORT_FIELDS_CSV = (
    *("id", "site", "url", "title", "subtitle", "author", "published_at", "modified_at"),
    *("section", "language", "body", "content_hash", "first_seen_at", "last_seen_at"),
    *("last_changed_at", "tags", "image_urls"),
)


def installed(
    *arguments: str, database_url: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the installed ``news-archive ARGUMENTS`` from the repository root, a process
    as a user runs it; DATABASE_URL unset unless given in `env`."""
    assert NEWS_ARCHIVE.exists(), f"{NEWS_ARCHIVE} missing: run `pip install -e .`"
    environment = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    environment.update(env or {})
    option = ["--database-url", database_url] if database_url is not None else []
    return subprocess.run(
        [str(NEWS_ARCHIVE), *option, *arguments],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        encoding="utf-8",
        timeout=120,
        check=False,
    )


class Cli:
    """``news-archive`` in this process: the command's `main(argv)`, its exit status
    returned and its output captured (what the installed script runs)."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys

    def run(
        self, *arguments: str, database_url: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        option = ["--database-url", database_url] if database_url is not None else []
        argv = [*option, *arguments]
        self.capsys.readouterr()
        try:
            status = main(argv)
        except SystemExit as exit_:  # argparse's usage errors, as the script exits
            status = exit_.code if isinstance(exit_.code, int) else 1
        out, err = self.capsys.readouterr()
        return subprocess.CompletedProcess(["news-archive", *argv], status, out, err)

    def succeed(self, *arguments: str, database_url: str) -> str:
        result = self.run(*arguments, database_url=database_url)
        assert result.returncode == 0, result.stderr
        return result.stdout


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    """`Cli`, with DATABASE_URL unset as for the installed command here."""
    monkeypatch.delenv("DATABASE_URL", raising=False)
    return Cli(capsys)


@pytest.fixture
def archive_url(seed_archive: SeedArchive) -> str:
    """URL of the session's seed archive (both sites' day 1 and day 2, on each
    backend): every command here only reads it."""
    return seed_archive.url


# --- search ----------------------------------------------------------------------------


def test_search_json(archive_url: str) -> None:
    # The installed script, as a user runs it.
    result = installed("search", "초협력", "--json", database_url=archive_url)
    assert result.returncode == 0, result.stderr
    hits = json.loads(result.stdout)
    assert sorted(hit["url"] for hit in hits) == sorted([MAEIL_SEED, SKT_SEED])
    maeil = next(hit for hit in hits if hit["url"] == MAEIL_SEED)
    assert set(maeil) == {"id", "site", "url", "title", "author", "published_at", "snippet", "rank"}
    assert "초협력" in maeil["snippet"]
    # 00:00 UTC, shown in the display zone (Korea by default) with its offset
    assert maeil["published_at"] == "2020-06-21T09:00:00+09:00"


def test_search_by_site(cli: Cli, archive_url: str) -> None:
    only_maeil = json.loads(
        cli.succeed("search", "초협력", "--json", "--site", "maeil_ilbo", database_url=archive_url)
    )
    assert [hit["url"] for hit in only_maeil] == [MAEIL_SEED]


def test_search_short_query_and_filters(cli: Cli, archive_url: str) -> None:
    everything = json.loads(cli.succeed("search", "AI", "--json", database_url=archive_url))
    assert MAEIL_SEED in [hit["url"] for hit in everything]
    recent = json.loads(
        cli.succeed(
            "search",
            "AI",
            "--json",
            "--since",
            "2026-01-01",
            "--limit",
            "50",
            database_url=archive_url,
        )
    )
    assert recent
    assert MAEIL_SEED not in [hit["url"] for hit in recent]
    day = json.loads(
        cli.succeed(
            "search",
            "AI",
            "--json",
            "--since",
            "2020-06-21",
            "--until",
            "2020-06-21",
            "--site",
            "maeil_ilbo",
            database_url=archive_url,
        )
    )
    assert [hit["url"] for hit in day] == [MAEIL_SEED]


def _search(cli: Cli, archive_url: str, *arguments: str) -> list[dict[str, Any]]:
    return json.loads(cli.succeed("search", *arguments, "--json", database_url=archive_url))  # type: ignore[no-any-return]


def test_search_query_language(cli: Cli, archive_url: str) -> None:
    by_author = _search(cli, archive_url, "site:maeil_ilbo author:박효길")
    assert by_author
    assert all(hit["site"] == "maeil_ilbo" and "박효길" in hit["author"] for hit in by_author)
    published = [hit["published_at"] for hit in by_author]
    assert published == sorted(published, reverse=True)
    urls = {hit["url"] for hit in _search(cli, archive_url, "SKT -카카오", "--limit", "100")}
    skt = {hit["url"] for hit in _search(cli, archive_url, "SKT", "--limit", "100")}
    kakao = {hit["url"] for hit in _search(cli, archive_url, "카카오", "--limit", "100")}
    assert SKT_SEED in skt & kakao
    assert urls == skt - kakao != set()
    both = {hit["url"] for hit in _search(cli, archive_url, "삼성전자 반도체")}
    assert both and both <= {hit["url"] for hit in _search(cli, archive_url, "반도체")}
    newest = _search(cli, archive_url, "AI", "--sort", "newest")
    assert [hit["rank"] for hit in newest] == [None] * len(newest)
    assert [hit["published_at"] for hit in newest] == sorted(
        (hit["published_at"] for hit in newest), reverse=True
    )


@pytest.mark.parametrize(
    ("query", "message"),
    [('"협력', "unclosed quote"), ("author:", "needs a value"), ("OR 협력", "OR needs a word")],
)
def test_search_syntax_errors_are_one_line(
    cli: Cli, archive_url: str, query: str, message: str
) -> None:
    result = cli.run("search", query, database_url=archive_url)
    assert result.returncode == 2
    assert result.stderr.startswith("news-archive: error: cannot read the search query: ")
    assert message in result.stderr
    assert result.stderr.count("\n") == 1


def test_search_table(cli: Cli, archive_url: str) -> None:
    output = cli.succeed("search", "똠방각하", database_url=archive_url)
    lines = output.splitlines()
    assert lines[0].split() == ["id", "published", "(KST)", "site", "title", "snippet"]
    assert "2026-11-21" in lines[2]
    assert "«똠방각하»" in lines[2]
    assert "1 hit(s)" in output
    assert "no article matches" in cli.succeed("search", "없는말없는말", database_url=archive_url)


def test_database_url_from_the_environment(archive_url: str) -> None:
    # A process: the settings module reads the environment once, at import.
    result = installed(
        "search", "초협력", "--json", "--site", "maeil_ilbo", env={"DATABASE_URL": archive_url}
    )
    assert result.returncode == 0, result.stderr
    assert [hit["url"] for hit in json.loads(result.stdout)] == [MAEIL_SEED]


# --- show ------------------------------------------------------------------------------


def test_show_with_diff(cli: Cli, archive_url: str) -> None:
    output = cli.succeed("show", EDITED, "--diff", database_url=archive_url)
    assert output.startswith("삼성전자, 차세대 HBM4 양산 돌입")
    assert "2 version(s)" in output
    assert "--- version 1 (" in output
    assert "+++ version 2 (" in output
    assert "+한편 삼성전자는 주요 고객사의 HBM4 품질 인증 절차도" in output
    removed = [line for line in output.splitlines() if line.startswith("-증권가는")]
    assert len(removed) == 1
    assert "실적 개선을 점치고" in removed[0]


def test_show_by_id_as_json(cli: Cli, archive_url: str) -> None:
    (hit,) = json.loads(
        cli.succeed("search", "초협력", "--json", "--site", "maeil_ilbo", database_url=archive_url)
    )
    article = json.loads(cli.succeed("show", str(hit["id"]), "--json", database_url=archive_url))
    assert article["url"] == MAEIL_SEED
    assert [version["version"] for version in article["versions"]] == [1]
    assert "one version only" in cli.succeed("show", MAEIL_SEED, "--diff", database_url=archive_url)


def test_show_unknown_article(cli: Cli, archive_url: str) -> None:
    result = cli.run("show", "https://example.com/none", database_url=archive_url)
    assert result.returncode == 1
    assert "no archived article 'https://example.com/none'" in result.stderr


# --- export ----------------------------------------------------------------------------


def test_export_jsonl_to_stdout(cli: Cli, archive_url: str) -> None:
    result = cli.run("export", database_url=archive_url)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == ARTICLES + SKT_ARTICLES
    assert f"exported {ARTICLES + SKT_ARTICLES} article(s) as jsonl to stdout" in result.stderr
    seed = next(row for row in rows if row["url"] == MAEIL_SEED)
    assert seed["published_at"] == "2020-06-21T09:00:00+09:00"
    assert isinstance(seed["images"], list) and isinstance(seed["tags"], list)
    assert "초협력" in seed["body"]


def test_export_csv_to_a_file_with_filters(cli: Cli, archive_url: str, tmp_path: Path) -> None:
    target = tmp_path / "articles.csv"
    cli.succeed(
        "export",
        "--format",
        "csv",
        "-o",
        str(target),
        "--site",
        "maeil_ilbo",
        "--since",
        "2026-01-01",
        database_url=archive_url,
    )
    rows = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8"), newline="")))
    assert len(rows) == ARTICLES_SINCE_2026
    assert MAEIL_SEED not in [row["url"] for row in rows]
    edited = next(row for row in rows if row["url"] == EDITED)
    assert "품질 인증 절차" in edited["body"]  # the newest version, newlines kept
    assert "\n" in edited["body"]
    assert edited["image_urls"].count("https://") == 3


@pytest.fixture
def excel_url(sqlite_url: str) -> str:
    """An archive of two articles whose texts a spreadsheet could misread: a title that
    starts like a formula, a body line starting with a minus sign."""
    engine = create_archive_engine(sqlite_url)
    try:
        upgrade_to_head(engine)
        ArchiveRepository(engine).store_articles(
            [
                make_article(1, published_at=KOREA_MORNING, title="=HYPERLINK(1) 삼성전자 반도체"),
                make_article(2, published_at=KOREA_MORNING, body="-5% 하락\n둘째 문단"),
            ]
        )
    finally:
        engine.dispose()
    return sqlite_url


def test_export_excel_opens_with_korean_intact(cli: Cli, excel_url: str, tmp_path: Path) -> None:
    target = tmp_path / "articles.csv"
    result = cli.run("export", "--excel", "-o", str(target), database_url=excel_url)
    assert result.returncode == 0, result.stderr
    assert "exported 2 article(s) as csv for Excel" in result.stderr
    data = target.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")  # UTF-8's byte order mark: Excel reads UTF-8
    assert data.split(b"\n", 1)[0].endswith(b"\r")  # CRLF, as the csv module writes
    with target.open(encoding="utf-8-sig", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert list(rows[0]) == [*EXPORT_FIELDS_CSV]
    first, second = sorted(rows, key=lambda row: row["id"])
    # Formula-looking text is marked to stay text; Korean arrives intact.
    assert first["title"] == "'=HYPERLINK(1) 삼성전자 반도체"
    assert second["body"] == "'-5% 하락\n둘째 문단"
    assert first["author"] == "박효길" and first["tags"] == "삼성, 반도체"
    assert first["published_at"] == "2026-11-24T08:30:00+09:00"
    # To stdout too, the mark first; without --excel, no mark and no guard.
    piped = cli.succeed("export", "--excel", database_url=excel_url)
    assert piped.startswith("\ufeff")
    plain = cli.succeed("export", "--format", "csv", database_url=excel_url)
    assert not plain.startswith("\ufeff")
    assert "=HYPERLINK(1) 삼성전자 반도체" in plain and "'=" not in plain


def test_export_fields(cli: Cli, excel_url: str) -> None:
    output = cli.succeed(
        "export", "--format", "csv", "--fields", "url,title,published_at", database_url=excel_url
    )
    rows = list(csv.reader(io.StringIO(output, newline="")))
    assert rows[0] == ["url", "title", "published_at"]
    assert [len(row) for row in rows] == [3, 3, 3]
    lines = cli.succeed("export", "--fields", "published_at,images", database_url=excel_url)
    first = json.loads(lines.splitlines()[0])
    assert list(first) == ["published_at", "images"]
    assert first["published_at"] == "2026-11-24T08:30:00+09:00"
    assert first["images"][0]["caption"] == "사진 설명"

    result = cli.run("export", "--format", "csv", "--fields", "url,images", database_url=excel_url)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(
        "news-archive: error: unknown field 'images' for csv export; fields: id, site, url"
    )
    result = cli.run("export", "--excel", "--format", "jsonl", database_url=excel_url)
    assert (result.returncode, result.stderr) == (
        2,
        "news-archive: error: --excel writes CSV: drop --format jsonl\n",
    )


# --- the display time zone -------------------------------------------------------------


@pytest.fixture
def korea_days_url(database_url: str) -> str:
    """An archive, on each backend, of a 매일일보 article published at 08:30 in Korea
    on 2026-11-24 (23:30 UTC on the 23rd) and one at 23:30 in Korea on the 23rd."""
    engine = create_archive_engine(database_url)
    try:
        upgrade_to_head(engine)
        ArchiveRepository(engine).store_articles(
            [
                make_article(1, published_at=KOREA_MORNING),
                make_article(2, published_at=KOREA_MORNING - timedelta(hours=9)),
            ]
        )
    finally:
        engine.dispose()
    return database_url


def _urls(output: str) -> list[str]:
    return [hit["url"] for hit in json.loads(output)]


def _day_line(output: str, day: str) -> list[str]:
    return next(line.split() for line in output.splitlines() if line.startswith(day))


def test_days_are_korea_days(cli: Cli, korea_days_url: str) -> None:
    """A 08:30 KST article counts on its Korea day in stats and in the date filters."""
    url = korea_days_url
    morning, evening = MAEIL.format(1), MAEIL.format(2)
    output = cli.succeed("stats", database_url=url)
    assert _day_line(output, "2026-11-24") == ["2026-11-24", "1"]
    assert _day_line(output, "2026-11-23") == ["2026-11-23", "1"]
    assert "2026-11-24 08:30" in output  # last published, in Korea time
    stats = json.loads(cli.succeed("stats", "--json", database_url=url))
    assert stats["time_zone"] == "Asia/Seoul"
    assert stats["daily_counts"] == [
        {"site": "maeil_ilbo", "day": "2026-11-24", "articles": 1},
        {"site": "maeil_ilbo", "day": "2026-11-23", "articles": 1},
    ]
    assert stats["sites"][0]["last_published_at"] == "2026-11-24T08:30:00+09:00"

    found = cli.succeed("search", "삼성전자", "--json", "--since", "2026-11-24", database_url=url)
    assert _urls(found) == [morning]
    assert json.loads(found)[0]["published_at"] == "2026-11-24T08:30:00+09:00"
    found = cli.succeed("search", "삼성전자", "--json", "--until", "2026-11-23", database_url=url)
    assert _urls(found) == [evening]
    exported = cli.succeed("export", "--since", "2026-11-24", database_url=url)
    assert [json.loads(line)["url"] for line in exported.splitlines()] == [morning]
    # A time without an offset is a time of the display zone; one with an offset is kept.
    for since, expected in (
        ("2026-11-24T08:30", [morning]),
        ("2026-11-24T08:31", []),
        ("2026-11-23T23:30:00+00:00", [morning]),
    ):
        found = cli.succeed("search", "삼성전자", "--json", "--since", since, database_url=url)
        assert _urls(found) == expected, since
    table = cli.succeed("search", "삼성전자", "--since", "2026-11-24", database_url=url)
    assert "published (KST)" in table and "2026-11-24" in table


def test_display_time_zone_utc(
    cli: Cli, korea_days_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(project_settings, "DISPLAY_TIME_ZONE", "UTC")
    url = korea_days_url
    output = cli.succeed("stats", database_url=url)
    assert "Articles per publication day (UTC)" in output
    assert _day_line(output, "2026-11-23") == ["2026-11-23", "2"]
    stats = json.loads(cli.succeed("stats", "--json", database_url=url))
    assert stats["sites"][0]["last_published_at"] == "2026-11-23T23:30:00+00:00"
    assert cli.succeed(
        "search", "삼성전자", "--json", "--since", "2026-11-24", database_url=url
    ) == ("[]\n")
    shown = cli.succeed("show", MAEIL.format(1), database_url=url)
    assert "2026-11-23 23:30" in shown and "(times in UTC)" in shown


def test_display_time_zone_from_the_environment(korea_days_url: str) -> None:
    # A process: the settings module reads the environment once, at import.
    result = installed(
        "export", database_url=korea_days_url, env={"DISPLAY_TIME_ZONE": "Europe/Berlin"}
    )
    assert result.returncode == 0, result.stderr
    published = [json.loads(line)["published_at"] for line in result.stdout.splitlines()]
    assert published == ["2026-11-23T15:30:00+01:00", "2026-11-24T00:30:00+01:00"]


def test_unknown_display_time_zone_is_a_configuration_error(sqlite_url: str) -> None:
    result = installed("stats", database_url=sqlite_url, env={"DISPLAY_TIME_ZONE": "Asia/Busan"})
    assert result.returncode == 78
    assert result.stderr == (
        "news-archive: error: configuration error: DISPLAY_TIME_ZONE: unknown time zone "
        "'Asia/Busan' (an IANA name: 'Asia/Seoul')\n"
    )


# --- stats and db ----------------------------------------------------------------------


def test_stats(cli: Cli, archive_url: str) -> None:
    output = cli.succeed("stats", database_url=archive_url)
    assert "Articles per site" in output
    assert "Articles per site (times in KST, Asia/Seoul)" in output
    assert "Articles per publication day (KST, Asia/Seoul)" in output
    assert f"Last {RUNS} crawl run(s)" in output
    lines = output.splitlines()
    site_line = next(line for line in lines if line.startswith("maeil_ilbo"))
    assert site_line.split()[1:3] == [str(ARTICLES), str(ARTICLES + 1)]
    site_line = next(line for line in lines if line.startswith("skt_insight"))
    assert site_line.split()[1:3] == [str(SKT_ARTICLES), str(SKT_ARTICLES + 1)]
    stats = json.loads(cli.succeed("stats", "--json", "--days", "0", database_url=archive_url))
    assert sum(day["articles"] for day in stats["daily_counts"]) == ARTICLES + SKT_ARTICLES
    # newest first
    assert [run["spider"] for run in stats["runs"]] == ["maeil_ilbo", "skt_insight"] * 3
    limited = json.loads(cli.succeed("stats", "--json", "--runs", "2", database_url=archive_url))
    assert len(limited["runs"]) == 2


def test_db_current(cli: Cli, archive_url: str) -> None:
    assert (
        cli.succeed("db", "current", database_url=archive_url).strip()
        == f"{head_revision()} (head)"
    )


def test_db_current_exits_1_when_the_database_is_behind(cli: Cli, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    migrate_to(url, "0003")
    behind = cli.run("db", "current", database_url=url)
    assert behind.returncode == 1
    assert (
        behind.stdout.strip()
        == f"0003; the newest is {head_revision()}: run `news-archive db upgrade`"
    )


def test_db_upgrade_creates_an_archive(cli: Cli, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    assert "upgraded from an empty database to" in cli.succeed("db", "upgrade", database_url=url)
    assert "already at the newest revision" in cli.succeed("db", "upgrade", database_url=url)
    assert cli.succeed("db", "current", database_url=url).strip() == f"{head_revision()} (head)"
    assert "no article matches" in cli.succeed("search", "카카오", database_url=url)


# --- errors ----------------------------------------------------------------------------


def test_unparseable_database_url(cli: Cli) -> None:
    result = cli.run("search", "카카오", database_url="not a database url")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "news-archive: error: cannot parse the database URL "
        "(expected sqlite:///PATH or postgresql+psycopg://USER@HOST/DB)"
    )


def test_unreachable_database_names_it_without_its_password(cli: Cli) -> None:
    url = "postgresql+psycopg://reader:hunter2@127.0.0.1:1/archive"
    result = cli.run("stats", database_url=url)
    assert result.returncode == 1
    assert result.stderr.startswith(
        "news-archive: error: cannot connect to database "
        "postgresql+psycopg://reader:***@127.0.0.1:1/archive: "
    )
    assert "hunter2" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_missing_sqlite_file(cli: Cli, tmp_path: Path) -> None:
    result = cli.run("search", "카카오", database_url=f"sqlite:///{tmp_path / 'none.db'}")
    assert result.returncode == 1
    assert "no SQLite database at" in result.stderr
    assert not (tmp_path / "none.db").exists()


def test_database_not_migrated(cli: Cli, database_url: str) -> None:
    if database_url.startswith("sqlite:///"):
        sqlite3.connect(database_url.removeprefix("sqlite:///")).close()
    result = cli.run("search", "카카오", database_url=database_url)
    assert result.returncode == 1
    assert "has no archive schema (not migrated): run `news-archive db upgrade`" in result.stderr


def test_database_behind_head(cli: Cli, sqlite_url: str) -> None:
    migrate_to(sqlite_url, "0002")
    result = cli.run("export", database_url=sqlite_url)
    assert result.returncode == 1
    assert (
        f"is at schema revision 0002, not the newest {head_revision()}: "
        "run `news-archive db upgrade`"
    ) in result.stderr
    assert result.stdout == ""


def test_unknown_site(cli: Cli, archive_url: str) -> None:
    result = cli.run("search", "카카오", "--site", "chosun", database_url=archive_url)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "news-archive: error: unknown site 'chosun'; known sites: maeil_ilbo, skt_insight"
    )
    result = cli.run("export", "--site", "chosun", database_url=archive_url)
    assert result.returncode == 2
    assert "unknown site 'chosun'" in result.stderr


def test_bad_date(cli: Cli) -> None:
    result = cli.run("search", "카카오", "--since", "yesterday")
    assert result.returncode == 2
    assert "'yesterday' is neither YYYY-MM-DD nor an ISO 8601 time" in result.stderr


def test_python_dash_m_runs_the_same_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "news_archive", "--help"],
        cwd=ROOT,
        capture_output=True,
        encoding="utf-8",
        check=False,
    )
    assert result.returncode == 0
    for name in ("search", "show", "export", "stats", "db"):
        assert name in result.stdout


# --- boilerplate ------------------------------------------------------------------------

NOTE = "보도자료 및 사진은 언론 보도 목적으로 자유롭게 사용하실 수 있습니다."


@pytest.fixture
def learned_url(database_url: str) -> str:
    """An archive of 10 매일일보 articles, 6 ending with the same usage note, learned."""
    from datetime import timedelta

    from news_archive.storage.archive import Archive
    from tests.storage.factories import PUBLISHED_AT, make_article

    archive = Archive.open(database_url)
    try:
        archive.articles.store(
            [
                make_article(
                    n,
                    body=f"{n}번 기사의 고유한 첫 문단입니다." + (f"\n{NOTE}" if n <= 6 else ""),
                    published_at=PUBLISHED_AT + timedelta(hours=n),
                )
                for n in range(1, 11)
            ]
        )
    finally:
        archive.close()
    return database_url


def test_boilerplate_learn_list_and_review(cli: Cli, learned_url: str) -> None:
    from news_archive.vocabulary import block_hash

    assert cli.succeed("boilerplate", "list", database_url=learned_url).strip() == (
        "no learned boilerplate"
    )
    learned = cli.succeed("boilerplate", "learn", "--site", "maeil_ilbo", database_url=learned_url)
    assert "maeil_ilbo: 10 article(s) read, 1 block(s) in at least 5 (1 new), 1 applied" in learned
    (block,) = json.loads(cli.succeed("boilerplate", "list", "--json", database_url=learned_url))
    assert {key: block[key] for key in ("hash", "site", "articles", "site_articles")} == {
        "hash": block_hash(NOTE),
        "site": "maeil_ilbo",
        "articles": 6,
        "site_articles": 10,
    }
    assert (block["share"], block["status"], block["verdict"]) == (0.6, "applied", None)
    kept = cli.succeed("boilerplate", "keep", block_hash(NOTE)[:6], database_url=learned_url)
    assert kept.startswith(f"maeil_ilbo {block_hash(NOTE)}: applied -> kept: 보도자료")
    listing = cli.succeed("boilerplate", "list", "--status", "kept", database_url=learned_url)
    assert "6/10" in listing and "60%" in listing and "1 block(s), 0 applied" in listing
    applied = cli.succeed("boilerplate", "list", "--status", "applied", database_url=learned_url)
    assert applied.strip() == "no learned boilerplate"
    dropped = cli.succeed("boilerplate", "drop", block_hash(NOTE), database_url=learned_url)
    assert "kept -> confirmed" in dropped
    missing = cli.run("boilerplate", "reset", "abcdef", database_url=learned_url)
    assert missing.returncode == 1
    assert missing.stderr == (
        "news-archive: error: no learned block with hash 'abcdef' "
        "(`news-archive boilerplate list` shows them)\n"
    )


def test_boilerplate_list_reads_only(cli: Cli, tmp_path: Path) -> None:
    result = cli.run("boilerplate", "list", database_url=f"sqlite:///{tmp_path / 'none.db'}")
    assert result.returncode == 1 and "no SQLite database at" in result.stderr
    assert not (tmp_path / "none.db").exists()
