"""Declarative health checks of a crawl run, and the run's at-a-glance figures.

Pure functions over a run's final Scrapy stats (plain ``dict``), the previous runs
of the same spider (dicts as `storage.runs.previous_runs` returns them) and the
``HEALTH_*`` settings (a plain mapping): no Scrapy, no database, no clock.

A `Check` is data: the check's name, the field or figure it judges, the measure
that computes the observed value, the comparison and the setting holding its
threshold. `evaluate` turns each into a `CheckResult`. A check whose measure
does not apply to a run (too few articles to judge a rate, no previous runs to
compare with) passes and says why.

Thresholds (Scrapy settings; defaults and meaning in ``crawler/settings.py``):

- ``HEALTH_MIN_ARTICLES``: articles parsed (extracted, or answered 304) at least
  this many when the feed or list pages had entries to fetch.
- ``HEALTH_FILL_FLOORS``: per field, the lowest share of extracted articles that
  have it; ``{"default": {field: floor}, "<spider>": {field: floor}}``, the
  spider's entries winning. One ``fill_rate`` check per field named.
- ``HEALTH_MAX_FALLBACK_SHARE``: the highest share of stored articles whose body
  came from the whole page instead of the site's body container.
- ``HEALTH_MIN_MEAN_BODY_CHARS``: the lowest mean body length, in characters.
- ``HEALTH_MIN_BODY_RATIO``: the lowest mean body length as a share of the mean
  over the previous runs (collapse).
- ``HEALTH_MAX_ERROR_RATE``: the highest share of pages rejected or failed.
- ``HEALTH_MIN_ARTICLE_RATIO``: the lowest count of articles accounted for
  (stored new, changed or unchanged, or listed but skipped as not due) as a share
  of the median of the previous runs.
- ``HEALTH_REQUIRE_FINISHED``: a run cut short (a finish reason other than
  ``finished``: a signal, a closespider limit) fails the ``run_complete`` check.
- ``HEALTH_MAX_BAD_FEEDS``: the most feeds or list pages that did not parse
  (``archive/failed/bad_feed``).
- ``HEALTH_MAX_BAD_REPLAYS``: the most replayed responses that could not be served
  (``archive/failed/bad_replay``: a damaged WARC record, a manifest file refused).
- ``HEALTH_MIN_SAMPLE``: articles (or pages) a run needs before rates and means
  are judged; ``HEALTH_HISTORY_RUNS`` / ``HEALTH_MIN_HISTORY_RUNS``: how many
  previous runs make the baseline, and how many at least before comparing.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from news_archive.vocabulary import BodySource

# Every setting the checks read; the extension copies them from Scrapy's settings.
HEALTH_SETTINGS = (
    "HEALTH_REQUIRE_FINISHED",
    "HEALTH_MAX_BAD_FEEDS",
    "HEALTH_MAX_BAD_REPLAYS",
    "HEALTH_MIN_ARTICLES",
    "HEALTH_FILL_FLOORS",
    "HEALTH_MAX_FALLBACK_SHARE",
    "HEALTH_MIN_MEAN_BODY_CHARS",
    "HEALTH_MIN_BODY_RATIO",
    "HEALTH_MAX_ERROR_RATE",
    "HEALTH_MIN_ARTICLE_RATIO",
    "HEALTH_MIN_SAMPLE",
    "HEALTH_HISTORY_RUNS",
    "HEALTH_MIN_HISTORY_RUNS",
)

# Stats ``archive/body_source/<template>/<method>`` count stored articles by
# `BodySource` (its string form); `BodySource.is_fallback` says which are fallbacks.
BODY_SOURCE_STATS = "archive/body_source/"
# The finish reason of a run that ran to its end (Scrapy's own).
FINISHED = "finished"
# Stats of what was not written: ``archive/lost/<kind>`` (and the older plain
# ``archive/lost``, a count of articles).
LOST_STATS = "archive/lost"


@dataclass(frozen=True, slots=True)
class Check:
    """One declarative check: `measure` (a key of `MEASURES`) computes the observed
    value, which must be ``at_least`` or ``at_most`` the threshold in setting
    `threshold_setting` (a per-spider mapping is looked up by `field`)."""

    name: str
    field: str
    measure: str
    comparison: Literal["at_least", "at_most"]
    threshold_setting: str
    precision: int = 2  # decimals shown in messages: 2 for shares, 0 for counts

    @property
    def label(self) -> str:
        """``name[field]``, as messages and logs name the check."""
        return f"{self.name}[{self.field}]"


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The outcome of one check on one run. `observed` is None when the check did
    not apply (`ok` is then True and `message` says why)."""

    name: str
    field: str
    ok: bool
    observed: float | None
    threshold: float
    message: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class RunInput:
    """What the checks see of a run: its spider, final stats, the previous runs
    (newest first, as `storage.runs.previous_runs` returns them) and the
    ``HEALTH_*`` settings."""

    spider: str
    stats: Mapping[str, Any]
    previous: Sequence[Mapping[str, Any]]
    settings: Mapping[str, Any]
    # Scrapy's finish reason (``finished``, ``shutdown``, ``closespider_timeout``...);
    # None when unknown, and the ``run_complete`` check does not apply.
    finish_reason: str | None = None


@dataclass(frozen=True, slots=True)
class Observation:
    value: float
    detail: str  # the figures behind the value, for the log line


@dataclass(frozen=True, slots=True)
class NotApplicable:
    reason: str


Measure = Callable[[RunInput, Check], Observation | NotApplicable]


# ---------------------------------------------------------------- stats helpers


def _count(stats: Mapping[str, Any], key: str) -> int:
    return int(stats.get(key) or 0)


def _by_suffix(stats: Mapping[str, Any], prefix: str) -> dict[str, int]:
    """``{suffix: count}`` of the stats named ``prefix + suffix``."""
    return {
        key[len(prefix) :]: int(value or 0)
        for key, value in stats.items()
        if key.startswith(prefix)
    }


def lost_counts(stats: Mapping[str, Any]) -> dict[str, int]:
    """``{stat: count}`` of the ``archive/lost`` and ``archive/lost/<kind>`` stats
    above 0: what a run extracted or saw but could not write."""
    return {
        key: int(value)
        for key, value in stats.items()
        if (key == LOST_STATS or key.startswith(f"{LOST_STATS}/"))
        and isinstance(value, int | float)
        and value > 0
    }


def _extracted(stats: Mapping[str, Any]) -> int:
    return _count(stats, "archive/extracted")


def _accounted(run: Mapping[str, Any]) -> int:
    """Articles a previous run accounted for: stored (new, changed or unchanged;
    its figure columns, else its stats) plus listed but skipped as not due."""
    stats = run.get("stats") or {}
    figures = [run.get(f"articles_{outcome}") for outcome in ("new", "changed", "unchanged")]
    if any(value is not None for value in figures):
        stored = sum(value or 0 for value in figures)
    else:
        stored = sum(_by_suffix(stats, "archive/stored/").values())
    return stored + _count(stats, "archive/skipped/not_due")


def _setting(run: RunInput, name: str) -> Any:
    try:
        return run.settings[name]
    except KeyError:
        raise KeyError(f"health check setting {name} is not set") from None


def _history(run: RunInput) -> Sequence[Mapping[str, Any]] | NotApplicable:
    """The previous runs that make the baseline, or why there are too few."""
    history = run.previous[: int(_setting(run, "HEALTH_HISTORY_RUNS"))]
    needed = int(_setting(run, "HEALTH_MIN_HISTORY_RUNS"))
    if len(history) < needed:
        return NotApplicable(
            f"{len(history)} previous runs, fewer than HEALTH_MIN_HISTORY_RUNS {needed}"
        )
    return history


def _enough(run: RunInput, count: int, what: str) -> NotApplicable | None:
    needed = int(_setting(run, "HEALTH_MIN_SAMPLE"))
    if count < needed:
        return NotApplicable(f"{count} {what}, fewer than HEALTH_MIN_SAMPLE {needed}")
    return None


# --------------------------------------------------------------------- measures


def finished(run: RunInput, check: Check) -> Observation | NotApplicable:
    """1 when the run ran to its end (finish reason ``finished``), 0 when it was cut
    short: its figures are then partial and no other check can vouch for it."""
    if run.finish_reason is None:
        return NotApplicable("the finish reason is unknown")
    return Observation(float(run.finish_reason == FINISHED), f"finish reason {run.finish_reason}")


def failed_count(run: RunInput, check: Check) -> Observation | NotApplicable:
    """How many ``archive/failed/<check.field>`` failures the run counted."""
    count = _count(run.stats, f"archive/failed/{check.field}")
    return Observation(count, f"{count} archive/failed/{check.field}")


def articles_parsed(run: RunInput, check: Check) -> Observation | NotApplicable:
    """Articles parsed (extracted, or answered 304 Not Modified) when the feed or
    list pages had entries to fetch; entries an incremental run skipped because
    their article is archived and not due for a revisit do not count."""
    entries = _count(run.stats, "archive/listing/entries")
    if not entries:
        return NotApplicable("no listing entries were read")
    skipped = _count(run.stats, "archive/skipped/not_due")
    if entries <= skipped:
        return NotApplicable(f"all {entries} listing entries archived and not due")
    parsed = _extracted(run.stats) + _count(run.stats, "archive/not_modified")
    return Observation(
        parsed,
        f"{parsed} articles parsed from {entries} listing entries ({skipped} not due)",
    )


def fill_rate(run: RunInput, check: Check) -> Observation | NotApplicable:
    """Share of extracted articles with `check.field` filled (0..1)."""
    extracted = _extracted(run.stats)
    if skip := _enough(run, extracted, "articles extracted"):
        return skip
    filled = _count(run.stats, f"archive/filled/{check.field}")
    return Observation(filled / extracted, f"{filled} of {extracted} articles have {check.field}")


def fallback_share(run: RunInput, check: Check) -> Observation | NotApplicable:
    """Share of stored articles whose body did not come from the site's container
    (0..1): the whole-page fallback, or a page of no known template."""
    sources = _by_suffix(run.stats, BODY_SOURCE_STATS)
    total = sum(sources.values())
    if not total:
        return NotApplicable("no article stored")
    # A source of no known form (None) counts as a fallback: nothing vouches for it.
    fallback = sum(
        count
        for name, count in sources.items()
        if (source := BodySource.parse(name)) is None or source.is_fallback
    )
    return Observation(
        fallback / total,
        f"{fallback} of {total} stored articles not read from the site's body container "
        f"(sources: {', '.join(f'{name} {count}' for name, count in sorted(sources.items()))})",
    )


def mean_body_chars(run: RunInput, check: Check) -> Observation | NotApplicable:
    """Mean body length of the extracted articles, in characters."""
    extracted = _extracted(run.stats)
    if skip := _enough(run, extracted, "articles extracted"):
        return skip
    mean = _count(run.stats, "archive/body_chars") / extracted
    return Observation(mean, f"mean body {mean:.0f} characters over {extracted} articles")


def body_ratio(run: RunInput, check: Check) -> Observation | NotApplicable:
    """Mean body length as a share of the mean over the previous runs."""
    extracted = _extracted(run.stats)
    if skip := _enough(run, extracted, "articles extracted"):
        return skip
    history = _history(run)
    if isinstance(history, NotApplicable):
        return history
    chars = sum(_count(previous.get("stats") or {}, "archive/body_chars") for previous in history)
    articles = sum(_extracted(previous.get("stats") or {}) for previous in history)
    if not chars or not articles:
        return NotApplicable("previous runs extracted no body text")
    baseline = chars / articles
    mean = _count(run.stats, "archive/body_chars") / extracted
    return Observation(
        mean / baseline,
        f"mean body {mean:.0f} characters, {baseline:.0f} over the previous {len(history)} runs",
    )


def error_rate(run: RunInput, check: Check) -> Observation | NotApplicable:
    """Share of pages attempted (articles extracted or not modified, pages
    rejected, requests failed) that were rejected or failed (0..1)."""
    stats = run.stats
    rejected = sum(_by_suffix(stats, "archive/rejected/").values())
    failed = sum(_by_suffix(stats, "archive/failed/").values())
    answered = _extracted(stats) + _count(stats, "archive/not_modified")
    # A page the database refused was extracted first: count it once as attempted.
    attempted = answered + rejected + failed - _count(stats, "archive/failed/store_failed")
    if skip := _enough(run, attempted, "pages attempted"):
        return skip
    return Observation(
        (rejected + failed) / attempted,
        f"{rejected} rejected and {failed} failed of {attempted} pages",
    )


def article_ratio(run: RunInput, check: Check) -> Observation | NotApplicable:
    """Articles accounted for (stored new, changed or unchanged, plus listed but
    skipped as archived and not due) as a share of the median of the previous runs.

    The skipped ones count because an incremental run fetches only new and due
    articles: without them every run after the first would look like a drop."""
    history = _history(run)
    if isinstance(history, NotApplicable):
        return history
    median = statistics.median(_accounted(previous) for previous in history)
    if not median:
        return NotApplicable("the previous runs accounted for no articles")
    accounted = _accounted({"stats": run.stats})
    return Observation(
        accounted / median,
        f"{accounted} articles stored or not due, median {median:g} "
        f"over the previous {len(history)} runs",
    )


MEASURES: dict[str, Measure] = {
    "finished": finished,
    "failed_count": failed_count,
    "articles_parsed": articles_parsed,
    "fill_rate": fill_rate,
    "fallback_share": fallback_share,
    "mean_body_chars": mean_body_chars,
    "body_ratio": body_ratio,
    "error_rate": error_rate,
    "article_ratio": article_ratio,
}

# The checks besides the fill rates, which `checks_for` adds per field.
CHECKS = (
    Check("run_complete", "finish_reason", "finished", "at_least", "HEALTH_REQUIRE_FINISHED", 0),
    Check("bad_feeds", "bad_feed", "failed_count", "at_most", "HEALTH_MAX_BAD_FEEDS", 0),
    Check("bad_replays", "bad_replay", "failed_count", "at_most", "HEALTH_MAX_BAD_REPLAYS", 0),
    Check("articles_parsed", "articles", "articles_parsed", "at_least", "HEALTH_MIN_ARTICLES", 0),
    Check("body_source", "body", "fallback_share", "at_most", "HEALTH_MAX_FALLBACK_SHARE"),
    Check("body_length", "body", "mean_body_chars", "at_least", "HEALTH_MIN_MEAN_BODY_CHARS", 0),
    Check("body_collapse", "body", "body_ratio", "at_least", "HEALTH_MIN_BODY_RATIO"),
    Check("error_rate", "pages", "error_rate", "at_most", "HEALTH_MAX_ERROR_RATE"),
    Check("article_drop", "articles", "article_ratio", "at_least", "HEALTH_MIN_ARTICLE_RATIO"),
)


def checks_for(spider: str, settings: Mapping[str, Any]) -> list[Check]:
    """The checks of a run of `spider`: `CHECKS` up to ``articles_parsed``, one
    ``fill_rate`` check per field with a floor in ``HEALTH_FILL_FLOORS`` (default and
    the spider's own), then the rest of `CHECKS`."""
    floors = _per_spider(settings["HEALTH_FILL_FLOORS"], spider)
    fill = [
        Check("fill_rate", field, "fill_rate", "at_least", "HEALTH_FILL_FLOORS") for field in floors
    ]
    split = next(i for i, check in enumerate(CHECKS) if check.name == "articles_parsed") + 1
    return [*CHECKS[:split], *fill, *CHECKS[split:]]


def threshold(check: Check, spider: str, settings: Mapping[str, Any]) -> float:
    """The threshold of `check` for `spider`: the setting's value, or for a
    per-spider mapping (``{"default": {...}, spider: {...}}``) its `check.field` entry."""
    value = settings[check.threshold_setting]
    if isinstance(value, Mapping):
        return float(_per_spider(value, spider)[check.field])
    return float(value)


def _per_spider(value: Mapping[str, Any], spider: str) -> dict[str, Any]:
    return {**(value.get("default") or {}), **(value.get(spider) or {})}


def evaluate(run: RunInput, checks: Sequence[Check] | None = None) -> list[CheckResult]:
    """Run `checks` (default: `checks_for` the run's spider) over `run`, in order."""
    if checks is None:
        checks = checks_for(run.spider, run.settings)
    return [_evaluate_one(run, check) for check in checks]


def _evaluate_one(run: RunInput, check: Check) -> CheckResult:
    limit = threshold(check, run.spider, run.settings)
    shown_limit = f"{limit:.{check.precision}f}"
    outcome = MEASURES[check.measure](run, check)
    if isinstance(outcome, NotApplicable):
        return CheckResult(
            check.name,
            check.field,
            True,
            None,
            limit,
            f"{check.label} not applicable: {outcome.reason}",
        )
    shown = f"{outcome.value:.{check.precision}f}"
    if check.comparison == "at_least":
        ok = outcome.value >= limit
        relation = f"{shown} >= floor {shown_limit}" if ok else f"{shown} < floor {shown_limit}"
    else:
        ok = outcome.value <= limit
        relation = f"{shown} <= ceiling {shown_limit}" if ok else f"{shown} > ceiling {shown_limit}"
    return CheckResult(
        check.name,
        check.field,
        ok,
        outcome.value,
        limit,
        f"{check.label} {relation}: {outcome.detail}",
    )


# ---------------------------------------------------------------------- figures


def run_figures(stats: Mapping[str, Any]) -> dict[str, Any]:
    """A run's at-a-glance figures (the ``crawl_runs`` figure columns) from its
    final Scrapy stats: requests made (retries and robots.txt included), responses
    by status class, response bytes, articles stored by outcome, pages rejected and
    requests failed, and rejections by reason (``{reason: count}``)."""
    by_status = _by_suffix(stats, "downloader/response_status_count/")
    classes = {f"responses_{digit}xx": 0 for digit in "2345"}
    for status, count in by_status.items():
        key = f"responses_{status[:1]}xx"
        if key in classes:
            classes[key] += count
    stored = _by_suffix(stats, "archive/stored/")
    rejected = _by_suffix(stats, "archive/rejected/")
    return {
        "requests": _count(stats, "downloader/request_count"),
        **classes,
        "bytes_downloaded": _count(stats, "downloader/response_bytes"),
        "articles_new": stored.get("new", 0),
        "articles_changed": stored.get("changed", 0),
        "articles_unchanged": stored.get("unchanged", 0),
        "articles_rejected": sum(rejected.values()),
        "articles_failed": sum(_by_suffix(stats, "archive/failed/").values()),
        "rejected_by_reason": dict(sorted(rejected.items())),
    }
