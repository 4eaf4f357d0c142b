"""Benchmark: the crawl's memory and pace over one feed naming many article URLs.

    python bench/memory.py [--pages 100000] [--keep] [--corpus /tmp/...]

Generates a replay corpus of one site (매일일보): `pages` distinct articles and one
RSS feed listing them all, runs one real ``scrapy crawl`` over it into SQLite with
WARC capture on, samples the resident memory (RSS, from ``/proc``) of the crawl
process and the proportional set size (PSS) of its extraction workers every
second, and prints: RSS after warm-up, the peak, the slope over the run, pages/s
in each tenth of the articles stored, the ratio of the last tenth to the first, and
the articles stored.

Pages/s are counted from the articles in the database, read every second with the
RSS (a page's ``first_seen_at`` is its fetch time, before it waits for extraction,
so it would flatter the start); warm-up ends when the first tenth of the articles
is stored.

The corpus is honest but cheap: each page is a seed article of the site with its
inline scripts, styles and comments removed (the furniture extraction never reads;
about 16 KB left of 34-130 KB) and a distinct paragraph, id, title and canonical URL;
every page is a distinct article that extraction accepts and the archive stores
(the run fails unless all are stored). 100,000 pages take about 1.6 GB under /tmp,
deleted afterwards unless ``--keep``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import PUB_DATES, Template, templates  # noqa: E402
from news_archive.crawler.sites import SITES  # noqa: E402
from news_archive.vocabulary import Article  # noqa: E402

SITE = "maeil_ilbo"
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
# Furniture extraction never reads: inline scripts, styles, comments.
FURNITURE = re.compile(rb"<script\b.*?</script>|<style\b.*?</style>|<!--.*?-->", re.S | re.I)


def trimmed(template: Template) -> Template:
    """`template` without its inline scripts, styles and comments (its body
    container's opening found again in what is left)."""
    head, tail = template.body[: template.opening], template.body[template.opening :]
    head, tail = FURNITURE.sub(b"", head), FURNITURE.sub(b"", tail)
    return Template(template.site, head + tail, template.headers, len(head), template.url)


def generate(corpus: Path, pages: int, smallest: bool = False) -> int:
    """Write a replay directory of `pages` distinct articles of `SITE` and a feed
    listing them (from the smallest template only, if `smallest`: quicker to
    extract); the bytes written."""
    shutil.rmtree(corpus, ignore_errors=True)
    (corpus / "pages").mkdir(parents=True)
    site = SITES[SITE]
    found = [trimmed(t) for t in templates() if t.site == SITE]
    fetched_at = datetime.now(UTC)
    usable = []
    for template in found:
        url = site.article_url.format(id=999999)
        body = _page(template, url, 0)
        if isinstance(site.extract(url, body, template.headers, fetched_at), Article):
            usable.append(template)
    if not usable:
        raise SystemExit(f"no {SITE} template extracts once trimmed")
    if smallest:
        usable = [min(usable, key=lambda template: len(template.body))]
    pub_date = next(d for d in PUB_DATES if site.feed.parse_date(d))
    written = 0
    with (
        open(corpus / "manifest.jsonl", "w", encoding="utf-8") as manifest,
        open(corpus / "feed.xml", "w", encoding="utf-8") as feed,
    ):
        feed.write(
            "<?xml version='1.0' encoding='UTF-8'?><rss version='2.0'><channel>"
            f"<title>{SITE}</title>"
        )
        for number in range(pages):
            template = usable[number % len(usable)]
            url = site.article_url.format(id=1_000_000 + number)
            body = _page(template, url, number)
            file = f"pages/{number // 1000}/{number}.html"
            if number % 1000 == 0:
                (corpus / file).parent.mkdir()
            (corpus / file).write_bytes(body)
            written += len(body)
            line = {"url": url, "file": file, "status": 200, "headers": template.headers}
            manifest.write(json.dumps(line, ensure_ascii=False) + "\n")
            feed.write(
                f"<item><title>기사 {number}</title><link>{url}</link>"
                f"<pubDate>{pub_date}</pubDate></item>"
            )
        feed.write("</channel></rss>")
        headers = {"Content-Type": "application/rss+xml; charset=UTF-8"}
        line = {"url": site.feed_urls[0], "file": "feed.xml", "status": 200, "headers": headers}
        manifest.write(json.dumps(line) + "\n")
    return written + (corpus / "feed.xml").stat().st_size


def _page(template: Template, url: str, number: int) -> bytes:
    paragraph = (
        f"<p>메모리 측정 기사 {number}번의 고유한 문단입니다. "
        f"측정용 문장 {number * 7919 % 100003}, 일련 {number}.</p>"
    ).encode()
    body = template.body[: template.opening] + paragraph + template.body[template.opening :]
    # The page names its own article (rel=canonical, og:url), as a real page does.
    return body.replace(template.url.encode(), url.encode()) if template.url else body


# ------------------------------------------------------------------ sampling


def rss_bytes(pid: int) -> int:
    """Resident bytes of process `pid` (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/statm") as statm:
            return int(statm.read().split()[1]) * PAGE_SIZE
    except (OSError, IndexError, ValueError):
        return 0


def pss_bytes(pid: int) -> int:
    """Proportional set size of `pid`: its own pages, and its share of those it
    shares (a forked worker shares the crawl's, which RSS would count again)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, IndexError, ValueError):
        pass
    return 0


def children(pid: int) -> list[int]:
    """The child processes of `pid` (the crawl's extraction workers)."""
    found = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as listed:
                found += [int(child) for child in listed.read().split()]
    except OSError:
        pass
    return found


@dataclass
class Samples:
    """Samples, one a second: seconds since start, the crawl's RSS bytes, its
    workers' PSS bytes (summed), articles stored so far."""

    times: list[float] = field(default_factory=list)
    crawl: list[int] = field(default_factory=list)
    workers: list[int] = field(default_factory=list)
    stored: list[int] = field(default_factory=list)

    def take(self, pid: int, database: Path, started: float, stop: threading.Event) -> None:
        while not stop.wait(1.0):
            rss = rss_bytes(pid)
            if rss:
                self.times.append(time.monotonic() - started)
                self.crawl.append(rss)
                self.workers.append(sum(pss_bytes(child) for child in children(pid)))
                self.stored.append(stored_so_far(database))

    def warm(self, share: float) -> int:
        """The index of the first sample once `share` of the articles are stored."""
        goal = self.stored[-1] * share if self.stored else 0
        return next((i for i, count in enumerate(self.stored) if count >= goal and count), 0)

    def tenths(self) -> list[float]:
        """Pages/s in each tenth of the articles stored, from the first article stored
        (start-up is not pace), each tenth timed to the second it was reached."""
        total = self.stored[-1] if self.stored else 0
        reached = [next((t for t, n in zip(self.times, self.stored, strict=True) if n), 0.0)]
        for part in range(1, 11):
            goal = total * part / 10
            reached.append(
                next(t for t, n in zip(self.times, self.stored, strict=True) if n >= goal)
            )
        return [
            total / 10 / (reached[i + 1] - reached[i]) if reached[i + 1] > reached[i] else 0.0
            for i in range(10)
        ]


def stored_so_far(database: Path) -> int:
    """Articles in the crawl's SQLite file now (0 before it exists), read-only."""
    if not database.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=0.2) as connection:
            return connection.execute("SELECT count(*) FROM articles").fetchone()[0]
    except sqlite3.Error:
        return 0


def slope(times: list[float], values: list[int]) -> float:
    """Least-squares slope of `values` over `times` (units per second)."""
    n = len(times)
    if n < 2:
        return 0.0
    mean_t, mean_v = sum(times) / n, sum(values) / n
    variance = sum((t - mean_t) ** 2 for t in times)
    covariance = sum((t - mean_t) * (v - mean_v) for t, v in zip(times, values, strict=True))
    return covariance / variance if variance else 0.0


def crawl(
    corpus: Path, out: Path, settings: list[str], limit: float | None = None
) -> tuple[Samples, float, str]:
    """One ``scrapy crawl`` of the corpus into ``out/memory.db`` with capture into
    ``out/warc`` (stopped as by Ctrl-C after `limit` seconds, when given); its RSS
    samples, wall seconds and log."""
    env = {
        **os.environ,
        "REPLAY_DIR": str(corpus),
        "DATABASE_URL": f"sqlite:///{out / 'memory.db'}",
        "WARC_ENABLED": "1",
        "WARC_DIR": str(out / "warc"),
    }
    command = [sys.executable, "-m", "scrapy", "crawl", SITE, "-L", "INFO"]
    command += ["-s", "CONCURRENT_REQUESTS=32", "-s", "CONCURRENT_REQUESTS_PER_DOMAIN=32"]
    command += ["-s", "ARCHIVE_BATCH_SIZE=100", "-s", "LOGSTATS_INTERVAL=10"]
    # A feed naming 100,000 articles is about 13 MB: over the 8 MiB default a live
    # crawl of such a feed needs raised as well.
    command += ["-s", f"DOWNLOAD_MAXSIZE={64 * 1024 * 1024}"]
    for setting in settings:
        command += ["-s", setting]
    log = out / "crawl.log"
    samples, stop = Samples(), threading.Event()
    started = time.monotonic()
    with open(log, "w") as log_file:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stderr=log_file)
        sampler = threading.Thread(
            target=samples.take, args=(process.pid, out / "memory.db", started, stop)
        )
        sampler.start()
        try:
            code = process.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGINT)
            process.wait()
            code = 0  # cut short on purpose: its health check fails it
        stop.set()
        sampler.join()
    # The last batch is written as the process closes.
    samples.times.append(time.monotonic() - started)
    samples.crawl.append(0)
    samples.workers.append(0)
    samples.stored.append(stored_so_far(out / "memory.db"))
    if code != 0:
        print(log.read_text()[-3000:], file=sys.stderr)
        raise SystemExit(f"the crawl exited {code}")
    return samples, time.monotonic() - started, log.read_text()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=100_000)
    parser.add_argument("--keep", action="store_true", help="keep the corpus and the output")
    parser.add_argument("--corpus", type=Path, help="reuse (or write) the corpus here")
    parser.add_argument(
        "--warm-up", type=float, default=0.1, help="share of the articles stored in warm-up"
    )
    parser.add_argument(
        "--seconds", type=float, help="stop the crawl (as Ctrl-C does) after this many seconds"
    )
    parser.add_argument(
        "-s", dest="settings", action="append", default=[], help="a Scrapy setting NAME=VALUE"
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="news-archive-memory-"))
    corpus = args.corpus or work / "corpus"
    out = work / "out"
    out.mkdir()
    try:
        if not (corpus / "manifest.jsonl").is_file():
            started = time.monotonic()
            size = generate(corpus, args.pages)
            print(
                f"corpus: {args.pages} pages, {size / 1e6:.0f} MB in {corpus} "
                f"({time.monotonic() - started:.0f} s)"
            )
        print(f"load average before the crawl: {os.getloadavg()[0]:.2f}")
        samples, seconds, _ = crawl(corpus, out, args.settings, args.seconds)
        stored = samples.stored[-1]
        report(args, samples, seconds, stored)
        print(f"load average after the crawl: {os.getloadavg()[0]:.2f}")
        if args.keep:
            print(f"kept: {work}")
        return 0 if stored == args.pages or args.seconds else 1
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def report(args: argparse.Namespace, samples: Samples, seconds: float, stored: int) -> None:
    mib = 1024 * 1024
    warm = samples.warm(args.warm_up)
    # the last sample, taken after the process exited, has articles but no RSS
    times, crawl_rss = samples.times[warm:-1], samples.crawl[warm:-1]
    worker_rss = samples.workers[warm:-1]
    rates = samples.tenths()
    print(f"crawl: {seconds:.0f} s, {stored} of {args.pages} articles stored")
    print(
        f"crawl process RSS after warm-up ({args.warm_up:.0%} of the articles stored, "
        f"{times[0]:.0f} s): "
        f"{crawl_rss[0] / mib:.0f} MiB; at the end {crawl_rss[-1] / mib:.0f} MiB; "
        f"peak {max(samples.crawl) / mib:.0f} MiB; "
        f"slope after warm-up {slope(times, crawl_rss) / mib * 60:+.2f} MiB/min"
    )
    print(
        f"extraction workers' PSS (summed) after warm-up: {worker_rss[0] / mib:.0f} MiB; "
        f"peak {max(samples.workers) / mib:.0f} MiB; "
        f"slope {slope(times, worker_rss) / mib * 60:+.2f} MiB/min"
    )
    print("pages/s per tenth: " + ", ".join(f"{rate:.1f}" for rate in rates))
    if len(rates) == 10 and rates[0]:
        print(f"last tenth / first tenth: {rates[-1] / rates[0]:.2f}")
    else:
        # Articles are written in batches (ARCHIVE_BATCH_SIZE, 100 here): a tenth of
        # a small run may arrive within one second.
        print("last tenth / first tenth: n/a (a tenth stored within one sample)")


if __name__ == "__main__":
    sys.exit(main())
