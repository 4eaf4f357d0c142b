"""The ``news-archive`` command: crawl, search, show, export, stats, reextract,
boilerplate, serve, db.

The database comes from ``--database-url``, else the ``DATABASE_URL`` environment
variable, else ``sqlite:///archive.db`` (what the crawler uses). Every problem is
one line on stderr, ``news-archive: error: ...``, and a non-zero exit status:
2 for a wrong command line (unknown site, bad date, unusable database URL),
1 for a database that cannot be reached, is not migrated, or lacks the article,
78 for a setting that cannot be used (``DISPLAY_TIME_ZONE``, ``SITES_FILE``).
Database URLs are always shown through `mask_url` (no password).

Dates and times are read and shown in the display time zone, the
``DISPLAY_TIME_ZONE`` setting (default Korea time); the archive stores UTC.

The reading commands (search, show, export, stats, boilerplate list, db current)
open the database
read-only: they never create, migrate or convert a file (a missing or empty SQLite
file is an error and stays as it was).
"""

from __future__ import annotations

import argparse
import csv
import difflib
import json
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from itertools import pairwise
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from news_archive.cli.output import (
    fit,
    format_cell,
    render_table,
    to_jsonable,
    write_json,
    zone_description,
    zone_label,
)
from news_archive.storage.archive import Archive, ArchiveError
from news_archive.storage.boilerplate import Block, Status, Thresholds
from news_archive.storage.engine import (
    SCHEMA_REVISION,
    ConnectionTimeouts,
    alembic_config,
    mask_url,
)
from news_archive.storage.query import QuerySyntaxError
from news_archive.storage.query import parse as parse_query
from news_archive.storage.search import EXPORT_COLUMNS, HIGHLIGHT_START, SORTS, DailyCount

PROGRAM = "news-archive"
SETTINGS_MODULE = "news_archive.crawler.settings"
# Article ids are PostgreSQL `integer`s (SQLite's are wider): a larger number names
# no article on either backend.
ARTICLE_ID_MAX = 2**31 - 1
# EX_CONFIG, the code of a crawl's configuration error (docs/operations.md).
CONFIGURATION_ERROR = 78
CSV_LIST_SEPARATOR = ", "
# What `export --fields` may name, per format: the article's columns, its tags and
# its images (JSON Lines: objects; CSV: their URLs, space-separated).
JSONL_FIELDS = (*EXPORT_COLUMNS, "tags", "images")
CSV_FIELDS = (*EXPORT_COLUMNS, "tags", "image_urls")
# `export --excel`: text cells that a spreadsheet would run as a formula (OWASP's
# "CSV injection": = + - @, and tab and carriage return, which Excel skips before
# one) get this mark in front, so that the cell stays text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
FORMULA_GUARD = "'"
BYTE_ORDER_MARK = "\ufeff"
# `boilerplate list` shows the statuses in this order.
BLOCK_STATUSES = (Status.APPLIED, Status.CONFIRMED, Status.CANDIDATE, Status.KEPT)
# The fewest hash digits `boilerplate keep|drop|reset` accepts.
HASH_PREFIX_MIN = 6


class CliError(Exception):
    """A problem to report in one line, with the process exit status."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line `argv` (default ``sys.argv[1:]``); return the exit status."""
    parser = build_parser()
    arguments = parser.parse_args(argv)
    try:
        _resolve_bounds(arguments)
        return arguments.handler(arguments)
    except CliError as error:
        print(f"{PROGRAM}: error: {error}", file=sys.stderr)
        return error.exit_code
    except ArchiveError as error:
        # The database refused a read: its reason in one line, never a traceback.
        print(f"{PROGRAM}: error: the database refused: {error.reason}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # `news-archive export | head`: the reader left; that is not an error.
        _silence_stdout()
        return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    # On every subparser too, so the option may come before or after the command.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--database-url",
        default=argparse.SUPPRESS,
        help="SQLAlchemy URL: sqlite:///PATH or postgresql+psycopg://USER@HOST/DB "
        "(default: the crawler's DATABASE_URL setting: $DATABASE_URL, else "
        "sqlite:///archive.db)",
    )
    parser = argparse.ArgumentParser(
        prog=PROGRAM, description="Search and export the news archive.", parents=[common]
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    crawl = commands.add_parser(
        "crawl",
        parents=[common],
        help="crawl a site into the archive, from any directory (as `scrapy crawl SPIDER` "
        "in a checkout)",
        description="Run `scrapy crawl SPIDER` with the project's settings; every option "
        "after SPIDER goes to it (-a NAME=VALUE, -s NAME=VALUE, -O FILE, -L LEVEL). "
        "Exits as the crawl does: 0 complete and healthy, 3 health check failed, 4 cut "
        "short, 75 already running, 5 data lost, 78 configuration error "
        "(docs/operations.md, 'Exit codes').",
    )
    crawl.add_argument("spider", metavar="SPIDER", help="the site's spider name (`scrapy list`)")
    crawl.add_argument("scrapy_arguments", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    crawl.set_defaults(handler=run_crawl)

    search = commands.add_parser(
        "search", parents=[common], help="articles matching QUERY, best or newest first"
    )
    search.add_argument(
        "query",
        metavar="QUERY",
        help='words to find, all of them (any length, inside Korean words); "exact phrase", '
        "A OR B, -excluded, site:NAME author:NAME section:NAME tag:TAG since:YYYY-MM-DD "
        "until:YYYY-MM-DD (docs/archive.md, 'Search')",
    )
    _add_filters(search)
    search.add_argument(
        "--sort",
        choices=SORTS,
        default="relevance",
        help="relevance (BM25, title weighted; the default) or newest published first",
    )
    search.add_argument("--limit", type=_positive_int, default=20, help="at most N hits (20)")
    search.add_argument("--json", action="store_true", help="a JSON array instead of a table")
    search.set_defaults(handler=run_search)

    show = commands.add_parser(
        "show", parents=[common], help="one article, its versions and what changed"
    )
    show.add_argument(
        "article",
        metavar="URL|ID",
        help="article id, or any URL of it: canonical, alias, http://, AMP, print, old host, "
        "with tracking parameters",
    )
    show.add_argument("--diff", action="store_true", help="unified diff between versions")
    show.add_argument("--body", action="store_true", help="print the newest body too")
    show.add_argument("--json", action="store_true", help="everything as one JSON object")
    show.set_defaults(handler=run_show)

    export = commands.add_parser(
        "export", parents=[common], help="stream articles as JSON Lines or CSV"
    )
    export.add_argument(
        "--format", choices=("jsonl", "csv"), default=None, help="jsonl (default) or csv"
    )
    export.add_argument(
        "--excel",
        action="store_true",
        help="CSV that Excel opens with Korean intact: UTF-8 with a byte order mark, "
        "text cells starting with = + - @ marked with ' so they stay text (implies "
        "--format csv)",
    )
    export.add_argument(
        "--fields",
        help="comma-separated fields to write, in this order (default: all; "
        f"csv: {', '.join(CSV_FIELDS)}; jsonl: images in place of image_urls)",
    )
    export.add_argument("-o", "--output", type=Path, help="file to write (default: stdout)")
    _add_filters(export)
    export.set_defaults(handler=run_export)

    stats = commands.add_parser(
        "stats", parents=[common], help="articles per site and day, last crawl runs"
    )
    stats.add_argument(
        "--days", type=_count, default=14, help="newest N publication days to list (0: all)"
    )
    stats.add_argument("--runs", type=_count, default=10, help="last N crawl runs to list")
    stats.add_argument("--json", action="store_true", help="one JSON object")
    stats.set_defaults(handler=run_stats)

    reextract = commands.add_parser(
        "reextract",
        parents=[common],
        help="extract the stored captures again after a parser fix (no network)",
        description="Extract the stored captures again after a parser fix (no network). "
        "Each article that could not be re-extracted is one line on stderr and counted "
        "as rejected/<reason>, or as unusable and unusable/<why> when its capture cannot "
        "be used (no_link, missing_file, unreadable); then the exit status is "
        f"{REEXTRACT_FAILED_EXIT}.",
    )
    _add_filters(reextract)
    reextract.add_argument("--url", help="only the article at this canonical or captured URL")
    reextract.add_argument(
        "--warc-dir",
        type=Path,
        default=None,
        help="folder of the WARC files (default: $WARC_DIR, else warc)",
    )
    reextract.add_argument(
        "--workers", type=_positive_int, default=None, help="processes (default: one per core)"
    )
    reextract.add_argument("--no-progress", action="store_true", help="no progress bar")
    reextract.add_argument("--json", action="store_true", help="the counts as JSON")
    reextract.set_defaults(handler=run_reextract)

    _add_boilerplate(commands, common)

    serve = commands.add_parser(
        "serve",
        parents=[common],
        help="browse and search the SQLite archive in Datasette (a web server)",
        description="Run Datasette on the SQLite archive with the project's metadata: "
        "descriptions, facets, Korean search on articles and current_articles, body "
        "text cut on table pages (docs/archive.md, 'Datasette'). Needs Datasette: "
        "pip install 'news-archive[datasette]'.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    serve.add_argument("--port", type=_port, default=8001, help="port to listen on (8001)")
    serve.set_defaults(handler=run_serve)

    database = commands.add_parser("db", parents=[common], help="the database schema")
    database_commands = database.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    database_commands.add_parser(
        "upgrade", parents=[common], help="create or migrate the schema to the newest revision"
    ).set_defaults(handler=run_db_upgrade)
    database_commands.add_parser(
        "current", parents=[common], help="the schema revision of the database"
    ).set_defaults(handler=run_db_current)
    return parser


def _add_boilerplate(commands: Any, common: argparse.ArgumentParser) -> None:
    """``boilerplate list|learn|keep|drop|reset``."""
    boilerplate = commands.add_parser(
        "boilerplate",
        parents=[common],
        help="learned boilerplate: blocks of text recurring across a site's articles",
        description="Blocks of body text that recur verbatim in many articles of a site, "
        "learned at the end of each crawl (docs/archive.md, 'Learned boilerplate'). "
        "`keep` and `drop` take effect on new crawls at once, and on stored articles "
        "with `news-archive reextract`.",
    )
    actions = boilerplate.add_subparsers(
        dest="boilerplate_command", required=True, metavar="ACTION"
    )
    listing = actions.add_parser(
        "list", parents=[common], help="the learned blocks, their evidence and status"
    )
    listing.add_argument("--site", help="only this site (spider name)")
    listing.add_argument(
        "--status",
        choices=[status.value for status in BLOCK_STATUSES],
        help="only blocks of this status",
    )
    listing.add_argument("--json", action="store_true", help="a JSON array instead of a table")
    listing.set_defaults(handler=run_boilerplate_list)
    learn = actions.add_parser(
        "learn", parents=[common], help="learn again from the stored articles (as a crawl does)"
    )
    learn.add_argument("--site", help="only this site (default: every site)")
    learn.set_defaults(handler=run_boilerplate_learn)
    for action, verdict, meaning in (
        ("keep", "article", "it is article text: never drop it"),
        ("drop", "furniture", "it is furniture: always drop it"),
        ("reset", None, "forget the verdict: the thresholds decide again"),
    ):
        parser = actions.add_parser(action, parents=[common], help=f"HASH: {meaning}")
        parser.add_argument("hash", metavar="HASH", help="the block's hash, or its first 6+ digits")
        parser.add_argument("--site", help="the site, when the block is learned for several")
        parser.set_defaults(handler=run_boilerplate_verdict, verdict=verdict)


def _add_filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--site",
        help="only this site (spider name): skt_insight, maeil_ilbo, or one SITES_FILE configures",
    )
    parser.add_argument(
        "--since",
        type=_since,
        help="published at or after: YYYY-MM-DD (a day of DISPLAY_TIME_ZONE, default "
        "Korea) or an ISO 8601 time (without offset: in DISPLAY_TIME_ZONE)",
    )
    parser.add_argument(
        "--until",
        type=_until,
        help="published up to: YYYY-MM-DD (that day included) or an ISO 8601 time (excluded)",
    )


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value}")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 < value < 65536:
        raise argparse.ArgumentTypeError(f"must be a port number from 1 to 65535, not {value}")
    return value


@dataclass(frozen=True, slots=True)
class TimeBound:
    """``--since``/``--until`` as given: a whole day, or a time (one without offset
    is a time of the display zone); `instant` places it once the zone is known."""

    moment: date | datetime
    end_of_day: bool

    def instant(self, zone: ZoneInfo) -> datetime:
        """The bound as an aware instant: a day starts at midnight in `zone`; an upper
        bound day ends at the next midnight (the day included)."""
        if isinstance(self.moment, datetime):
            moment = self.moment
            return moment.replace(tzinfo=zone) if moment.tzinfo is None else moment
        day = self.moment + timedelta(days=1) if self.end_of_day else self.moment
        return datetime.combine(day, time(), zone)


def _since(text: str) -> TimeBound:
    return _parse_time(text, end_of_day=False)


def _until(text: str) -> TimeBound:
    return _parse_time(text, end_of_day=True)


def _parse_time(text: str, *, end_of_day: bool) -> TimeBound:
    """YYYY-MM-DD or an ISO 8601 time; placed in the display zone by `_resolve_bounds`."""
    try:
        if len(text) == 10:
            return TimeBound(date.fromisoformat(text), end_of_day)
        return TimeBound(datetime.fromisoformat(text), end_of_day)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither YYYY-MM-DD nor an ISO 8601 time"
        ) from None


def _resolve_bounds(arguments: argparse.Namespace) -> None:
    """``--since``/``--until`` as aware instants in the display zone, for the handlers."""
    for name in ("since", "until"):
        bound = getattr(arguments, name, None)
        if isinstance(bound, TimeBound):
            setattr(arguments, name, bound.instant(display_zone()))


def display_zone() -> ZoneInfo:
    """The zone dates are read and shown in: the ``DISPLAY_TIME_ZONE`` setting; a name
    that is no IANA zone is a configuration error (exit 78)."""
    from news_archive.crawler import settings
    from news_archive.zones import UnknownZone, parse_zone

    try:
        return parse_zone(settings.DISPLAY_TIME_ZONE)
    except UnknownZone as error:
        raise CliError(
            f"configuration error: DISPLAY_TIME_ZONE: {error}", exit_code=CONFIGURATION_ERROR
        ) from None


# ------------------------------------------------------------------ the database


def database_url(arguments: argparse.Namespace) -> str:
    """The URL the user chose: option, then environment, then the crawler's default."""
    # The crawler's settings module is the one place that reads the environment.
    from news_archive.crawler import settings

    return getattr(arguments, "database_url", None) or settings.DATABASE_URL


def head_revision() -> str:
    """The newest schema revision this program's migrations know."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "the migrations have no head revision"
    return head


@contextmanager
def open_archive(
    arguments: argparse.Namespace, *, must_exist: bool = True, read_only: bool = False
) -> Iterator[Archive]:
    """The user's archive, checked to be reachable (and, for `must_exist`, to be an
    existing file on SQLite); `read_only` for commands that only read (a SQLite file
    is then never created nor altered); its connections closed afterwards."""
    url = _parse_url(database_url(arguments))
    shown = mask_url(url)
    if must_exist and url.get_backend_name() == "sqlite":
        path = url.database
        if path and path != ":memory:" and not Path(path).exists():
            raise CliError(
                f"no SQLite database at {path}: crawl into it first, or create an empty "
                f"archive with `{PROGRAM} db upgrade`",
                exit_code=1,
            )
    # The crawl's PostgreSQL connect and keepalive timeouts; no statement timeout: an
    # export of a large archive may rightly run longer than any one crawl statement,
    # and a person at the terminal can interrupt a stalled server.
    from news_archive.crawler import settings

    timeouts = replace(
        ConnectionTimeouts.from_settings(lambda name: getattr(settings, name)), statement=None
    )
    try:
        archive = Archive.open(url, migrate=False, read_only=read_only, timeouts=timeouts)
    except (ArgumentError, ImportError, SQLAlchemyError, ArchiveError) as exc:
        raise CliError(f"cannot use database URL {shown}: {exc}", exit_code=2) from None
    try:
        try:
            archive.ping()
        except ArchiveError as exc:
            raise CliError(f"cannot connect to database {shown}: {exc.reason}") from None
        yield archive
    finally:
        archive.close()


def _parse_url(text: str) -> URL:
    try:
        url = make_url(text)
    except ArgumentError:
        raise CliError(
            "cannot parse the database URL (expected sqlite:///PATH or "
            "postgresql+psycopg://USER@HOST/DB)",
            exit_code=2,
        ) from None
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise CliError(
            f"unsupported database {mask_url(url)}: the archive runs on sqlite or postgresql",
            exit_code=2,
        )
    return url


@contextmanager
def open_migrated_archive(
    arguments: argparse.Namespace, *, read_only: bool = True
) -> Iterator[Archive]:
    """`open_archive`, refusing a database whose schema is not the newest."""
    with open_archive(arguments, read_only=read_only) as archive:
        # The revision this code was written for, not Alembic's head: importing
        # Alembic would cost a reading command a fifth of its start-up
        # (tests/storage/test_engine.py holds the two equal).
        current = _revision(archive)
        if current != SCHEMA_REVISION:
            raise CliError(_revision_problem(archive, current, head_revision()))
        yield archive


def _revision(archive: Archive) -> str | None:
    """The database's schema revision; a file that is no database is one line."""
    try:
        return archive.revision()
    except ArchiveError as exc:
        raise CliError(f"cannot read database {archive.url}: {exc.reason}") from None


def _revision_problem(archive: Archive, current: str | None, head: str) -> str:
    shown = archive.url
    if current is None:
        return f"database {shown} has no archive schema (not migrated): run `{PROGRAM} db upgrade`"
    from alembic.script import ScriptDirectory

    if ScriptDirectory.from_config(alembic_config()).get_revision(current) is None:
        return (
            f"database {shown} is at schema revision {current}, which this {PROGRAM} "
            f"does not know (its newest is {head}): install a newer {PROGRAM}"
        )
    return (
        f"database {shown} is at schema revision {current}, not the newest {head}: "
        f"run `{PROGRAM} db upgrade`"
    )


def check_site(site: str | None, sites_file: str | None = None) -> None:
    """Refuse a site that is no spider's name, listing the known ones: the declared
    sites and those the sites file configures (`sites_file`, default the
    ``SITES_FILE`` setting); a sites file that cannot be used is refused too."""
    if site is None:
        return
    known = _known_sites(sites_file)
    if site not in known:
        raise CliError(
            f"unknown site {site!r}; known sites: {', '.join(sorted(known))}", exit_code=2
        )


def _known_sites(sites_file: str | None = None) -> dict[str, Any]:
    """Declared + configured sites by name; a bad sites file is a `CliError` (78)."""
    # Imported here: the site modules pull in the extraction stack, which only
    # the commands that name a site need.
    from news_archive.crawler import settings
    from news_archive.crawler.sites import SitesFileError, all_sites

    try:
        return all_sites(sites_file or settings.SITES_FILE)
    except SitesFileError as error:
        raise CliError(f"configuration error: {error}", exit_code=CONFIGURATION_ERROR) from None


# ------------------------------------------------------------------ commands


def run_crawl(arguments: argparse.Namespace) -> int:
    """``crawl SPIDER [scrapy crawl options]``: Scrapy's ``crawl`` command (the
    project's own, with its exit codes) on the installed settings module, so it runs
    the same from any directory as ``scrapy crawl`` does in the checkout."""
    from scrapy.cmdline import execute

    # `-s SITES_FILE=...` among Scrapy's options wins over the setting, as in the crawl.
    options = arguments.scrapy_arguments
    given = [
        v.split("=", 1)[1]
        for o, v in pairwise(options)
        if o == "-s" and v.startswith("SITES_FILE=")
    ]
    check_site(arguments.spider, given[-1] if given else None)
    # Wins over a scrapy.cfg in the current directory (Scrapy only sets a default).
    os.environ["SCRAPY_SETTINGS_MODULE"] = SETTINGS_MODULE
    argv = ["scrapy", "crawl", arguments.spider, *arguments.scrapy_arguments]
    if getattr(arguments, "database_url", None):
        argv += ["-s", f"DATABASE_URL={arguments.database_url}"]
    try:
        execute(argv)
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 1
    return 0


def run_search(arguments: argparse.Namespace) -> int:
    """``search QUERY``: hits as a table (id, date, site, title, snippet) or JSON."""
    zone = display_zone()
    try:
        query = parse_query(arguments.query, zone=zone)
    except QuerySyntaxError as exc:
        raise CliError(f"cannot read the search query: {exc}", exit_code=2) from None
    check_site(arguments.site)
    with open_migrated_archive(arguments) as archive:
        hits = archive.reads.search(
            query,
            site=arguments.site,
            since=arguments.since,
            until=arguments.until,
            limit=arguments.limit,
            sort=arguments.sort,
        )
    if not hits:
        # Checked only now: naming the sites loads the site modules, which costs
        # more than the search itself.
        for site in query.filters.get("site", ()):
            check_site(site)
    if arguments.json:
        write_json([asdict(hit) for hit in hits], sys.stdout, zone)
        return 0
    if not hits:
        print(f"no article matches {arguments.query!r}")
        return 0
    # The table fits the terminal ($COLUMNS): the title and snippet columns shrink,
    # the snippet kept around its first highlight.
    print(
        render_table(
            ("id", f"published ({zone_label(zone)})", "site", "title", "snippet"),
            [
                (hit.id, hit.published_at.astimezone(zone).date(), hit.site, hit.title, hit.snippet)
                for hit in hits
            ],
            anchors={4: HIGHLIGHT_START},
        )
    )
    print(f"\n{len(hits)} hit(s); `{PROGRAM} show ID` shows one article")
    return 0


def run_show(arguments: argparse.Namespace) -> int:
    """``show URL|ID``: metadata, the versions, and with --diff what changed."""
    wanted = arguments.article.strip()
    zone = display_zone()
    with open_migrated_archive(arguments) as archive:
        if wanted.isdigit():
            # A number past ARTICLE_ID_MAX names no article, and the database would refuse it.
            valid = wanted.isdecimal() and int(wanted) <= ARTICLE_ID_MAX
            article = archive.reads.article_with_versions(wanted) if valid else None
        else:
            article = archive.reads.article_by_urls(article_urls(wanted))
    if article is None:
        raise CliError(f"no archived article {arguments.article!r} (an id, or a URL)")
    if arguments.json:
        write_json(article, sys.stdout, zone)
        return 0
    print(article["title"])
    fields = [
        ("id", article["id"]),
        ("site", article["site"]),
        ("url", article["url"]),
        ("published", article["published_at"]),
        ("modified", article["modified_at"]),
        ("author", article["author"]),
        ("section", article["section"]),
        ("tags", ", ".join(article["tags"])),
        ("images", len(article["images"])),
        ("first seen", article["first_seen_at"]),
        ("last seen", article["last_seen_at"]),
        ("last changed", article["last_changed_at"]),
    ]
    for name, value in fields:
        print(f"  {name:<13}{format_cell(value, zone)}".rstrip())
    print(f"  (times in {zone_description(zone)})\n")
    versions = article["versions"]
    print(f"{len(versions)} version(s):")
    print(
        render_table(
            ("version", "captured", "content hash", "characters", "note"),
            [
                (
                    version["version"],
                    version["captured_at"],
                    version["content_hash"][:12],
                    len(version["body"]),
                    version["note"],
                )
                for version in versions
            ],
            zone=zone,
        )
    )
    if arguments.body:
        print(f"\n{article['body']}")
    if arguments.diff:
        print()
        print(version_diff(versions, zone) or "one version only: nothing to compare")
    return 0


def article_urls(url: str) -> list[str]:
    """The URLs to look the pasted `url` up under: as given, and canonical under
    the rules of every known site (declared and configured), so that an
    ``http://``, AMP, print, old-host or tracking-parameter variant finds its
    article (`news_archive.crawler.sites.url_candidates`)."""
    from news_archive.crawler.sites import url_candidates

    return url_candidates(url, _known_sites().values())


def version_diff(versions: Sequence[dict[str, Any]], zone: ZoneInfo) -> str:
    """Unified diffs, line by line, of title and body between consecutive versions;
    capture times in `zone`."""
    label = zone_label(zone)
    parts: list[str] = []
    for older, newer in pairwise(versions):
        parts.extend(
            difflib.unified_diff(
                _diffable(older),
                _diffable(newer),
                fromfile=f"version {older['version']} "
                f"({format_cell(older['captured_at'], zone)} {label})",
                tofile=f"version {newer['version']} "
                f"({format_cell(newer['captured_at'], zone)} {label})",
                lineterm="",
            )
        )
    return "\n".join(parts)


def _diffable(version: dict[str, Any]) -> list[str]:
    return [version["title"], "", *version["body"].splitlines()]


def run_export(arguments: argparse.Namespace) -> int:
    """``export``: every matching article, streamed, as JSON Lines or CSV (UTF-8; with
    ``--excel`` a byte order mark first and formula-looking cells guarded), times ISO
    8601 in the display zone with their offset."""
    check_site(arguments.site)
    zone = display_zone()
    if arguments.excel and arguments.format == "jsonl":
        raise CliError("--excel writes CSV: drop --format jsonl", exit_code=2)
    export_format = "csv" if arguments.excel else arguments.format or "jsonl"
    fields = export_fields(arguments.fields, export_format)
    with open_migrated_archive(arguments) as archive:
        rows = archive.reads.articles(
            site=arguments.site, since=arguments.since, until=arguments.until
        )
        writer = (
            _write_jsonl if export_format == "jsonl" else partial(_write_csv, excel=arguments.excel)
        )
        if arguments.output is None:
            stream = _utf8_stdout()
            if arguments.excel:
                stream.write(BYTE_ORDER_MARK)
            count = writer(rows, stream, fields, zone)
            sys.stdout.flush()
        else:
            # utf-8-sig writes the byte order mark first.
            encoding = "utf-8-sig" if arguments.excel else "utf-8"
            try:
                with arguments.output.open("w", encoding=encoding, newline="") as stream:
                    count = writer(rows, stream, fields, zone)
            except OSError as exc:
                raise CliError(f"cannot write {arguments.output}: {exc.strerror}") from None
    target = arguments.output or "stdout"
    shown = "csv for Excel" if arguments.excel else export_format
    print(f"exported {count} article(s) as {shown} to {target}", file=sys.stderr)
    return 0


def export_fields(given: str | None, export_format: str) -> tuple[str, ...]:
    """The fields ``--fields`` names (all of the format's when None); one that the
    format does not have, or none at all, is a one-line error (exit 2)."""
    known = JSONL_FIELDS if export_format == "jsonl" else CSV_FIELDS
    if given is None:
        return known
    fields = tuple(name.strip() for name in given.split(","))
    for name in fields:
        if name not in known:
            raise CliError(
                f"unknown field {name!r} for {export_format} export; fields: {', '.join(known)}",
                exit_code=2,
            )
    if len(set(fields)) < len(fields):
        raise CliError(f"a field is named twice in --fields {given!r}", exit_code=2)
    return fields


def _write_jsonl(
    rows: Iterator[dict[str, Any]], stream: TextIO, fields: Sequence[str], zone: ZoneInfo
) -> int:
    count = 0
    for row in rows:
        selected = {name: row[name] for name in fields}
        stream.write(json.dumps(to_jsonable(selected, zone), ensure_ascii=False) + "\n")
        count += 1
    return count


def _write_csv(
    rows: Iterator[dict[str, Any]],
    stream: TextIO,
    fields: Sequence[str],
    zone: ZoneInfo,
    *,
    excel: bool,
) -> int:
    writer = csv.writer(stream)
    writer.writerow(fields)
    count = 0
    for row in rows:
        values = {
            **{name: row[name] for name in EXPORT_COLUMNS},
            "tags": CSV_LIST_SEPARATOR.join(row["tags"]),
            "image_urls": " ".join(image["url"] for image in row["images"]),
        }
        writer.writerow([_csv_cell(values[name], zone, excel=excel) for name in fields])
        count += 1
    return count


def _csv_cell(value: Any, zone: ZoneInfo, *, excel: bool) -> Any:
    """Times as ISO 8601 in `zone` with the offset; for Excel, text that would run as
    a formula guarded (`FORMULA_STARTS`)."""
    if isinstance(value, datetime):
        return value.astimezone(zone).isoformat()
    if excel and isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return FORMULA_GUARD + value
    return value


def _utf8_stdout() -> TextIO:
    # Exports are UTF-8 whatever the locale says; CSV wants its own line endings.
    sys.stdout.reconfigure(encoding="utf-8", newline="")  # type: ignore[union-attr]
    return sys.stdout


def run_stats(arguments: argparse.Namespace) -> int:
    """``stats``: totals per site, articles per publication day, the last runs; days
    and times of the display zone."""
    zone = display_zone()
    with open_migrated_archive(arguments) as archive:
        sites = archive.reads.site_totals()
        days = archive.reads.daily_counts(zone=zone)
        runs = archive.reads.last_runs(arguments.runs)
    day_list = sorted({count.day for count in days}, reverse=True)
    if arguments.days > 0:
        day_list = day_list[: arguments.days]
    if arguments.json:
        shown_days = set(day_list)
        write_json(
            {
                "time_zone": zone.key,
                "sites": sites,
                "daily_counts": [asdict(count) for count in days if count.day in shown_days],
                "runs": runs,
            },
            sys.stdout,
            zone,
        )
        return 0
    described = zone_description(zone)
    print(f"Articles per site (times in {described})")
    print(
        render_table(
            ("site", "articles", "versions", "first published", "last published", "last seen"),
            [
                (
                    site["site"],
                    site["articles"],
                    site["versions"],
                    site["first_published_at"],
                    site["last_published_at"],
                    site["last_seen_at"],
                )
                for site in sites
            ],
            zone=zone,
        )
    )
    print(f"\nArticles per publication day ({described}), newest {len(day_list)} day(s)")
    print(_daily_table(days, day_list, [site["site"] for site in sites]))
    print(f"\nLast {len(runs)} crawl run(s) (times in {described})")
    print(_runs_table(runs, zone))
    return 0


def _daily_table(counts: Sequence[DailyCount], days: list[date], sites: list[str]) -> str:
    by_day_and_site = {(count.day, count.site): count.articles for count in counts}
    return render_table(
        ("day", *sites),
        [(day, *(by_day_and_site.get((day, site), 0) for site in sites)) for day in days],
    )


def _runs_table(runs: Sequence[dict[str, Any]], zone: ZoneInfo) -> str:
    headers = ("run", "spider", "started", "finished", "reason", "requests", "new", "changed")
    headers += ("unchanged", "rejected", "failed", "healthy", "exit")
    keys: tuple[str, ...] = ("id", "spider", "started_at", "finished_at", "finish_reason")
    keys += ("requests", "articles_new", "articles_changed", "articles_unchanged")
    keys += ("articles_rejected", "articles_failed", "health_ok", "exit_code")
    return render_table(headers, [[run[key] for key in keys] for run in runs], zone=zone)


REEXTRACT_FAILED_EXIT = 3


def run_reextract(arguments: argparse.Namespace) -> int:
    """``reextract``: counts of changed / unchanged / rejected articles; every
    article not re-extracted is one stderr line, and then the exit status is
    `REEXTRACT_FAILED_EXIT`."""
    check_site(arguments.site)
    from news_archive.crawler import settings

    warc_dir = arguments.warc_dir or Path(settings.WARC_DIR)
    if not warc_dir.is_dir():
        raise CliError(f"no WARC folder at {warc_dir}: give --warc-dir or set WARC_DIR")
    # Imported here: it pulls in the extraction stack and the process pool.
    from news_archive.crawler.reextract import reextract
    from news_archive.vocabulary import Rejection

    def report(failure: Rejection) -> None:
        detail = f": {failure.detail}" if failure.detail else ""
        print(
            f"{PROGRAM}: not re-extracted: {failure.url}: {failure.reason}{detail}",
            file=sys.stderr,
        )

    with open_migrated_archive(arguments, read_only=False) as archive:
        counts = reextract(
            archive,
            warc_dir,
            sites=_known_sites(),
            site=arguments.site,
            published_since=arguments.since,
            published_until=arguments.until,
            url=arguments.url,
            workers=arguments.workers,
            progress=not arguments.no_progress,
            on_failure=report,
        )
    if arguments.json:
        print(json.dumps(dict(sorted(counts.items())), ensure_ascii=False))
    else:
        for key, value in sorted(counts.items()):
            print(f"{key}: {value}")
    rejected = sum(value for key, value in counts.items() if key.startswith("rejected/"))
    return REEXTRACT_FAILED_EXIT if rejected or counts["unusable"] else 0


def boilerplate_thresholds() -> Thresholds:
    """The thresholds the crawls apply learned boilerplate with (the crawler's
    ``BOILERPLATE_MIN_ARTICLES`` and ``BOILERPLATE_MIN_SHARE`` settings)."""
    from news_archive.crawler import settings

    return Thresholds(settings.BOILERPLATE_MIN_ARTICLES, settings.BOILERPLATE_MIN_SHARE)


def run_boilerplate_list(arguments: argparse.Namespace) -> int:
    """``boilerplate list``: every learned block with its evidence and status."""
    check_site(arguments.site)
    with open_migrated_archive(arguments) as archive:
        blocks = archive.boilerplate.blocks(boilerplate_thresholds(), site=arguments.site)
    if arguments.status:
        blocks = [block for block in blocks if block.status == arguments.status]
    if arguments.json:
        write_json([_block_json(block) for block in blocks], sys.stdout)
        return 0
    if not blocks:
        print("no learned boilerplate")
        return 0
    print(
        render_table(
            ("hash", "site", "articles", "share", "status", "text"),
            [
                (
                    block.block_hash[:12],
                    block.site,
                    f"{block.articles}/{block.site_articles}",
                    f"{block.share:.0%}",
                    block.status.value,
                    block.text,
                )
                for block in blocks
            ],
        )
    )
    applied = sum(1 for block in blocks if block.status.is_applied)
    print(
        f"\n{len(blocks)} block(s), {applied} applied; `{PROGRAM} boilerplate keep HASH` "
        "keeps one as article text, `drop HASH` confirms a candidate"
    )
    return 0


def _block_json(block: Block) -> dict[str, Any]:
    return {
        "hash": block.block_hash,
        "site": block.site,
        "articles": block.articles,
        "site_articles": block.site_articles,
        "share": round(block.share, 4),
        "status": block.status.value,
        "verdict": block.verdict,
        "text": block.text,
        "first_learned_at": block.first_learned_at,
        "learned_at": block.learned_at,
    }


def run_boilerplate_learn(arguments: argparse.Namespace) -> int:
    """``boilerplate learn``: count each site's blocks again, as a crawl's end does."""
    check_site(arguments.site)
    from news_archive.crawler import settings

    # Every site, configured ones too (SITES_FILE).
    sites = [arguments.site] if arguments.site else sorted(_known_sites())
    thresholds = boilerplate_thresholds()
    with open_migrated_archive(arguments, read_only=False) as archive:
        for site in sites:
            learning = archive.boilerplate.learn(
                site,
                window=settings.BOILERPLATE_WINDOW,
                min_articles=thresholds.min_articles,
                min_characters=settings.BOILERPLATE_MIN_CHARACTERS,
                now=datetime.now(UTC),
            )
            applied = archive.boilerplate.applied(site, thresholds)
            print(
                f"{site}: {learning.site_articles} article(s) read, {learning.blocks} block(s) "
                f"in at least {thresholds.min_articles} ({learning.new} new), "
                f"{len(applied)} applied"
            )
    print(f"`{PROGRAM} reextract` applies them to the stored articles")
    return 0


def run_boilerplate_verdict(arguments: argparse.Namespace) -> int:
    """``boilerplate keep|drop|reset HASH``: a reviewer's verdict on one block."""
    check_site(arguments.site)
    wanted = arguments.hash.strip().lower()
    if len(wanted) < HASH_PREFIX_MIN:
        raise CliError(
            f"give at least {HASH_PREFIX_MIN} digits of the hash, not {wanted!r}", exit_code=2
        )
    thresholds = boilerplate_thresholds()
    with open_migrated_archive(arguments, read_only=False) as archive:
        found = archive.boilerplate.blocks(thresholds, site=arguments.site, prefix=wanted)
        if not found:
            where = f" of {arguments.site}" if arguments.site else ""
            raise CliError(
                f"no learned block{where} with hash {arguments.hash!r} "
                f"(`{PROGRAM} boilerplate list` shows them)"
            )
        if len(found) > 1:
            named = ", ".join(f"{block.site} {block.block_hash}" for block in found)
            raise CliError(
                f"hash {arguments.hash!r} names {len(found)} blocks ({named}): "
                "give more digits or --site",
                exit_code=2,
            )
        (block,) = found
        archive.boilerplate.set_verdict(
            block.site, block.block_hash, arguments.verdict, datetime.now(UTC)
        )
        (now,) = archive.boilerplate.blocks(thresholds, site=block.site, prefix=block.block_hash)
    change = f"{block.status.value} -> {now.status.value}"
    print(f"{block.site} {block.block_hash}: {change}: {fit(now.text, 60)}")
    if now.status.is_applied != block.status.is_applied:
        print(f"`{PROGRAM} reextract --site {block.site}` applies it to the stored articles")
    return 0


def run_serve(arguments: argparse.Namespace) -> int:
    """``serve``: Datasette on the SQLite archive, until Ctrl-C; Datasette's exit status."""
    from news_archive.cli import serve

    url = _parse_url(database_url(arguments))
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        raise CliError(
            f"Datasette serves SQLite files, not {mask_url(url)}: `{PROGRAM} export` "
            "copies the articles out of PostgreSQL",
            exit_code=2,
        )
    if not serve.datasette_installed():
        raise CliError(f"Datasette is not installed: {serve.INSTALL_HINT}")
    with open_migrated_archive(arguments):
        pass  # an existing archive at the newest schema, or a one-line error
    return serve.serve(Path(url.database), host=arguments.host, port=arguments.port)


def run_db_upgrade(arguments: argparse.Namespace) -> int:
    """``db upgrade``: create the schema or migrate it to the newest revision."""
    with open_archive(arguments, must_exist=False) as archive:
        before = archive.revision()
        try:
            archive.upgrade()
        except ArchiveError as exc:
            first_line = str(exc).strip().splitlines()[0]
            raise CliError(f"upgrade of {archive.url} failed: {first_line}") from None
        after = archive.revision()
    if before == after:
        print(f"{archive.url}: already at the newest revision {after}")
    else:
        print(f"{archive.url}: upgraded from {before or 'an empty database'} to {after}")
    return 0


def run_db_current(arguments: argparse.Namespace) -> int:
    """``db current``: the revision; exit 0 when it is the newest, 1 otherwise (so a
    deployment check can ask it)."""
    with open_archive(arguments, read_only=True) as archive:
        current, head = _revision(archive), head_revision()
    if current == head:
        print(f"{current} (head)")
        return 0
    print(f"{current or 'none'}; the newest is {head}: run `{PROGRAM} db upgrade`")
    return 1


def _silence_stdout() -> None:
    # Python flushes stdout at exit and would raise BrokenPipeError again.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
