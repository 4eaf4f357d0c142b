"""The health checks as pure functions (each can fail and pass, and says when it
does not apply), the run figures taken from stats, and the SQL of run records
(`storage.runs`) on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from scrapy.settings import Settings
from sqlalchemy import Engine

import news_archive.crawler.settings as project_settings
from news_archive.crawler.extensions.run import threshold_setting as _setting
from news_archive.crawler.health import (
    CHECKS,
    HEALTH_SETTINGS,
    Check,
    CheckResult,
    RunInput,
    checks_for,
    evaluate,
    run_figures,
    threshold,
)
from news_archive.storage.repository import ArchiveRepository
from news_archive.storage.runs import (
    previous_runs,
    record_exit_code,
    record_health,
    record_run_figures,
)

SETTINGS = {name: getattr(project_settings, name) for name in HEALTH_SETTINGS}

# The final stats of a healthy 매일일보 day-1 run (seeds/maeil_ilbo), trimmed.
HEALTHY: dict[str, Any] = {
    "archive/body_chars": 3425,
    "archive/body_source/V1/container": 2,
    "archive/body_source/V2/container": 3,
    "archive/extracted": 5,
    "archive/failed/http_404": 1,
    "archive/failed/http_500": 1,
    "archive/filled/author": 5,
    "archive/filled/body": 5,
    "archive/filled/published_at": 5,
    "archive/filled/title": 5,
    "archive/listing/entries": 9,
    "archive/rejected/not_article": 1,
    "archive/stored/new": 5,
    "downloader/request_count": 12,
    "downloader/response_bytes": 303754,
    "downloader/response_status_count/200": 8,
    "downloader/response_status_count/404": 1,
    "downloader/response_status_count/500": 3,
}


def _run(
    stats: dict[str, Any] | None = None,
    previous: list[dict[str, Any]] | None = None,
    spider: str = "maeil_ilbo",
    finish_reason: str | None = "finished",
    **settings: Any,
) -> RunInput:
    return RunInput(
        spider, stats or HEALTHY, previous or [], {**SETTINGS, **settings}, finish_reason
    )


def _result(run: RunInput, name: str, field: str) -> CheckResult:
    return next(r for r in evaluate(run) if (r.name, r.field) == (name, field))


def _previous(stored: int, *, body_chars: int | None = None) -> dict[str, Any]:
    """A previous run as `previous_runs` returns it, with `stored` new articles."""
    extracted = stored
    return {
        "articles_new": stored,
        "articles_changed": 0,
        "articles_unchanged": 0,
        "stats": {
            "archive/extracted": extracted,
            "archive/body_chars": body_chars if body_chars is not None else 700 * extracted,
        },
    }


# --- all together -----------------------------------------------------------------


def test_a_healthy_run_passes_every_check() -> None:
    results = evaluate(_run(previous=[_previous(5)] * 3))
    assert [r.message for r in results if not r.ok] == []
    assert {(r.name, r.field) for r in results} >= {
        ("run_complete", "finish_reason"),
        ("bad_feeds", "bad_feed"),
        ("articles_parsed", "articles"),
        ("fill_rate", "title"),
        ("fill_rate", "published_at"),
        ("fill_rate", "body"),
        ("fill_rate", "author"),
        ("body_source", "body"),
        ("body_length", "body"),
        ("body_collapse", "body"),
        ("error_rate", "pages"),
        ("article_drop", "articles"),
    }
    assert all(r.observed is not None for r in results)


def test_checks_are_data_and_fill_rates_follow_the_floors_setting() -> None:
    assert all(isinstance(check, Check) for check in CHECKS)
    floors = {"default": {"title": 1.0, "images": 0.8}, "maeil_ilbo": {"images": 0.0}}
    checks = checks_for("maeil_ilbo", {"HEALTH_FILL_FLOORS": floors})
    assert [c.label for c in checks if c.name == "fill_rate"] == [
        "fill_rate[title]",
        "fill_rate[images]",
    ]
    fill_images = next(c for c in checks if c.label == "fill_rate[images]")
    settings = {"HEALTH_FILL_FLOORS": floors}
    assert threshold(fill_images, "maeil_ilbo", settings) == 0.0
    assert threshold(fill_images, "skt_insight", settings) == 0.8


def test_a_missing_threshold_setting_is_named() -> None:
    settings = {k: v for k, v in SETTINGS.items() if k != "HEALTH_MAX_ERROR_RATE"}
    with pytest.raises(KeyError, match="HEALTH_MAX_ERROR_RATE"):
        evaluate(RunInput("maeil_ilbo", HEALTHY, [], settings))


def test_thresholds_from_scrapy_settings_and_the_command_line() -> None:
    settings = Settings({"HEALTH_FILL_FLOORS": '{"default": {"body": 0.5}}'})
    settings.set("HEALTH_MAX_ERROR_RATE", "0.25", priority="cmdline")
    assert _setting(settings, "HEALTH_FILL_FLOORS") == {"default": {"body": 0.5}}
    assert _setting(settings, "HEALTH_MAX_ERROR_RATE") == 0.25
    settings.set("HEALTH_REQUIRE_FINISHED", "False", priority="cmdline")
    assert _setting(settings, "HEALTH_REQUIRE_FINISHED") == 0.0
    project = Settings()
    project.setmodule(project_settings)
    assert _setting(project, "HEALTH_FILL_FLOORS")["skt_insight"] == {"author": 0.0}


# --- a run cut short, a feed that did not parse ------------------------------------


@pytest.mark.parametrize("reason", ["shutdown", "closespider_timeout", "cancelled"])
def test_a_run_cut_short_fails_as_incomplete(reason: str) -> None:
    result = _result(_run(finish_reason=reason), "run_complete", "finish_reason")
    assert not result.ok
    assert result.message == (f"run_complete[finish_reason] 0 < floor 1: finish reason {reason}")
    assert _result(_run(), "run_complete", "finish_reason").ok
    cut_short = _run(finish_reason=reason, HEALTH_REQUIRE_FINISHED=False)
    assert _result(cut_short, "run_complete", "finish_reason").ok


def test_the_completion_check_does_not_apply_without_a_finish_reason() -> None:
    assert _result(_run(finish_reason=None), "run_complete", "finish_reason").observed is None


def test_a_feed_that_did_not_parse_fails() -> None:
    stats = {**HEALTHY, "archive/failed/bad_feed": 1}
    result = _result(_run(stats), "bad_feeds", "bad_feed")
    assert not result.ok
    assert result.message == "bad_feeds[bad_feed] 1 > ceiling 0: 1 archive/failed/bad_feed"
    assert _result(_run(), "bad_feeds", "bad_feed").ok
    assert _result(_run(stats, HEALTH_MAX_BAD_FEEDS=1), "bad_feeds", "bad_feed").ok


# --- articles parsed from a non-empty feed ----------------------------------------


def test_no_article_parsed_from_a_feed_with_entries_fails() -> None:
    stats = {**HEALTHY, "archive/extracted": 0}
    result = _result(_run(stats), "articles_parsed", "articles")
    assert not result.ok
    assert result.message.startswith("articles_parsed[articles] 0 < floor 1:")


def test_articles_parsed_does_not_apply_without_entries_to_fetch() -> None:
    no_feed = {"archive/extracted": 0}
    assert _result(_run(no_feed), "articles_parsed", "articles").observed is None
    # An incremental run that skipped every listed article as archived and not due.
    all_known = {"archive/listing/entries": 9, "archive/skipped/not_due": 9}
    result = _result(_run(all_known), "articles_parsed", "articles")
    assert result.ok and result.observed is None
    assert "not due" in result.message


def test_not_modified_answers_count_as_parsed() -> None:
    stats = {"archive/listing/entries": 9, "archive/not_modified": 5}
    assert _result(_run(stats), "articles_parsed", "articles").ok


# --- fill rates ---------------------------------------------------------------------


def test_a_field_below_its_floor_fails_and_names_the_field() -> None:
    stats = {**HEALTHY, "archive/filled/published_at": 4}
    result = _result(_run(stats), "fill_rate", "published_at")
    assert not result.ok
    assert result.observed == 0.8
    assert result.message.startswith("fill_rate[published_at] 0.80 < floor 1.00: 4 of 5")


def test_fill_floors_are_per_spider() -> None:
    stats = {**HEALTHY, "archive/filled/author": 1}
    assert not _result(_run(stats), "fill_rate", "author").ok
    # Most SKT posts name no author: its floor is 0.
    assert _result(_run(stats, spider="skt_insight"), "fill_rate", "author").ok


def test_fill_rates_are_not_judged_on_a_few_articles() -> None:
    stats = {**HEALTHY, "archive/extracted": 2, "archive/filled/author": 0}
    result = _result(_run(stats), "fill_rate", "author")
    assert result.ok and result.observed is None
    assert "HEALTH_MIN_SAMPLE" in result.message
    assert not _result(_run(stats, HEALTH_MIN_SAMPLE=1), "fill_rate", "author").ok


# --- body from the whole-page fallback ----------------------------------------------


def test_a_body_not_from_the_container_fails() -> None:
    stats = {**HEALTHY, "archive/body_source/V2/container": 2}
    stats["archive/body_source/V2/trafilatura-page"] = 1
    result = _result(_run(stats), "body_source", "body")
    assert not result.ok
    assert result.message.startswith("body_source[body] 0.20 > ceiling 0.00")
    assert "V2/trafilatura-page 1" in result.message


def test_an_unknown_template_counts_as_fallback() -> None:
    stats = {"archive/body_source/unknown/container": 1, "archive/body_source/V1/container": 1}
    assert _result(_run(stats), "body_source", "body").observed == 0.5
    assert _result(_run(stats, HEALTH_MAX_FALLBACK_SHARE=0.5), "body_source", "body").ok


def test_body_source_does_not_apply_when_nothing_was_stored() -> None:
    assert _result(_run({"archive/extracted": 0}), "body_source", "body").observed is None


# --- body length and its collapse ---------------------------------------------------


def test_short_bodies_fail_the_body_length_floor() -> None:
    stats = {**HEALTHY, "archive/body_chars": 5 * 120}
    result = _result(_run(stats), "body_length", "body")
    assert not result.ok
    assert result.message.startswith("body_length[body] 120 < floor 200")


def test_a_body_length_collapse_against_previous_runs_fails() -> None:
    stats = {**HEALTHY, "archive/body_chars": 5 * 300}  # above the floor of 200
    history = [_previous(5, body_chars=5 * 1000)] * 3
    result = _result(_run(stats, history), "body_collapse", "body")
    assert not result.ok
    assert result.observed == pytest.approx(0.3)
    assert "300 characters, 1000 over the previous 3 runs" in result.message
    assert _result(_run(HEALTHY, history), "body_collapse", "body").ok  # 685 of 1000


def test_body_collapse_needs_enough_previous_runs() -> None:
    stats = {**HEALTHY, "archive/body_chars": 5 * 300}
    history = [_previous(5, body_chars=5 * 1000)] * 2
    result = _result(_run(stats, history), "body_collapse", "body")
    assert result.ok and result.observed is None
    assert "HEALTH_MIN_HISTORY_RUNS" in result.message


# --- error rate -----------------------------------------------------------------------


def test_an_error_rate_above_the_ceiling_fails() -> None:
    stats = {**HEALTHY, "archive/failed/http_500": 5}  # 1 + 6 of 12 pages
    result = _result(_run(stats), "error_rate", "pages")
    assert not result.ok
    assert result.message.startswith("error_rate[pages] 0.58 > ceiling 0.50")
    assert _result(_run(HEALTHY), "error_rate", "pages").observed == 3 / 8


def test_error_rate_counts_a_page_the_database_refused_once() -> None:
    stats = {"archive/extracted": 5, "archive/failed/store_failed": 1}
    assert _result(_run(stats), "error_rate", "pages").observed == 1 / 5


def test_error_rate_is_not_judged_on_a_few_pages() -> None:
    # e.g. `-a urls=` of one URL that robots.txt forbids
    stats = {"archive/failed/robots_forbidden": 1}
    result = _result(_run(stats), "error_rate", "pages")
    assert result.ok and result.observed is None


# --- a drop against the previous runs ---------------------------------------------------


def test_a_drop_below_the_median_of_previous_runs_fails() -> None:
    stats = {**HEALTHY, "archive/stored/new": 2}
    history = [_previous(5), _previous(6), _previous(4)]
    result = _result(_run(stats, history), "article_drop", "articles")
    assert not result.ok
    assert result.message.startswith("article_drop[articles] 0.40 < floor 0.50")
    assert "median 5 over the previous 3 runs" in result.message
    assert _result(
        _run({**HEALTHY, "archive/stored/new": 3}, history), "article_drop", "articles"
    ).ok


def test_the_drop_check_needs_three_previous_runs() -> None:
    stats = {**HEALTHY, "archive/stored/new": 1}
    result = _result(_run(stats, [_previous(5)] * 2), "article_drop", "articles")
    assert result.ok and result.observed is None


def test_articles_skipped_as_not_due_are_no_drop() -> None:
    # An incremental run fetches only new and due articles; the rest of the feed is known.
    stats = {**HEALTHY, "archive/stored/new": 1, "archive/skipped/not_due": 4}
    assert _result(_run(stats, [_previous(5)] * 3), "article_drop", "articles").ok


def test_previous_runs_without_figure_columns_are_read_from_their_stats() -> None:
    old = {"stats": {"archive/stored/unchanged": 5, "archive/skipped/not_due": 5}}
    stats = {**HEALTHY, "archive/stored/new": 4}
    result = _result(_run(stats, [old] * 3), "article_drop", "articles")
    assert not result.ok and result.observed == 0.4


# --- figures ------------------------------------------------------------------------------


def test_run_figures_from_stats() -> None:
    stats = {
        **HEALTHY,
        "archive/stored/unchanged": 2,
        "archive/rejected/no_body": 2,
        "downloader/response_status_count/301": 1,
        "downloader/response_status_count/304": 2,
    }
    assert run_figures(stats) == {
        "requests": 12,
        "responses_2xx": 8,
        "responses_3xx": 3,
        "responses_4xx": 1,
        "responses_5xx": 3,
        "bytes_downloaded": 303754,
        "articles_new": 5,
        "articles_changed": 0,
        "articles_unchanged": 2,
        "articles_rejected": 3,
        "articles_failed": 2,
        "rejected_by_reason": {"no_body": 2, "not_article": 1},
    }


# --- storage.runs on both backends --------------------------------------------------------


def _finished_run(
    repository: ArchiveRepository,
    spider: str,
    started_at: datetime,
    reason: str = "finished",
    stored: int = 5,
) -> int:
    run_id = repository.start_run(spider, {}, started_at=started_at)
    repository.finish_run(
        run_id, reason, {"archive/stored/new": stored}, started_at + timedelta(minutes=1)
    )
    record_run_figures(repository.engine, run_id, {"articles_new": stored})
    return run_id


def test_run_figures_health_and_exit_code_are_recorded(
    repository: ArchiveRepository, archive_engine: Engine
) -> None:
    run_id = repository.start_run("maeil_ilbo", {"DATABASE_URL": "sqlite:///x.db"})
    figures = {"hostname": "cron-1", "pid": 4242, **run_figures(HEALTHY)}
    record_run_figures(archive_engine, run_id, figures)
    results = evaluate(_run())
    record_health(archive_engine, run_id, False, [r.as_dict() for r in results], 3)
    record_exit_code(archive_engine, run_id, 75)
    run = repository.get_run(run_id)
    assert run is not None
    assert {key: run[key] for key in figures if key != "rejected_by_reason"} == {
        key: value for key, value in figures.items() if key != "rejected_by_reason"
    }
    assert run["rejected_by_reason"] == '{"not_article": 1}'
    assert run["bytes_downloaded"] == 303754
    assert run["health_ok"] is False
    assert '"name": "articles_parsed"' in run["health"]
    assert run["exit_code"] == 75
    with pytest.raises(ValueError, match="stats"):
        record_run_figures(archive_engine, run_id, {"stats": "{}"})


def test_previous_runs_are_finished_healthy_runs_of_the_spider_newest_first(
    repository: ArchiveRepository, archive_engine: Engine
) -> None:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    first = _finished_run(repository, "maeil_ilbo", start, stored=4)
    _finished_run(repository, "skt_insight", start + timedelta(hours=1))
    _finished_run(repository, "maeil_ilbo", start + timedelta(hours=2), reason="shutdown")
    unhealthy = _finished_run(repository, "maeil_ilbo", start + timedelta(hours=3), stored=1)
    record_health(archive_engine, unhealthy, False, [], 3)
    healthy = _finished_run(repository, "maeil_ilbo", start + timedelta(hours=4), stored=6)
    record_health(archive_engine, healthy, True, [], 0)
    repository.start_run("maeil_ilbo", {}, started_at=start + timedelta(hours=5))  # unfinished
    current = repository.start_run("maeil_ilbo", {}, started_at=start + timedelta(hours=6))
    later = _finished_run(repository, "maeil_ilbo", start + timedelta(hours=7))

    runs = previous_runs(archive_engine, "maeil_ilbo", 10, current)
    assert [run["id"] for run in runs] == [healthy, first]
    assert runs[0]["articles_new"] == 6
    assert runs[0]["stats"] == {"archive/stored/new": 6}
    assert later not in [run["id"] for run in runs]
    with_unhealthy = previous_runs(archive_engine, "maeil_ilbo", 2, current, include_unhealthy=True)
    assert [run["id"] for run in with_unhealthy] == [healthy, unhealthy]


def test_a_body_source_of_no_known_form_counts_as_fallback() -> None:
    # An article without a recorded body source is counted under ``None``.
    stats = {"archive/body_source/None": 1, "archive/body_source/V1/container": 3}
    assert _result(_run(stats), "body_source", "body").observed == 0.25
