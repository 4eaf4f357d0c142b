"""Benchmark: Korean search at 100,000 articles on SQLite and PostgreSQL.

    python bench/search.py [--articles 100000] [--backends sqlite,postgres]
                           [--runs 20] [--baseline] [--keep DIR]

Builds an archive of generated Korean news articles through the storage facade
(`Archive.articles.store`, as a crawl stores them), then times
`archive.reads.search` (warm, in-process, first 20 ranked hits) per query class:
one syllable, two syllables common, rarer and mid (in 3-7 % of the articles),
three or more, a phrase, two words ANDed, an English token. Prints p50/p95 per
class, hits returned, the index size per article, the time to index every
article again, and the wall time of `news-archive search` (start-up included).
With `--baseline` the same queries also run through the search of commit
5b48c05 (trigram FTS5 / pg_trgm, the implementation before the bigram index),
side by side on the same archive.

The last lines are one summary per backend::

    search sqlite 100000 articles: p95 ms 1ch 4.1 2ch 2.3 3ch 1.9 phrase 2.2 and 3.0 en 1.0

`--keep DIR` keeps the SQLite file (and the PostgreSQL database) and reuses an
archive of the same size on the next run. PostgreSQL: 127.0.0.1:5432, user
postgres (override with --postgres-url); the database is created if missing.
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from news_archive.storage import fulltext  # noqa: E402
from news_archive.storage.archive import Archive  # noqa: E402
from news_archive.vocabulary import Article  # noqa: E402

BASELINE_COMMIT = "5b48c05"
POSTGRES_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=test connect_timeout=5"
POSTGRES_DATABASE = "news_archive_search_bench"

# Query classes, three queries each (timed `--runs` times each, after one warm-up).
QUERIES: dict[str, tuple[str, ...]] = {
    "1ch": ("협", "노", "금"),
    "2ch": ("정부", "기업", "시장"),  # in a large share of the articles
    "2rare": ("노인", "금리", "특허"),  # topic words: in a sixth of the articles
    # In 3 to 7 % of the articles: below PostgreSQL's default statistics' common tokens.
    "2mid": ("얘기", "고호", "가토"),
    "3ch": ("카카오", "반도체", "삼성전자"),
    "phrase": ('"협력 방안"', '"금리 인상"', '"인공지능 서비스"'),
    "and": ("삼성전자 반도체", "정부 노인", "SKT 요금제"),
    "en": ("SKT", "ESG", "HBM4"),
}
SUMMARY = ("1ch", "2ch", "3ch", "phrase", "and", "en")

# ------------------------------------------------------------------ the corpus

TOPICS: dict[str, tuple[str, ...]] = {
    "산업": ("삼성전자", "반도체", "메모리", "HBM4", "수출", "설비", "투자", "공장", "양산"),
    "금융": ("금리", "가계", "대출", "은행", "금융당국", "인상", "동결", "물가", "DSR"),
    "통신": ("SKT", "카카오", "요금제", "5G", "가입자", "인공지능", "서비스", "통신사", "AI"),
    "복지": ("노인", "돌봄", "복지", "지자체", "어르신", "지원", "봉사", "김장", "ESG"),
    "정책": ("정부", "규제", "법안", "국회", "예산", "발표", "추진", "정책", "장관"),
    "기술": ("특허", "연구", "개발", "협력", "방안", "플랫폼", "데이터", "LLM", "기술"),
}
COMMON = ("기업", "시장", "정부", "올해", "지난해", "업계", "관계자", "계획", "확대", "분야")
PARTICLES = ("", "", "은", "는", "이", "가", "을", "를", "의", "에", "에서", "와", "과", "로", "도")
ENDINGS = ("밝혔다", "설명했다", "전망이다", "추진한다", "발표했다", "강조했다", "나섰다", "늘었다")
PHRASES = ("협력 방안을 논의했다", "금리 인상을 검토한다", "인공지능 서비스를 선보였다")
AUTHORS = ("박효길", "이지은", "김민수", "최정훈", "정다은", "한승우", "오세영", "윤지호")
SYLLABLES = "가나다라마바사아자차카타파하거너더러머버서어저처커터퍼허고노도로모보소오조초코토포호"


def _real_words() -> list[str]:
    """The eojeol of the two real articles in seeds/source: real Korean to mix in."""
    words: list[str] = []
    for path in sorted((ROOT / "seeds" / "source").glob("*.txt")):
        words += [word for word in path.read_text(encoding="utf-8").split() if len(word) > 1]
    return words


def articles(count: int, seed: int = 20261130) -> Iterator[Article]:
    """`count` generated articles: topic words, common words, a long tail of rare
    made-up nouns, real eojeol from the seed articles, particles and endings."""
    rng = random.Random(seed)
    real = _real_words()
    rare = ["".join(rng.choices(SYLLABLES, k=rng.choice((2, 3)))) for _ in range(20_000)]
    start = datetime(2021, 1, 1, tzinfo=UTC)
    fetched = datetime(2026, 11, 30, tzinfo=UTC)
    topics = list(TOPICS)
    for number in range(1, count + 1):
        topic = rng.choice(topics)
        words = TOPICS[topic]

        def eojeol(words: tuple[str, ...] = words) -> str:
            roll = rng.random()
            if roll < 0.3:
                word = rng.choice(words)
            elif roll < 0.45:
                word = rng.choice(COMMON) if rng.random() < 0.25 else rng.choice(real)
                return word
            elif roll < 0.7:
                word = rng.choice(real)
                return word
            else:
                word = rng.choice(rare)
            return word + rng.choice(PARTICLES)

        sentences = []
        for _ in range(rng.randint(6, 28)):
            sentence = " ".join(eojeol() for _ in range(rng.randint(6, 13)))
            if rng.random() < 0.02:
                sentence += " " + rng.choice(PHRASES)
            else:
                sentence += " " + rng.choice(ENDINGS)
            sentences.append(sentence + ".")
        site = "maeil_ilbo" if number % 2 else "skt_insight"
        url = (
            f"https://www.m-i.kr/news/articleView.html?idxno={number}"
            if site == "maeil_ilbo"
            else f"https://news.sktelecom.com/{number}"
        )
        title = " ".join(eojeol() for _ in range(rng.randint(4, 8))).strip()
        yield Article(
            site=site,
            url=url,
            fetched_url=url,
            fetched_at=fetched,
            title=title,
            body="\n".join(sentences),
            published_at=start + timedelta(minutes=number * 26),
            published_raw="",
            subtitles=(),
            authors=(rng.choice(AUTHORS),),
            section=topic,
            tags=tuple(rng.sample(words, 2)),
            images=(),
            language="ko",
            sources={},
        )


# ------------------------------------------------------------------ databases


def postgres_url(base: str | None) -> str:
    import psycopg

    if base:
        return base
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
        exists = admin.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (POSTGRES_DATABASE,)
        ).fetchone()
        if not exists:
            admin.execute(
                f"CREATE DATABASE {POSTGRES_DATABASE} TEMPLATE template0 "
                "ENCODING 'UTF8' LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8'"
            )
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{POSTGRES_DATABASE}"


def drop_postgres() -> None:
    import psycopg

    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {POSTGRES_DATABASE} WITH (FORCE)")


def build(url: str, count: int) -> float | None:
    """Store `count` articles through the facade unless the archive has them
    already; seconds taken (None: reused)."""
    archive = Archive.open(url)
    try:
        have = archive.articles.count()
        if have == count:
            return None
        if have:
            raise SystemExit(f"{archive.url} holds {have} articles, not {count}: remove it first")
        started = time.perf_counter()
        batch: list[Article] = []
        for done, article in enumerate(articles(count), 1):
            batch.append(article)
            if len(batch) == 500:
                archive.articles.store(batch)
                batch = []
            if done % 10_000 == 0:
                elapsed = time.perf_counter() - started
                print(f"  stored {done} articles ({elapsed:.0f} s)", flush=True)
        archive.articles.store(batch)
        if archive.engine.dialect.name == "postgresql":
            with archive.engine.connect() as connection:
                connection.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
                    "VACUUM ANALYZE"
                )
        return time.perf_counter() - started
    finally:
        archive.engine.dispose()


def reindex(archive: Archive) -> float:
    """Seconds to index every article again, as migration 0010 does."""
    with archive.engine.begin() as connection:
        started = time.perf_counter()
        if connection.dialect.name == "sqlite":
            connection.exec_driver_sql("DELETE FROM articles_search")
            fulltext.index_all(connection)
            # Merged into one segment, as after migration 0010 (a delete leaves
            # its entries until FTS5 merges them).
            connection.exec_driver_sql(
                "INSERT INTO articles_search (articles_search) VALUES ('optimize')"
            )
        else:
            connection.exec_driver_sql("DROP INDEX ix_articles_search_tokens")
            connection.exec_driver_sql("TRUNCATE articles_search")
            fulltext.index_all(connection)
            connection.exec_driver_sql(
                "CREATE INDEX ix_articles_search_tokens ON articles_search USING gin (tokens)"
            )
        seconds = time.perf_counter() - started
    if archive.engine.dialect.name == "postgresql":
        with archive.engine.connect() as connection:
            connection.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
                "VACUUM ANALYZE articles_search"
            )
    return seconds


def index_bytes(archive: Archive) -> int:
    with archive.engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            return int(
                connection.exec_driver_sql(
                    "SELECT pg_total_relation_size('articles_search')"
                ).scalar_one()
            )
        try:
            return int(
                connection.exec_driver_sql(
                    "SELECT sum(pgsize) FROM dbstat WHERE name LIKE 'articles_search%'"
                ).scalar_one()
            )
        except Exception:  # SQLite built without dbstat: the stored bytes
            total = 0
            for sql in (
                "SELECT sum(length(block)) FROM articles_search_data",
                "SELECT sum(length(c0) + length(c1)) FROM articles_search_content",
                "SELECT sum(length(sz)) FROM articles_search_docsize",
            ):
                total += int(connection.exec_driver_sql(sql).scalar_one() or 0)
            return total


# ------------------------------------------------------------------ timing


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def time_queries(
    run: Callable[[str], list[Any]], runs: int
) -> dict[str, tuple[float, float, float]]:
    """Per class: p50 ms, p95 ms, mean hits returned."""
    results = {}
    for name, queries in QUERIES.items():
        timings: list[float] = []
        hits: list[int] = []
        for query in queries:
            hits.append(len(run(query)))  # warm-up
            for _ in range(runs):
                started = time.perf_counter()
                run(query)
                timings.append((time.perf_counter() - started) * 1000)
        results[name] = (
            statistics.median(timings),
            percentile(timings, 0.95),
            sum(hits) / len(hits),
        )
    return results


def ranked(archive: Archive) -> Callable[[str], list[Any]]:
    """The first 20 ranked hits, through the facade."""
    return lambda query: archive.reads.search(query, limit=20)


def baseline_search(archive: Archive) -> Callable[[str], list[Any]]:
    """Commit 5b48c05's search function, on its own index objects (created here)."""
    source = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{BASELINE_COMMIT}:storage/search.py"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    module = types.ModuleType("news_archive.storage.search_5b48c05")
    module.__dict__["__file__"] = "search_5b48c05.py"
    sys.modules[module.__name__] = module
    exec(compile(source, module.__dict__["__file__"], "exec"), module.__dict__)
    migration = __import__(
        "news_archive.migrations.versions.0003_search_and_views", fromlist=["SQLITE_FTS"]
    )
    with archive.engine.begin() as connection:
        if connection.dialect.name == "sqlite":
            exists = connection.exec_driver_sql(
                "SELECT count(*) FROM sqlite_master WHERE name = 'articles_fts'"
            ).scalar_one()
            statements = [] if exists else migration.SQLITE_FTS
        else:
            statements = [
                statement.replace("CREATE INDEX", "CREATE INDEX IF NOT EXISTS")
                for statement in migration.POSTGRES_TRIGRAM
            ]
        started = time.perf_counter()
        for statement in statements:
            connection.exec_driver_sql(statement)
        if statements:
            print(f"  today's index built in {time.perf_counter() - started:.0f} s", flush=True)
    engine = archive.engine
    return lambda query: module.search(engine, query.replace('"', ""), limit=20)


def cli_wall(url: str, runs: int = 9) -> tuple[float, float]:
    """p50 and max wall ms of `news-archive search 삼성전자 반도체`, start-up included."""
    script = Path(sys.executable).with_name("news-archive")
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(
            [str(script), "search", "삼성전자 반도체", "--database-url", url],
            check=True,
            capture_output=True,
            cwd=tempfile.gettempdir(),
        )
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings), max(timings)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=100_000)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--baseline", action="store_true", help="also today's search (5b48c05)")
    parser.add_argument("--baseline-runs", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="keep (and reuse) the archives in DIR")
    parser.add_argument("--postgres-url")
    arguments = parser.parse_args()
    directory = arguments.keep or Path(tempfile.mkdtemp(prefix="search-bench-"))
    directory.mkdir(parents=True, exist_ok=True)
    summaries = []
    for backend in arguments.backends.split(","):
        if backend == "sqlite":
            url = f"sqlite:///{directory / f'search-{arguments.articles}.db'}"
        else:
            if not arguments.keep and not arguments.postgres_url:
                drop_postgres()
            url = postgres_url(arguments.postgres_url)
        print(f"{backend}: building {arguments.articles} articles", flush=True)
        built = build(url, arguments.articles)
        archive = Archive.open(url, migrate=False)
        try:
            seconds = reindex(archive)
            size = index_bytes(archive)
            ours = time_queries(ranked(archive), arguments.runs)
            today = (
                time_queries(baseline_search(archive), arguments.baseline_runs)
                if arguments.baseline
                else None
            )
        finally:
            archive.engine.dispose()
        wall = cli_wall(url)
        print(f"\n{backend}, {arguments.articles} articles")
        if built is not None:
            print(f"  stored through the facade in {built:.0f} s (index written with them)")
        per_article = size / arguments.articles
        print(f"  index: {per_article:.0f} bytes/article; indexed again in {seconds:.0f} s")
        print(f"  news-archive search wall: p50 {wall[0]:.0f} ms, max {wall[1]:.0f} ms")
        header = f"  {'class':7} {'queries':42} {'hits':>5} {'p50 ms':>8} {'p95 ms':>8}"
        if today:
            header += f" | {'today p50':>10} {'today p95':>10} {'hits':>5} {'p95 ratio':>9}"
        print(header)
        for name, (p50, p95, hits) in ours.items():
            line = f"  {name:7} {', '.join(QUERIES[name]):42} {hits:5.1f} {p50:8.2f} {p95:8.2f}"
            if today:
                t50, t95, thits = today[name]
                line += f" | {t50:10.1f} {t95:10.1f} {thits:5.1f} {t95 / p95:8.0f}x"
            print(line)
        worst_2ch = max(ours["2ch"][1], ours["2rare"][1], ours["2mid"][1])
        figures = {name: ours[name][1] for name in SUMMARY} | {"2ch": worst_2ch}
        summaries.append(
            f"search {backend} {arguments.articles} articles: p95 ms "
            + " ".join(f"{name} {figures[name]:.1f}" for name in SUMMARY)
        )
        if backend == "postgres" and not arguments.keep and not arguments.postgres_url:
            drop_postgres()
    print()
    for line in summaries:
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
