"""ArchiveRepository on both backends: de-duplication, versions, batches,
aliases, runs, errors and concurrent writers."""

from __future__ import annotations

import dataclasses
import multiprocessing
from datetime import UTC, datetime
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from types import SimpleNamespace

import pytest
from sqlalchemy import Engine, delete, select

from news_archive.storage import tables, tokens
from news_archive.storage.engine import create_archive_engine
from news_archive.storage.repository import ArchiveRepository, BatchStoreError
from news_archive.storage.search import search
from news_archive.vocabulary import AliasSeen, Article, FetchFailure, Image, Rejection
from tests.storage.factories import FETCHED_AT, later, make_article


def test_new_article_is_stored_with_one_version(repository: ArchiveRepository) -> None:
    article = make_article()
    assert repository.store_articles([article]) == ["new"]

    stored = repository.get_article(article.url)
    assert stored is not None
    assert stored["title"] == article.title
    assert stored["body"] == article.body
    assert stored["subtitle"] == "부제 하나\n부제 둘"
    assert stored["author"] == "박효길"
    assert stored["published_at"] == article.published_at
    assert stored["published_at"].tzinfo is UTC
    assert stored["content_hash"] == article.content_hash
    assert stored["first_seen_at"] == stored["last_seen_at"] == FETCHED_AT
    assert stored["last_changed_at"] == FETCHED_AT
    assert stored["sources"] == {"published_at": "json-ld", "author": "byline"}
    assert stored["tags"] == ["삼성", "반도체"]
    assert stored["images"] == [
        {"url": "https://cdn.m-i.kr/a.jpg", "caption": "사진 설명", "alt": "대체 글"}
    ]
    assert repository.count_articles() == 1
    assert repository.count_articles(site="maeil_ilbo") == 1
    assert repository.count_articles(site="skt_insight") == 0
    versions = repository.list_versions(article.url)
    assert [version["version"] for version in versions] == [1]
    assert versions[0]["captured_at"] == FETCHED_AT
    assert versions[0]["note"] is None


def test_same_content_again_is_unchanged(repository: ArchiveRepository) -> None:
    repository.store_articles([make_article()])
    again = make_article(fetched_at=later(24), section="경제", tags=("삼성",))

    assert repository.store_articles([again]) == ["unchanged"]

    assert repository.count_versions(again.url) == 1
    stored = repository.get_article(again.url)
    assert stored is not None
    assert stored["last_seen_at"] == later(24)
    assert stored["last_changed_at"] == FETCHED_AT  # content did not change
    assert stored["first_seen_at"] == FETCHED_AT
    assert stored["section"] == "경제"  # metadata refreshed all the same
    assert stored["tags"] == ["삼성"]


def test_whitespace_only_edit_is_unchanged(repository: ArchiveRepository) -> None:
    article = make_article()
    repository.store_articles([article])
    spaced = make_article(
        fetched_at=later(1), body="  첫 문단입니다. \n\n둘째   문단에는 똠과 햏이 있습니다.\n"
    )
    assert repository.store_articles([spaced]) == ["unchanged"]
    assert repository.count_versions(article.url) == 1


def test_older_capture_does_not_move_last_seen_back(repository: ArchiveRepository) -> None:
    repository.store_articles([make_article(fetched_at=later(5))])
    repository.store_articles([make_article(fetched_at=FETCHED_AT)])
    stored = repository.get_article(make_article().url)
    assert stored is not None
    assert stored["last_seen_at"] == later(5)


def test_changed_body_adds_a_version(repository: ArchiveRepository) -> None:
    first = make_article()
    repository.store_articles([first])
    second = make_article(
        fetched_at=later(2),
        body=first.body + "\n정정 보도: 수치를 바로잡습니다.",
        tags=("반도체", "정정"),
        images=(Image("https://cdn.m-i.kr/b.jpg"),),
    )

    assert repository.store_articles([second]) == ["changed"]

    assert repository.count_articles() == 1
    versions = repository.list_versions(first.url)
    assert [version["version"] for version in versions] == [1, 2]
    assert [version["content_hash"] for version in versions] == [
        first.content_hash,
        second.content_hash,
    ]
    assert versions[1]["captured_at"] == later(2)
    stored = repository.get_article(first.url)
    assert stored is not None
    assert stored["body"] == second.body
    assert stored["last_changed_at"] == stored["last_seen_at"] == later(2)
    assert stored["first_seen_at"] == FETCHED_AT
    assert stored["tags"] == ["반도체", "정정"]
    assert stored["images"] == [{"url": "https://cdn.m-i.kr/b.jpg", "caption": None, "alt": None}]

    third = make_article(fetched_at=later(3), title="제목이 바뀌었다")
    assert repository.store_articles([third]) == ["changed"]
    assert repository.count_versions(first.url) == 3


def test_batch_outcomes_keep_input_order(repository: ArchiveRepository) -> None:
    repository.store_articles([make_article(2)])
    batch = [
        make_article(3),
        make_article(2, body="완전히 새로운 본문입니다.\n둘째 문단도 새로 썼습니다."),
        make_article(1),
        make_article(3, fetched_at=later(1)),  # the same article again, same batch
    ]
    assert repository.store_articles(batch) == ["new", "changed", "new", "unchanged"]
    assert repository.count_articles() == 3
    assert repository.store_articles([]) == []


def test_a_batch_of_new_articles_keeps_what_goes_with_each(
    repository: ArchiveRepository,
) -> None:
    """New articles are written one statement per table for the whole batch: each
    keeps its own version, tags, images, alias and search entry, and nothing of one
    lands on another."""
    batch = [
        make_article(
            number,
            title=f"고유제목{number}번 기사",
            tags=tuple(f"태그{number}-{i}" for i in range(number % 3)),
            images=tuple(Image(f"https://cdn.m-i.kr/{number}-{i}.jpg") for i in range(number % 2)),
            fetched_url=f"http://m-i.kr/news/articleView.html?idxno={number}&utm_source=rss",
            fetched_at=later(number),
        )
        for number in range(1, 8)
    ]
    assert repository.store_articles(batch) == ["new"] * 7

    for article in batch:
        stored = repository.get_article(article.url)
        assert stored is not None
        assert stored["title"] == article.title
        assert stored["tags"] == list(article.tags)
        assert [image["url"] for image in stored["images"]] == [i.url for i in article.images]
        assert stored["first_seen_at"] == article.fetched_at
        versions = repository.list_versions(article.url)
        assert [(v["version"], v["title"]) for v in versions] == [(1, article.title)]
        alias = repository.get_alias(article.fetched_url)
        assert alias is not None
        assert alias["canonical_url"] == article.url
        assert alias["first_seen_at"] == article.fetched_at
        hits = search(repository.engine, f"고유제목{article.url.rsplit('=', 1)[1]}번")
        assert [hit.url for hit in hits] == [article.url]


def test_articles_carrying_their_search_text_are_indexed_without_tokenising(
    repository: ArchiveRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An article whose search text an extraction worker made is indexed by it: the
    writer does not tokenise it again (on both backends), a new article and a
    changed one alike. One that carries none is tokenised as it is written."""
    carried = [tokens.with_search_text(make_article(n, title=f"미리만든{n}번")) for n in (1, 2)]
    changed = tokens.with_search_text(
        make_article(1, title="미리만든1번 고침", fetched_at=later(1))
    )
    made_now = make_article(3, title="지금만든3번")

    def refuse(text: str) -> str:
        raise AssertionError(f"tokenised again: {text!r}")

    with monkeypatch.context() as patched:
        patched.setattr(tokens, "index_text", refuse)
        assert repository.store_articles(carried) == ["new", "new"]
        assert repository.store_articles([changed]) == ["changed"]
    assert repository.store_articles([made_now]) == ["new"]

    assert [hit.url for hit in search(repository.engine, "미리만든2번")] == [carried[1].url]
    assert [hit.url for hit in search(repository.engine, "고침")] == [changed.url]
    assert [hit.url for hit in search(repository.engine, "지금만든3번")] == [made_now.url]


def _without_published_raw(number: int) -> Article:
    article = make_article(number)
    # The dataclass is frozen; smuggle in a value the NOT NULL column refuses.
    object.__setattr__(article, "published_raw", None)
    return article


def test_one_bad_article_does_not_lose_the_batch(repository: ArchiveRepository) -> None:
    batch = [make_article(1), _without_published_raw(2), make_article(3)]

    with pytest.raises(BatchStoreError) as raised:
        repository.store_articles(batch)

    error = raised.value
    assert error.outcomes == ["new", None, "new"]
    assert [index for index, _ in error.failures] == [1]
    assert "published_raw" in str(error.__cause__).lower() or "null" in str(error.__cause__).lower()
    assert repository.count_articles() == 2
    assert repository.get_article(make_article(2).url) is None
    assert repository.count_versions(make_article(1).url) == 1
    assert repository.count_versions(make_article(3).url) == 1


def test_a_python_level_failure_does_not_lose_the_batch(
    repository: ArchiveRepository,
) -> None:
    broken = make_article(2)
    object.__setattr__(broken, "dropped_blocks", None)  # joining them fails, in Python
    with pytest.raises(BatchStoreError) as raised:
        repository.store_articles([make_article(1), broken])
    assert raised.value.outcomes == ["new", None]
    assert isinstance(raised.value.failures[0][1], TypeError)
    assert repository.count_articles() == 1


def test_naive_fetched_at_fails_only_its_article(repository: ArchiveRepository) -> None:
    naive = make_article(2, fetched_at=datetime(2024, 5, 1, 12, 0))
    with pytest.raises(BatchStoreError):
        repository.store_articles([naive, make_article(1)])
    assert repository.count_articles() == 1


def test_fetched_url_becomes_an_alias(repository: ArchiveRepository) -> None:
    article = make_article(fetched_url="http://m-i.kr/news/articleView.html?idxno=1&utm_source=x")
    repository.store_articles([article])
    alias = repository.get_alias(article.fetched_url)
    assert alias is not None
    assert alias["canonical_url"] == article.url
    assert alias["site"] == "maeil_ilbo"
    assert alias["first_seen_at"] == alias["last_seen_at"] == FETCHED_AT
    stored = repository.get_article(article.url)
    assert stored is not None and stored["fetched_url"] == article.fetched_url


def test_aliases_upsert(repository: ArchiveRepository) -> None:
    canonical = "https://news.sktelecom.com/123"
    aliases = [
        AliasSeen("skt_insight", "https://news.sktelecom.com/?p=123", canonical),
        AliasSeen("skt_insight", canonical, canonical),  # skipped: not an alias
        AliasSeen("skt_insight", "https://news.sktelecom.com/?p=123", canonical),  # repeat
    ]
    repository.record_aliases(aliases, FETCHED_AT)
    repository.record_aliases(aliases[:1], later(3))
    repository.record_aliases(aliases[:1], later(1))  # older sighting: no move back

    alias = repository.get_alias("https://news.sktelecom.com/?p=123")
    assert alias is not None
    assert alias["canonical_url"] == canonical
    assert alias["first_seen_at"] == FETCHED_AT
    assert alias["last_seen_at"] == later(3)
    assert repository.get_alias(canonical) is None
    repository.record_aliases([], FETCHED_AT)


def test_runs_and_errors_are_recorded(repository: ArchiveRepository) -> None:
    started = datetime(2024, 5, 1, 0, 0, tzinfo=UTC)
    run_id = repository.start_run(
        "maeil_ilbo", {"DOWNLOAD_DELAY": 1.5, "REPLAY_DIR": None}, started_at=started
    )
    problems = [
        Rejection("maeil_ilbo", "https://www.m-i.kr/news/list.html", "not_article", "list page"),
        FetchFailure(
            "maeil_ilbo",
            "https://www.m-i.kr/news/articleView.html?idxno=9",
            "http_404",
            status=404,
        ),
    ]
    repository.record_errors(run_id, "maeil_ilbo", problems, later(1))
    repository.record_errors(None, "maeil_ilbo", [problems[0]], later(2))
    repository.record_errors(run_id, "maeil_ilbo", [], later(2))
    repository.finish_run(
        run_id, "finished", {"item_scraped_count": 3, "start_time": started}, later(4)
    )

    run = repository.get_run(run_id)
    assert run is not None
    assert run["spider"] == "maeil_ilbo"
    assert run["started_at"] == started
    assert run["finished_at"] == later(4)
    assert run["finish_reason"] == "finished"
    assert run["settings"] == {"DOWNLOAD_DELAY": 1.5, "REPLAY_DIR": None}
    assert run["stats"] == {"item_scraped_count": 3, "start_time": str(started)}

    errors = repository.list_errors(run_id)
    assert [(e["reason"], e["status"], e["detail"]) for e in errors] == [
        ("not_article", None, "list page"),
        ("http_404", 404, ""),
    ]
    assert errors[0]["occurred_at"] == later(1)
    assert len(repository.list_errors()) == 3


def test_deleting_an_article_cascades(
    repository: ArchiveRepository, archive_engine: Engine
) -> None:
    """Foreign keys are enforced on both backends (SQLite needs the pragma)."""
    article = make_article()
    repository.store_articles([article])
    with archive_engine.begin() as connection:
        connection.execute(delete(tables.articles).where(tables.articles.c.url == article.url))
    with archive_engine.connect() as connection:
        assert connection.execute(select(tables.versions.c.id)).all() == []
        assert connection.execute(select(tables.tags.c.tag)).all() == []


def test_repository_rejects_other_databases() -> None:
    not_supported = SimpleNamespace(dialect=SimpleNamespace(name="mysql"))
    with pytest.raises(ValueError, match="mysql"):
        ArchiveRepository(not_supported)  # type: ignore[arg-type]


# ------------------------------------------------------------- real concurrency

WORKERS = 2
ARTICLES = 25


def _edited(article: Article) -> Article:
    return dataclasses.replace(article, fetched_at=later(2), body=article.body + "\n추가 문단.")


def _store_in_process(url: str, barrier: Barrier, results: Queue) -> None:
    """Store every article (new, again, then edited), racing the other process."""
    engine = create_archive_engine(url)
    try:
        repository = ArchiveRepository(engine)
        articles = [make_article(number) for number in range(ARTICLES)]
        barrier.wait(timeout=60)
        outcomes = [repository.store_articles([article])[0] for article in articles]
        # Then the whole list again as one batch, racing the other's batch.
        barrier.wait(timeout=60)
        outcomes += repository.store_articles(
            [dataclasses.replace(article, fetched_at=later(1)) for article in articles]
        )
        # Then the same edit of every article, one transaction each, racing again.
        barrier.wait(timeout=60)
        outcomes += [repository.store_articles([_edited(article)])[0] for article in articles]
        results.put(outcomes)
    finally:
        engine.dispose()


def test_concurrent_processes_store_each_version_once(
    repository: ArchiveRepository, database_url: str
) -> None:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(WORKERS)
    results = context.Queue()
    processes = [
        context.Process(target=_store_in_process, args=(database_url, barrier, results))
        for _ in range(WORKERS)
    ]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0

    assert repository.count_articles() == ARTICLES
    for number in range(ARTICLES):
        url = make_article(number).url
        first_round = sorted(worker[number] for worker in outcomes)
        assert first_round == ["new", "unchanged"]
        assert [worker[ARTICLES + number] for worker in outcomes] == ["unchanged"] * WORKERS
        edit_round = sorted(worker[2 * ARTICLES + number] for worker in outcomes)
        assert edit_round == ["changed", "unchanged"]
        assert [version["version"] for version in repository.list_versions(url)] == [1, 2]
