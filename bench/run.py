"""Benchmark: a generated replay corpus crawled end to end into SQLite, against
trafilatura alone on the same pages on one core.

    python bench/run.py [--pages 2000] [--rounds 3] [--baseline REV] [--profile] [--keep]

Prints pages/s end to end (Scrapy + extraction + storage, in replay mode),
pages/s of our extraction alone, pages/s of trafilatura alone (JSON with
metadata, comments off: what a trafilatura user would run), the ratio of the
end-to-end rate to trafilatura alone, the crawl's peak RSS and the database
bytes per article. Timings vary by about ±30 % on a shared 2-core machine, even
within minutes: with ``--rounds N`` every figure is measured N times, round after
round, and the ratios are taken within each round, their median printed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from news_archive.crawler.extract.page import load_page  # noqa: E402
from news_archive.crawler.sites import SITES, Site  # noqa: E402
from news_archive.vocabulary import Rejection  # noqa: E402
from tests.golden import SEEDS, expected_of, golden_cases  # noqa: E402

Generated = dict[str, list[tuple[str, bytes, dict[str, str]]]]  # site -> (url, body, headers)
# The feed's pubDate, in whichever of the usual forms the site's feed parser reads.
PUB_DATES = ("Sun, 22 Nov 2026 00:00:00 +0000", "2026-11-22 09:00:00")


@dataclass(frozen=True, slots=True)
class Template:
    site: str
    body: bytes
    headers: dict[str, str]
    opening: int  # byte offset just after the body container's opening tag
    url: str = ""  # the template article's canonical URL, named in the page itself


def body_opening(site: Site, url: str, body: bytes, headers: dict[str, str]) -> int | None:
    """The byte offset right after the opening tag of the page's body container (as
    the site locates it), found by its tag and id or first class; None if unsure."""
    page = load_page(site.name, url, body, headers, datetime.now(UTC))
    if isinstance(page, Rejection):
        return None
    container = site.locate(page).container
    if container is None:
        return None
    tag = re.escape(container.tag.encode())
    if container.get("id"):
        attribute = rb"\bid=[\"']" + re.escape(container.get("id", "").encode()) + rb"[\"']"
    elif container.get("class"):
        name = re.escape(container.get("class", "").split()[0].encode())
        attribute = rb"\bclass=[\"'](?:[^\"']*\s)?" + name + rb"[\s\"']"
    else:
        return None
    match = re.search(rb"<" + tag + rb"\b[^>]*" + attribute + rb"[^>]*>", body)
    return match.end() if match else None


def templates(seeds: Path = SEEDS) -> list[Template]:
    """Distinct day-1 fixture pages (directory named after the site) that extract to
    an article, as page templates; UTF-8 only, so that the inserted paragraph needs
    no re-encoding."""
    found = []
    for case in golden_cases(seeds):
        page = case.page
        # The declared sites only: the configured ones (seeds/sites.toml) would need
        # SITES_FILE in the benchmark's crawls, and run the same profiles' code.
        if page.site not in SITES:
            continue
        if page.path.parent.parent.name != page.site or ".amp" in page.path.name:
            continue
        if "utf-8" not in page.headers.get("Content-Type", "").lower():
            continue
        expected = expected_of(case)
        if expected is None or "rejected" in expected:
            continue
        body = page.path.read_bytes()
        opening = body_opening(SITES[page.site], page.url, body, page.headers)
        if opening is not None:
            canonical = SITES[page.site].canonical_url(page.url) or ""
            found.append(Template(page.site, body, page.headers, opening, canonical))
    return found


def generate(corpus: Path, pages: int, seeds: Path = SEEDS) -> Generated:
    """Write one replay directory per registered site that has page templates, with
    `pages` articles in all (round robin over those sites), each with a distinct id
    and a distinct paragraph, and a feed listing them."""
    shutil.rmtree(corpus, ignore_errors=True)
    by_site: dict[str, list[Template]] = {}
    for template in templates(seeds):
        by_site.setdefault(template.site, []).append(template)
    sites = [name for name in SITES if by_site.get(name)]
    generated: Generated = {name: [] for name in sites}
    for number in range(pages):
        name = sites[number % len(sites)]
        template = by_site[name][number // len(sites) % len(by_site[name])]
        url = SITES[name].article_url.format(id=900000 + number)
        paragraph = (
            f"<p>벤치마크 기사 {number}번의 고유한 문단입니다. "
            f"측정용 문장 {number * 7919 % 100003}.</p>"
        ).encode()
        body = template.body[: template.opening] + paragraph + template.body[template.opening :]
        # The page names its own article (rel=canonical, og:url): a page claiming
        # another article than its URL names is a recorded canonical_conflict.
        if template.url:
            body = body.replace(template.url.encode(), url.encode())
        generated[name].append((url, body, template.headers))
    for name, entries in generated.items():
        _write_replay(corpus / name, SITES[name], entries)
    return generated


def _write_replay(
    directory: Path, site: Site, entries: list[tuple[str, bytes, dict[str, str]]]
) -> None:
    (directory / "pages").mkdir(parents=True)
    lines = []
    items = []
    pub_date = next((d for d in PUB_DATES if site.feed.parse_date(d)), None)
    for index, (url, body, headers) in enumerate(entries):
        file = f"pages/{index}.html"
        (directory / file).write_bytes(body)
        lines.append({"url": url, "file": file, "status": 200, "headers": headers})
        date = f"<pubDate>{pub_date}</pubDate>" if pub_date else ""
        items.append(f"<item><title>기사 {index}</title><link>{url}</link>{date}</item>")
    feed = (
        "<?xml version='1.0' encoding='UTF-8'?><rss version='2.0'><channel>"
        f"<title>{site.name}</title>{''.join(items)}</channel></rss>"
    )
    (directory / "feed.xml").write_text(feed, encoding="utf-8")
    lines.append(
        {
            "url": site.feed_urls[0],
            "file": "feed.xml",
            "status": 200,
            "headers": {"Content-Type": "application/rss+xml; charset=UTF-8"},
        }
    )
    (directory / "manifest.jsonl").write_text(
        "\n".join(json.dumps(line, ensure_ascii=False) for line in lines) + "\n", "utf-8"
    )


# The folders installed inside the `news_archive` package (archive/ is the package).
PACKAGES = ("cli", "crawler", "migrations", "storage")


@dataclass(frozen=True, slots=True)
class Code:
    """The code a crawl runs: this checkout, or an earlier commit's files (`--baseline`)."""

    root: Path  # the tree with scrapy.cfg: the crawl's working directory
    python_path: str = ""  # where its `news_archive` package is found first

    @classmethod
    def at(cls, revision: str, directory: Path) -> Code:
        """The files of `revision`, laid out as the installed package maps them
        (``news_archive`` = archive/, with crawler/, storage/, ... inside), ahead of
        this checkout's editable install on the path."""
        tree, package = directory / "tree", directory / "site" / "news_archive"
        shutil.rmtree(directory, ignore_errors=True)
        tree.mkdir(parents=True)
        archived = subprocess.run(
            ["git", "-C", str(ROOT), "archive", revision], check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archived, check=True)
        shutil.copytree(tree / "archive", package)
        for name in PACKAGES:
            (package / name).symlink_to(tree / name)
        return cls(tree, str(package.parent))

    def compile(self) -> None:
        """Compile its modules to bytecode, kept beside them, as pip does when it
        installs a wheel: the timed crawls then load them, as an installed program's
        do, instead of compiling the project's modules at every start (about 0.2 s
        of CPU a process where ``PYTHONDONTWRITEBYTECODE`` is set, as in this
        workplace's shells)."""
        trees = [self.root / name for name in ("archive", *PACKAGES)]
        if self.python_path:
            trees.append(Path(self.python_path) / "news_archive")
        subprocess.run(
            [sys.executable, "-m", "compileall", "-q", *map(str, trees)],
            env=installed_environment(),
            check=True,
        )


HERE = Code(ROOT)


def installed_environment(**variables: str) -> dict[str, str]:
    """This process's environment with `variables`, for a process that runs as an
    installed program does: it keeps the bytecode it compiles, even where
    ``PYTHONDONTWRITEBYTECODE`` is set."""
    environment = {**os.environ, **variables}
    environment.pop("PYTHONDONTWRITEBYTECODE", None)
    return environment


def crawl(
    corpus: Path,
    database: Path,
    warc: Path | None = None,
    *,
    code: Code = HERE,
    together: bool = False,
    profile: Path | None = None,
) -> tuple[float, int]:
    """Crawl every site of the corpus (one replay directory per site) into one SQLite
    file, capturing WARC files into `warc` when given, one spider after the other or
    (`together`) all at once, as separate cron jobs would; wall seconds and the peak
    RSS (KiB) of the largest of these crawl processes. `profile`: the first spider's
    crawl runs under cProfile, its statistics written there."""
    started = time.perf_counter()
    processes = []
    peaks: list[Path] = []
    for site in sorted(p.parent.name for p in corpus.glob("*/manifest.jsonl")):
        env = installed_environment(
            REPLAY_DIR=str(corpus / site),
            DATABASE_URL=f"sqlite:///{database}",
            WARC_ENABLED="1" if warc else "0",
            WARC_DIR=str(warc or ""),
        )
        if code.python_path:
            env["PYTHONPATH"] = code.python_path
        peaks.append(database.with_name(f"{database.stem}-{site}.peak"))
        runner = [sys.executable, "-c", PEAK_RSS, str(peaks[-1]), sys.executable]
        if profile is not None and not processes:
            runner += ["-m", "cProfile", "-o", str(profile)]
        process = subprocess.Popen(
            [
                *runner,
                "-m",
                "scrapy",
                "crawl",
                site,
                "-L",
                "WARNING",
                "-s",
                "CONCURRENT_REQUESTS=32",
                "-s",
                "CONCURRENT_REQUESTS_PER_DOMAIN=32",
                "-s",
                "ARCHIVE_BATCH_SIZE=100",
            ],
            cwd=code.root,
            env=env,
        )
        processes.append(process)
        if not together and process.wait() != 0:
            raise subprocess.CalledProcessError(process.returncode, process.args)
    for process in processes:
        if process.wait() != 0:
            raise subprocess.CalledProcessError(process.returncode, process.args)
    elapsed = time.perf_counter() - started
    return elapsed, max(int(peak.read_text()) for peak in peaks)


# Runs a command and writes the peak RSS (KiB) of its process tree to a file.  A crawl
# is started through it, not straight from the benchmark: a process forked from
# the benchmark, which holds every generated page, counts the benchmark's memory as
# its own until it runs the crawl (Linux keeps the high-water mark across exec), so
# the benchmark's own size showed as the crawl's peak.
PEAK_RSS = """
import resource, subprocess, sys
code = subprocess.call(sys.argv[2:])
with open(sys.argv[1], "w") as file:
    file.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(code)
"""


# Where a crawl process's time goes, by the file each function is defined in (the
# first matching pattern names the layer; `select.epoll.poll` is the reactor waiting).
LAYERS = (
    ("waiting (reactor idle: extraction, threads, I/O)", ("method 'poll' of 'select.epoll'",)),
    ("storage: SQL and SQLite", ("sqlalchemy", "sqlite3", "/storage/", "psycopg")),
    ("WARC capture (records, digests, gzip)", ("warcio", "zlib", "crawler/warc.py", "capture.py")),
    ("pipeline", ("crawler/pipelines.py",)),
    ("extraction pool (pipes, pickling)", ("extraction.py", "multiprocessing", "pickle")),
    ("replay (reading the corpus)", ("replay.py", "BufferedReader")),
    ("file and pipe I/O", ("posix.read", "posix.write")),
    ("start-up (imports, compiling)", ("<frozen importlib", "marshal", "builtins.compile")),
    ("spider, site rules, incremental", ("crawler/spiders/", "crawler/sites/", "incremental.py")),
    (
        "Scrapy, Twisted, asyncio",
        (
            *("scrapy", "twisted", "asyncio", "w3lib", "parsel", "lxml", "pydispatch"),
            *("_contextvars", "weakref", "selectors"),
        ),
    ),
)


def profile_by_layer(path: Path) -> list[tuple[str, float]]:
    """Seconds of the profiled crawl by layer (own time of each function), largest
    first, with the rest as "other" (built-ins such as isinstance, logging, re:
    called from every layer)."""
    import pstats

    stats = pstats.Stats(str(path)).stats  # type: ignore[attr-defined]
    seconds: dict[str, float] = {}
    for (filename, _, function), (_, _, own, _, _) in stats.items():
        where = f"{filename} {function}"
        layer = next(
            (name for name, patterns in LAYERS if any(p in where for p in patterns)), "other"
        )
        seconds[layer] = seconds.get(layer, 0.0) + own
    return sorted(seconds.items(), key=lambda item: -item[1])


def ours_alone(generated: Generated) -> float:
    started = time.perf_counter()
    fetched_at = datetime.now(UTC)
    for site, entries in generated.items():
        for url, body, headers in entries:
            SITES[site].extract(url, body, headers, fetched_at)
    return time.perf_counter() - started


def trafilatura_alone(generated: Generated) -> float:
    """trafilatura on decoded text (never raw bytes: FINDINGS.md), JSON with metadata."""
    import trafilatura

    texts = [body.decode("utf-8") for entries in generated.values() for _, body, _ in entries]
    started = time.perf_counter()
    for text in texts:
        trafilatura.extract(text, output_format="json", with_metadata=True, include_comments=False)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=2000)
    parser.add_argument("--keep", action="store_true", help="keep bench/corpus and bench/out")
    parser.add_argument(
        "--baseline",
        metavar="REV",
        help="also crawl with the code of this commit, side by side (e.g. d09db2e)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="measure everything this many times, one round after the other, and "
        "print the median of each figure and of each round's ratios (the machine's "
        "speed drifts: a ratio is taken within a round)",
    )
    parser.add_argument(
        "--profile", action="store_true", help="where one crawl's time goes, by layer"
    )
    args = parser.parse_args()
    corpus, out = ROOT / "bench" / "corpus", ROOT / "bench" / "out"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    generated = generate(corpus, args.pages)
    pages = args.pages
    baseline = Code.at(args.baseline, out / "baseline") if args.baseline else None
    for code in (HERE, baseline):
        if code is not None:
            code.compile()

    database, warc = out / "bench.db", out / "warc"
    rounds: list[dict[str, float]] = []
    peak_rss_kib = 0
    for number in range(max(1, args.rounds)):
        # Round 0's capture crawl is kept: its database and WARC files are measured.
        kept = number == 0
        own = out / f"round-{number}"
        own.mkdir()
        seconds: dict[str, float] = {}
        seconds["plain"], _ = crawl(corpus, own / "plain.db")
        seconds["captured"], peak = crawl(
            corpus, database if kept else own / "bench.db", warc if kept else own / "warc"
        )
        peak_rss_kib = max(peak_rss_kib, peak)
        seconds["together"], _ = crawl(
            corpus, own / "together.db", own / "warc-together", together=True
        )
        if baseline is not None:
            seconds["baseline"], _ = crawl(
                corpus, own / "baseline.db", own / "warc-baseline", code=baseline
            )
            seconds["baseline_together"], _ = crawl(
                corpus, own / "baseline-together.db", own / "warc-bt", code=baseline, together=True
            )
        seconds["ours"] = ours_alone(generated)
        seconds["trafilatura"] = trafilatura_alone(generated)
        shutil.rmtree(own)
        rounds.append(seconds)
        if args.rounds > 1:
            print(
                f"round {number + 1}: with capture / trafilatura alone "
                f"{seconds['trafilatura'] / seconds['captured']:.2f} one after the other, "
                f"{seconds['trafilatura'] / seconds['together']:.2f} at once",
                flush=True,
            )

    def rate(key: str) -> float:
        """Pages/s of `key`, the median over the rounds."""
        return pages / statistics.median(r[key] for r in rounds)

    def ratio(key: str, to: str) -> float:
        """The rate of `key` over the rate of `to`, within each round; the median."""
        return statistics.median(r[to] / r[key] for r in rounds)

    import sqlite3

    with sqlite3.connect(database) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        stored = connection.execute("SELECT count(*) FROM articles").fetchone()[0]
    database_bytes = sum(p.stat().st_size for p in out.glob("bench.db*"))
    warc_bytes = sum(p.stat().st_size for p in warc.rglob("*.warc.gz"))

    from news_archive.crawler.reextract import reextract
    from news_archive.storage.archive import Archive

    started = time.perf_counter()
    archive = Archive.open(f"sqlite:///{database}", migrate=False)
    try:
        counts = reextract(archive, warc, progress=False)
    finally:
        archive.close()
    reextract_seconds = time.perf_counter() - started
    trafilatura_rate = rate("trafilatura")
    plain_rate, captured_rate, together_rate = rate("plain"), rate("captured"), rate("together")
    reextract_rate = counts["targets"] / reextract_seconds
    median = f", the median of {len(rounds)} rounds" if len(rounds) > 1 else ""
    print(f"pages: {pages} generated, {stored} stored{median}")
    print(
        f"end to end without capture ({len(generated)} scrapy crawls, replay → SQLite): "
        f"{plain_rate:.1f} pages/s (process start-up included)"
    )
    print(
        f"end to end with WARC capture: {captured_rate:.1f} pages/s "
        f"(capture costs {100 * (1 - ratio('captured', 'plain')):.0f} %)"
    )
    spiders = len(generated)
    print(f"end to end with capture, the {spiders} spiders at once: {together_rate:.1f} pages/s")
    print(f"our extraction alone, one core: {rate('ours'):.1f} pages/s")
    print(f"trafilatura alone, one core (json + metadata): {trafilatura_rate:.1f} pages/s")
    print(f"ratio end to end (no capture) / trafilatura alone: {ratio('plain', 'trafilatura'):.2f}")
    print(
        f"ratio end to end with capture / trafilatura alone: "
        f"{ratio('captured', 'trafilatura'):.2f} one spider after the other, "
        f"{ratio('together', 'trafilatura'):.2f} at once"
    )
    if baseline is not None:
        print(
            f"baseline {args.baseline}, end to end with capture: {rate('baseline'):.1f} pages/s, "
            f"at once {rate('baseline_together'):.1f} pages/s; ratio to trafilatura alone "
            f"{ratio('baseline', 'trafilatura'):.2f} and "
            f"{ratio('baseline_together', 'trafilatura'):.2f}"
        )
        print(
            f"ratio end to end with capture / baseline {args.baseline}: "
            f"{ratio('captured', 'baseline'):.2f} one after the other, "
            f"{ratio('together', 'baseline_together'):.2f} at once, "
            f"{ratio('together', 'baseline'):.2f} at once against one after the other"
        )
    print(f"ratio our extraction / trafilatura alone: {ratio('ours', 'trafilatura'):.2f}")
    print(
        f"re-extraction from WARC, {os.cpu_count()} processes: {reextract_rate:.1f} pages/s "
        f"({counts['targets']} articles, {dict(counts)}); "
        f"ratio to trafilatura alone on one core: {reextract_rate / trafilatura_rate:.2f}"
    )
    print(f"peak RSS of a crawl: {peak_rss_kib / 1024:.0f} MiB")
    print(
        f"database: {database_bytes / stored:.0f} bytes per article "
        f"({database_bytes / 1e6:.1f} MB for {stored})"
    )
    print(f"WARC: {warc_bytes / stored:.0f} bytes per article ({warc_bytes / 1e6:.1f} MB, gzip)")
    if args.profile:
        profile = out / "crawl.prof"
        crawl(corpus, out / "profiled.db", out / "warc-profiled", profile=profile)
        layers = profile_by_layer(profile)
        total = sum(seconds for _, seconds in layers)
        print(f"profile of one crawl process (cProfile, {total:.1f} s own time):")
        for layer, seconds in layers:
            print(f"  {100 * seconds / total:4.1f} %  {layer}")
    if not args.keep:
        shutil.rmtree(corpus, ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)
    return 0 if stored == pages else 1


if __name__ == "__main__":
    sys.exit(main())
