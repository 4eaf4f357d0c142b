"""Every outcome says what happened: the exit codes of ``scrapy crawl`` and
``news-archive crawl`` (docs/operations.md, "Exit codes"), configuration errors in
one line, the CLI's one-line errors and read-only reads, and no remote endpoint in
a crawl.

Real ``scrapy crawl`` processes where the process is the point (a signal, the
command's exit code, what the process listens on and leaves behind); the rest
in-process.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from news_archive.crawler.extensions.run import (
    ALREADY_RUNNING,
    ALREADY_RUNNING_EXIT_CODE,
    CONFIGURATION_ERROR_EXIT_CODE,
    CUT_SHORT_EXIT_CODE,
    DATA_LOST_EXIT_CODE,
    HEALTH_FAILED_EXIT_CODE,
    HEALTHY_EXIT_CODE,
    ArchiveRun,
)
from news_archive.crawler.spiders.sites import MaeilIlboSpider
from news_archive.storage.archive import Archive, ArchiveError
from tests.conftest import BACKENDS, fresh_database
from tests.crawl.crawling import (
    ROOT,
    SEEDS,
    HandCrawl,
    crawl_environment,
    project_crawler,
    snapshot,
    wait_until,
)
from tests.hostile.proxy import TcpProxy
from tests.test_cli import NEWS_ARCHIVE, Cli

# Articles of the generated 매일일보 corpus: enough that a crawl is still running when
# the test has seen its first articles stored.
PAGES = 600
# Small batches: commits start early.
FAST = ("-s", "ARCHIVE_BATCH_SIZE=5", "-s", "CONCURRENT_REQUESTS_PER_DOMAIN=8")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A replay directory of PAGES 매일일보 articles (bench/run.py's generator)."""
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "bench" / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)  # its dataclasses look their module up
    spec.loader.exec_module(module)
    root = tmp_path_factory.mktemp("outcome_corpus")
    module.generate(root, 2 * PAGES)  # round robin over both sites
    return root / "maeil_ilbo"


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A new, empty database on each backend."""
    with fresh_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def started(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start ``scrapy crawl`` in its own session, log to a file; killed if left running."""
    processes: list[subprocess.Popen[bytes]] = []

    def start(
        replay_dir: Path, database_url: str, *arguments: str, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        environment = crawl_environment() | {
            key: value for key, value in os.environ.items() if key != "REPLAY_DIR"
        }
        environment |= {"DATABASE_URL": database_url, "REPLAY_DIR": str(replay_dir)}
        environment |= env or {}
        log = (tmp_path / f"crawl-{len(processes)}.log").open("wb")
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "scrapy", "crawl", "maeil_ilbo", *arguments],
                cwd=ROOT,
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
        log.close()
        return processes[-1]

    yield start
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _log(tmp_path: Path, number: int = 0) -> str:
    return (tmp_path / f"crawl-{number}.log").read_text("utf-8", errors="replace")


def _stored(database_url: str) -> int:
    """Articles committed so far (0 while the database or its tables do not exist)."""
    if database_url.startswith("sqlite:///") and not Path(database_url[10:]).exists():
        return 0
    archive = Archive.open(database_url, migrate=False)
    try:
        return archive.articles.count()
    except ArchiveError:  # its tables are not created yet
        return 0
    finally:
        archive.close()


# ------------------------------------------------------------ the order of the codes


def test_the_exit_code_follows_the_table_most_important_first(sqlite_url: str) -> None:
    """Lost data outweighs everything a started run can be; then already running,
    cut short, a failed health check."""
    crawler = project_crawler(MaeilIlboSpider, DATABASE_URL=sqlite_url)
    run = crawler.get_extension(ArchiveRun)
    try:
        cases: list[tuple[dict[str, Any], str, bool | None, int]] = [
            ({}, "finished", True, HEALTHY_EXIT_CODE),
            ({}, "finished", False, HEALTH_FAILED_EXIT_CODE),
            ({}, "shutdown", False, CUT_SHORT_EXIT_CODE),
            ({}, "closespider_timeout", None, CUT_SHORT_EXIT_CODE),
            ({}, ALREADY_RUNNING, None, ALREADY_RUNNING_EXIT_CODE),
            ({"frontier/errors": 1}, "finished", True, CUT_SHORT_EXIT_CODE),  # a listing's rest
            ({"frontier/errors": 1}, "finished", False, CUT_SHORT_EXIT_CODE),
            ({"archive/lost": 500}, "finished", True, DATA_LOST_EXIT_CODE),  # today's stat
            ({"archive/lost/visits": 3}, "shutdown", False, DATA_LOST_EXIT_CODE),
            ({"archive/lost/articles": 0}, "finished", True, HEALTHY_EXIT_CODE),
        ]
        for stats, reason, healthy, expected in cases:
            crawler.stats.clear_stats()
            for key, value in stats.items():
                crawler.stats.set_value(key, value)
            run.finish_reason, run.health_ok = reason, healthy
            assert run.exit_code == expected, (stats, reason, healthy)
    finally:
        run.engine_stopped()


# ---------------------------------------------------------------- cut short: exit 4


def test_a_crawl_stopped_by_sigterm_exits_4_and_is_recorded_unhealthy(
    corpus: Path,
    database: str,
    started: Callable[..., subprocess.Popen[bytes]],
    tmp_path: Path,
) -> None:
    crawl = started(corpus, database, *FAST)
    wait_until(lambda: _stored(database) >= 20, "20 stored articles")
    os.killpg(crawl.pid, signal.SIGTERM)  # once: Scrapy's graceful shutdown
    code = crawl.wait(120)

    log = _log(tmp_path)
    assert code == CUT_SHORT_EXIT_CODE, log
    (row,) = snapshot(database).runs
    assert row["finish_reason"] == "shutdown"
    assert 20 <= _stored(database) < PAGES, "the crawl finished before the signal"
    assert row["exit_code"] == CUT_SHORT_EXIT_CODE
    assert row["health_ok"] is False or row["health_ok"] == 0
    assert row["stats"]["archive/health/failed/run_complete"] == 1
    assert "HEALTH CHECK FAILED: run_complete[finish_reason] 0 < floor 1" in log
    assert "The crawl exits 4: cut short (finish reason shutdown)" in log


# ---------------------------------------------------------------- data lost: exit 5


@pytest.mark.postgres
def test_a_run_whose_articles_could_not_be_stored_exits_5(tmp_path: Path) -> None:
    """The database goes away before the final flush and stays away longer than
    ARCHIVE_RETRY_SECONDS: the articles are lost (`Could not store 5 articles`); the
    database is back when the run's end is recorded, with exit code 5."""
    with fresh_database("postgres", tmp_path) as url, TcpProxy("127.0.0.1", 5432) as proxy:
        through_proxy = url.replace(":5432/", f":{proxy.port}/")
        hand = HandCrawl(
            MaeilIlboSpider,
            SEEDS / "maeil_ilbo",
            through_proxy,
            ARCHIVE_BATCH_SIZE=1000,  # nothing written before the close
            ARCHIVE_RETRY_SECONDS=0.5,
        )
        run = hand.run
        try:
            hand.__enter__()
            hand.crawl(hand.start())
            proxy.refuse()
            waiting = hand.pipeline.close_spider()
            assert waiting is not None, "the outage went unnoticed"
            loop = asyncio.new_event_loop()
            try:
                loop.run_until_complete(waiting)
            finally:
                loop.close()
            proxy.pass_through()
            run.spider_closed(hand.spider, "finished")
            assert (
                hand.stats.get_value("archive/lost", 0)
                + hand.stats.get_value("archive/lost/articles", 0)
                == 5
            )
            assert run.exit_code == DATA_LOST_EXIT_CODE
            assert run.outcome[1].startswith("data lost (archive/lost")
            run.record_exit_code(run.exit_code)
        finally:
            run.engine_stopped()
        (row,) = snapshot(url).runs
        assert (row["finish_reason"], row["exit_code"]) == ("finished", DATA_LOST_EXIT_CODE)


# --------------------------------------------------- configuration errors: exit 78


def _crawl_command(
    command: str, *arguments: str, database_url: str
) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != "REPLAY_DIR"}
    env |= crawl_environment() | {"REPLAY_DIR": str(SEEDS / "maeil_ilbo")}
    env["DATABASE_URL"] = database_url
    program = [sys.executable, "-m", "scrapy"] if command == "scrapy" else [str(NEWS_ARCHIVE)]
    return subprocess.run(
        [*program, "crawl", "maeil_ilbo", *arguments],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


MISSING_POSTGRES_DATABASE = "postgresql+psycopg://postgres@127.0.0.1:5432/archive_never_created"


@pytest.mark.parametrize("command", ["scrapy", "news-archive"])
@pytest.mark.parametrize(
    ("arguments", "database_url", "message"),
    [
        pytest.param(
            ("-a", "since=yesterday"),
            None,
            "crawl maeil_ilbo: configuration error: -a since='yesterday' is not a date "
            "(YYYY-MM-DD)",
            id="bad-spider-argument",
        ),
        pytest.param(
            (),
            "postgresql+psycopg://archive:s3cret@127.0.0.1:notaport/news",
            "crawl maeil_ilbo: configuration error: DATABASE_URL <unparseable database URL>: ",
            id="malformed-url",
        ),
        pytest.param(
            (),
            MISSING_POSTGRES_DATABASE,
            "crawl maeil_ilbo: configuration error: DATABASE_URL "
            f'{MISSING_POSTGRES_DATABASE}: connection failed: connection to server at "127.0.0.1", '
            'port 5432 failed: FATAL:  database "archive_never_created" does not exist',
            id="missing-postgres-database",
            marks=pytest.mark.postgres,
        ),
    ],
)
def test_a_configuration_error_is_one_line_and_exit_78(
    command: str,
    arguments: tuple[str, ...],
    database_url: str | None,
    message: str,
    sqlite_url: str,
) -> None:
    result = _crawl_command(
        command, "-L", "WARNING", *arguments, database_url=database_url or sqlite_url
    )
    assert result.returncode == CONFIGURATION_ERROR_EXIT_CODE, result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith(message)
    assert "s3cret" not in result.stderr


def test_at_the_default_log_level_a_configuration_error_has_no_traceback(
    sqlite_url: str,
) -> None:
    result = _crawl_command("scrapy", "-a", "since=yesterday", database_url=sqlite_url)
    assert result.returncode == CONFIGURATION_ERROR_EXIT_CODE
    assert "Traceback" not in result.stderr
    assert [line for line in result.stderr.splitlines() if "error" in line.lower()] == [
        "crawl maeil_ilbo: configuration error: -a since='yesterday' is not a date (YYYY-MM-DD)"
    ]


# ------------------------------------------------------------ no remote endpoints


def _listening_sockets(pid: int) -> set[str]:
    """The TCP sockets of process `pid` in the LISTEN state (inodes)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    listening = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: TCP_LISTEN
                listening.add(fields[1])
    return listening


def test_a_crawl_listens_on_no_port_and_a_killed_one_leaves_no_file(
    corpus: Path,
    sqlite_url: str,
    started: Callable[..., subprocess.Popen[bytes]],
    tmp_path: Path,
) -> None:
    """No telnet console, no remote control server, no job file with its token."""
    home = tmp_path / "home"
    (home / "state").mkdir(parents=True)
    crawl = started(
        corpus,
        sqlite_url,
        *FAST,
        env={"HOME": str(home), "XDG_STATE_HOME": str(home / "state")},
    )
    wait_until(lambda: _stored(sqlite_url) >= 10, "10 stored articles")
    listening = _listening_sockets(crawl.pid)
    os.killpg(crawl.pid, signal.SIGKILL)
    crawl.wait()

    assert listening == set(), _log(tmp_path)
    assert [path for path in home.rglob("*") if path.is_file()] == []


# ------------------------------------------------------------------ the CLI's errors


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(capsys)


@pytest.fixture
def migrated(database_url: str) -> str:
    """An empty archive at the newest schema, on each backend."""
    Archive.open(database_url).close()
    return database_url


def _one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.splitlines()
    return line


def test_show_of_an_id_out_of_every_range_is_not_found(cli: Cli, migrated: str) -> None:
    for number in ("99999999999999999999999", "3000000000"):
        line = _one_line(cli.run("show", number, database_url=migrated))
        assert line == f"news-archive: error: no archived article '{number}' (an id, or a URL)"


def test_a_negative_count_of_runs_is_a_usage_error(cli: Cli, migrated: str) -> None:
    result = cli.run("stats", "--runs", "-1", database_url=migrated)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1] == (
        "news-archive stats: error: argument --runs: must be 0 or more, not -1"
    )


READ_ONLY_COMMANDS = [
    ("search", "카카오"),
    ("show", "1"),
    ("export",),
    ("stats",),
    ("db", "current"),
]


@pytest.mark.parametrize("command", READ_ONLY_COMMANDS, ids=lambda c: " ".join(c))
def test_reading_commands_leave_an_empty_or_foreign_file_as_it_was(
    cli: Cli, tmp_path: Path, command: tuple[str, ...]
) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()
    text = tmp_path / "notes.txt"
    text.write_text("not a database\n", encoding="utf-8")
    for path in (empty, text):
        before = (path.read_bytes(), path.stat().st_mtime_ns)
        result = cli.run(*command, database_url=f"sqlite:///{path}")
        assert result.returncode == 1, result.stdout
        if command != ("db", "current"):  # it prints the revision it found: none
            line = _one_line(result)
            assert str(path) in line
        assert (path.read_bytes(), path.stat().st_mtime_ns) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.db", "notes.txt"]
