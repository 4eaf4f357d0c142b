"""Benchmark: the CPU a crawl of a near-empty corpus costs, start-up included.

    python bench/startup.py [--runs 5] [--spiders maeil_ilbo,skt_insight]

Each timed run is ``python -m scrapy crawl SPIDER`` in replay mode, with the
project's settings (WARC capture on, extraction in worker processes), in four
situations:

- ``head, feed of 0``: the SQLite database is at head; the feed lists no article;
- ``head, archived 1``: at head; the feed lists one article an earlier crawl stored
  (not due again: only the feed is fetched);
- ``head, new 1``: at head, no article stored; the feed lists one new article
  (fetched, extracted in a worker, stored);
- ``empty file, new 1``: the first crawl on an empty (0-byte) SQLite file: the schema
  is created (Alembic), then as ``head, new 1``.

For each it prints the median over the runs of the CPU seconds (user + sys) of the
crawl process and of its children (the forked extraction workers) separately, their
sum, and the wall seconds; then the import time of the top packages in one crawl
(``python -X importtime``, ``head, archived 1``, the crawl process only).

The split between the crawl process and its children is read from
``/proc/PID/stat`` of the finished, not yet reaped, process (Linux); elsewhere only
the sum (``getrusage(RUSAGE_CHILDREN)``) is printed.

The crawls run as an installed program does: with the project's modules compiled
once to bytecode (kept in the work folder, ``PYTHONPYCACHEPREFIX``), even where
``PYTHONDONTWRITEBYTECODE`` is set.  ``--no-bytecode-cache`` keeps the environment as
it is; with that variable set, every crawl then compiles the project's modules
again (about 0.2 s of CPU).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import generate  # noqa: E402

SPIDERS = ("maeil_ilbo", "skt_insight")
SITUATIONS = ("head, feed of 0", "head, archived 1", "head, new 1", "empty file, new 1")


@dataclass(frozen=True, slots=True)
class Usage:
    """CPU seconds (user + sys) of a crawl process and of its reaped children, and
    the run's wall seconds; `children` is None where the split is unknown."""

    process: float
    children: float | None
    wall: float

    @property
    def total(self) -> float:
        return self.process + (self.children or 0.0)


# Where the crawls keep the bytecode of the project's modules; None: as the environment says.
BYTECODE_CACHE: Path | None = None


def crawl(spider: str, replay_dir: Path, database: Path, warc_dir: Path, log: Path) -> Usage:
    """One ``scrapy crawl`` in replay mode into `database`; its CPU and wall seconds.
    Raises with the log when it exits with another code than 0 or 3 (a health check
    failed: a near-empty run may well be judged unhealthy)."""
    environment = {
        **os.environ,
        "REPLAY_DIR": str(replay_dir),
        "DATABASE_URL": f"sqlite:///{database}",
        "WARC_DIR": str(warc_dir),
    }
    for name in ("WARC_ENABLED", "INCREMENTAL", "SITES_FILE"):
        environment.pop(name, None)
    _with_bytecode_cache(environment)
    command = [sys.executable, "-m", "scrapy", "crawl", spider]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    with log.open("w") as output:
        process = subprocess.Popen(command, cwd=ROOT, env=environment, stdout=output, stderr=output)
        split = _own_and_children_seconds(process.pid)
        exit_code = process.wait()
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if exit_code not in (0, 3):
        raise RuntimeError(f"{' '.join(command)} exited {exit_code}:\n{log.read_text()[-3000:]}")
    total = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if split is None:
        return Usage(total, None, wall)
    own, _ = split
    return Usage(own, max(0.0, total - own), wall)


def _with_bytecode_cache(environment: dict[str, str]) -> None:
    if BYTECODE_CACHE is not None:
        environment.pop("PYTHONDONTWRITEBYTECODE", None)
        environment["PYTHONPYCACHEPREFIX"] = str(BYTECODE_CACHE)


def _own_and_children_seconds(pid: int) -> tuple[float, float] | None:
    """Wait for `pid` to end without reaping it, then read its own CPU seconds and
    those of the children it reaped from ``/proc/PID/stat``; None where that cannot
    be done (not Linux)."""
    if not hasattr(os, "waitid") or not Path(f"/proc/{pid}/stat").exists():
        return None
    os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    # After the command's name: state is field 3, utime 14, stime 15, cutime 16, cstime 17.
    utime, stime, cutime, cstime = (int(value) for value in fields[11:15])
    ticks = os.sysconf("SC_CLK_TCK")
    return (utime + stime) / ticks, (cutime + cstime) / ticks


def migrated_database(path: Path) -> Path:
    """An SQLite file at the newest schema revision, no article in it."""
    from news_archive.storage.engine import upgrade_to_head

    upgrade_to_head(f"sqlite:///{path}")
    return path


def situations(work: Path, spider: str) -> dict[str, tuple[Path, Path | None]]:
    """Each situation's replay folder and the database file each run starts from
    (copied afresh for every run; None: one database kept across the runs)."""
    corpus = work / "corpus"
    if not corpus.exists():
        generate(corpus, len(SPIDERS))
    empty_feed = work / "empty-feed" / spider
    if not empty_feed.exists():
        generate(empty_feed.parent, 0)  # a feed listing no article, for every site
    at_head = work / "at-head.db"
    if not at_head.exists():
        migrated_database(at_head)
    empty = work / "empty.db"
    empty.touch()
    return {
        "head, feed of 0": (empty_feed, at_head),
        "head, archived 1": (corpus / spider, None),
        "head, new 1": (corpus / spider, at_head),
        "empty file, new 1": (corpus / spider, empty),
    }


def measure(work: Path, spider: str, runs: int) -> dict[str, list[Usage]]:
    """`runs` timed crawls of `spider` in each situation, after one untimed one."""
    results: dict[str, list[Usage]] = {}
    for name, (replay_dir, template) in situations(work, spider).items():
        kept = work / f"{spider}-kept.db"
        if template is None:
            _remove_database(kept)
            shutil.copyfile(work / "at-head.db", kept)
        usages = []
        for run in range(runs + 1):
            database = kept
            if template is not None:
                database = work / f"{spider}-run.db"
                _remove_database(database)
                shutil.copyfile(template, database)
            warc_dir = work / "warc"
            shutil.rmtree(warc_dir, ignore_errors=True)
            usage = crawl(spider, replay_dir, database, warc_dir, work / "crawl.log")
            if run:  # the first run warms the caches (and, kept, archives the article)
                usages.append(usage)
        results[name] = usages
    return results


def _remove_database(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def import_times(work: Path, spider: str, top: int) -> tuple[float, list[tuple[str, float]]]:
    """One crawl (``head, archived 1``) under ``-X importtime``: the total import
    seconds of the crawl process and the `top` packages by their modules' own time."""
    replay_dir = work / "corpus" / spider
    environment = {
        **os.environ,
        "REPLAY_DIR": str(replay_dir),
        "DATABASE_URL": f"sqlite:///{work / f'{spider}-kept.db'}",
        "WARC_DIR": str(work / "warc"),
    }
    _with_bytecode_cache(environment)
    command = [sys.executable, "-X", "importtime", "-m", "scrapy", "crawl", spider]
    result = subprocess.run(
        command, cwd=ROOT, env=environment, capture_output=True, text=True, check=False
    )
    by_package: Counter[str] = Counter()
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        own, _, name = line.removeprefix("import time:").split("|")
        by_package[name.strip().split(".")[0]] += int(own) / 1e6
    return sum(by_package.values()), by_package.most_common(top)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs per situation")
    parser.add_argument("--spiders", default=",".join(SPIDERS))
    parser.add_argument("--top", type=int, default=12, help="packages in the import table")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    parser.add_argument(
        "--no-bytecode-cache",
        action="store_true",
        help="leave PYTHONDONTWRITEBYTECODE as the environment has it",
    )
    arguments = parser.parse_args()
    spiders = [name for name in arguments.spiders.split(",") if name]
    work = arguments.keep or Path(tempfile.mkdtemp(prefix="startup-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    global BYTECODE_CACHE
    if not arguments.no_bytecode_cache:
        BYTECODE_CACHE = work / "bytecode"
    try:
        print(f"CPU seconds (user + sys), median of {arguments.runs} runs, replay into SQLite")
        cached = "cached" if BYTECODE_CACHE else "as the environment says"
        print(f"(the project's bytecode: {cached})")
        header = ("spider", "situation", "crawl", "workers", "total", "wall")
        print("{:<12} {:<18} {:>6} {:>8} {:>6} {:>6}".format(*header))
        for spider in spiders:
            for name, usages in measure(work, spider, arguments.runs).items():
                process = statistics.median(u.process for u in usages)
                children = [u.children for u in usages if u.children is not None]
                shown = f"{statistics.median(children):8.2f}" if children else f"{'?':>8}"
                total = statistics.median(u.total for u in usages)
                wall = statistics.median(u.wall for u in usages)
                print(f"{spider:<12} {name:<18} {process:6.2f} {shown} {total:6.2f} {wall:6.2f}")
        total, packages = import_times(work, spiders[0], arguments.top)
        print(f"\nimports of one crawl ({spiders[0]}, head, archived 1): {total:.2f} s in all")
        for package, seconds in packages:
            print(f"  {package:<24} {seconds:6.3f} s")
    finally:
        if arguments.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
