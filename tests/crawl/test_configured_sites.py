"""Two sites that exist only as configuration (``seeds/sites.toml``): 한강타임즈, an
NDSoft paper in the V3 skin, and 빛가람 뉴스룸, a WordPress newsroom in a ``post-*``
theme. With ``SITES_FILE`` naming that file, real ``scrapy crawl`` runs take each
from its seed folder into SQLite (day 1), then from its day-2 folder (one new
article, one edited, the rest answering 304); ``scrapy list`` and ``scrapy check``
see them; a bad sites file stops a crawl with the configuration-error exit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from scrapy.exceptions import UsageError
from scrapy.settings import Settings

import news_archive.crawler.settings as project_settings
from news_archive.crawler.extensions.run import CONFIGURATION_ERROR_EXIT_CODE
from news_archive.crawler.sites import SITES, all_sites
from news_archive.crawler.spiders.sites import SiteSpiderLoader
from tests.crawl.crawling import ROOT, SEEDS, Snapshot, crawl, snapshot
from tests.crawl.test_capture import reextract_counts
from tests.crawl.test_scrapy_commands import _scrapy

SITES_FILE = SEEDS / "sites.toml"
CONFIGURED = ("bitgaram_newsroom", "hangang_times")
HANGANG = "https://www.hangangtimes.example/news/articleView.html?idxno={}"
BITGARAM = "https://newsroom.bitgaram.example/{}"


@pytest.fixture(scope="module")
def crawls(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Snapshot]:
    """Both configured sites crawled on day 1, then on day 2 (every known article due,
    so each is revisited with a conditional request), into one SQLite archive."""
    database_url = f"sqlite:///{tmp_path_factory.mktemp('configured') / 'archive.db'}"
    always_due = ("-s", "REVISIT_SCHEDULE=*=0s")
    # The newsroom signs its press releases with its own name (no author), as SKT
    # 뉴스룸 does: its author floor is set on the command line, as for any site.
    floors = dict(project_settings.HEALTH_FILL_FLOORS, bitgaram_newsroom={"author": 0.0})
    snapshots = {}
    for step, suffix in (("day1", ""), ("day2", "_day2")):
        for spider in CONFIGURED:
            crawl(
                spider,
                SEEDS / f"{spider}{suffix}",
                database_url,
                *always_due,
                "-s",
                f"HEALTH_FILL_FLOORS={json.dumps(floors)}",
                environment={"SITES_FILE": str(SITES_FILE)},
            )
        snapshots[step] = snapshot(database_url)
    return snapshots


def _stored_at(value: object) -> str:
    """A stored datetime as text (SQLite returns it as stored)."""
    return str(value).replace("T", " ")[:19]


def test_day1_stores_every_article_of_both_feeds(crawls: dict[str, Snapshot]) -> None:
    day1 = crawls["day1"]
    assert sorted(day1.site("hangang_times")) == sorted(
        HANGANG.format(i) for i in (30121, 30122, 30123, 30124, 30125)
    )
    assert sorted(day1.site("bitgaram_newsroom")) == sorted(
        BITGARAM.format(i) for i in (2041, 2043, 2046, 2048, 2050)
    )
    assert all(count == 1 for count in day1.versions.values())
    assert day1.errors == []
    assert [run["spider"] for run in day1.runs] == list(CONFIGURED)
    assert all(run["finish_reason"] == "finished" for run in day1.runs)


def test_authors_dates_and_sections_of_the_ndsoft_site(crawls: dict[str, Snapshot]) -> None:
    articles = crawls["day1"].articles
    expected = {
        # JSON-LD dates with their offset; the byline of the V3 info items
        30121: ("홍길동", "2026-11-21 01:05:00", "사회"),
        # no JSON-LD: `입력 2026.11.20 16:40` in Asia/Seoul, two reporters
        30122: ("이서연, 박준호", "2026-11-20 07:40:00", "문화"),
        30123: ("김도윤", "2026-11-19 02:30:00", "경제"),
        # no headline element, no JSON-LD: the info items still date and sign it
        30125: ("박준호", "2026-11-18 06:20:00", "사회"),
    }
    for number, (author, published, section) in expected.items():
        row = articles[HANGANG.format(number)]
        assert (row["author"], _stored_at(row["published_at"]), row["section"]) == (
            author,
            published,
            section,
        ), number
        assert row["body"].startswith(f"[한강타임즈 {author.replace(', ', '·')} 기자]")
        assert row["title"]
    assert articles[HANGANG.format(30123)]["subtitle"] == (
        "학교·교회 주차장 주말 개방\n빈자리 실시간 안내 앱도 연동"
    )


def test_the_mobile_host_and_a_trailing_slash_land_on_the_canonical_rows(
    crawls: dict[str, Snapshot],
) -> None:
    aliases = crawls["day1"].aliases
    assert aliases["https://m.hangangtimes.example/news/articleView.html?idxno=30123"] == (
        HANGANG.format(30123)
    )
    assert aliases["https://newsroom.bitgaram.example/2046/"] == BITGARAM.format(2046)


def test_authors_dates_and_tags_of_the_wordpress_site(crawls: dict[str, Snapshot]) -> None:
    day1 = crawls["day1"]
    press = day1.articles[BITGARAM.format(2041)]
    # Signed by the newsroom itself: a brand, not an author.
    assert press["author"] is None
    assert _stored_at(press["published_at"]) == "2026-11-20 00:00:00"
    assert press["section"] == "보도자료"
    assert day1.tags[BITGARAM.format(2041)] == ["RE100", "스마트그리드", "나주"]
    feature = day1.articles[BITGARAM.format(2043)]
    assert feature["author"] == "김빛나"
    assert feature["section"] == "에너지 이야기"
    # `글 최은비`: the role word is no part of the name; the date of `<time datetime>`
    interview = day1.articles[BITGARAM.format(2050)]
    assert interview["author"] == "최은비"
    assert _stored_at(interview["published_at"]) == "2026-11-17 07:00:00"
    for row in day1.site("bitgaram_newsroom").values():
        # The theme's share box stays out of the body.
        assert not {"공유하기", "링크 복사", "페이스북"} & set(row["body"].split("\n"))
        assert row["title"]


def test_day2_adds_the_new_article_and_one_version_of_the_edited_one(
    crawls: dict[str, Snapshot],
) -> None:
    before, after = crawls["day1"], crawls["day2"]
    assert set(after.articles) - set(before.articles) == {
        HANGANG.format(30129),
        BITGARAM.format(2052),
    }
    changed = {url for url, count in after.versions.items() if count > 1}
    assert changed == {HANGANG.format(30122), BITGARAM.format(2043)}
    assert all(after.versions[url] == 2 for url in changed)
    assert "안전요원 120명" in after.articles[HANGANG.format(30122)]["body"]
    assert "서버 점검" in after.articles[BITGARAM.format(2043)]["body"]
    for run in after.runs[-2:]:
        stats = run["stats"]
        assert (stats["archive/stored/new"], stats["archive/stored/changed"]) == (1, 1)
        # the four unchanged articles answered their conditional revisit with 304
        assert stats["archive/stored/unchanged"] == stats["archive/not_modified"] == 4


def test_the_spider_loader_adds_a_spider_per_configured_site() -> None:
    """What ``scrapy list`` prints, in-process: the project's loader with SITES_FILE."""
    settings = Settings({"SPIDER_MODULES": project_settings.SPIDER_MODULES})
    assert sorted(SiteSpiderLoader.from_settings(settings).list()) == sorted(SITES)
    settings.set("SITES_FILE", str(SITES_FILE))
    loader = SiteSpiderLoader.from_settings(settings)
    assert sorted(loader.list()) == sorted([*SITES, *CONFIGURED])
    spider = loader.load("hangang_times")
    assert (spider.__name__, spider.site.name, spider.site.time_zone.key) == (
        "HangangTimesSpider",
        "hangang_times",
        "Asia/Seoul",
    )
    assert loader.load("maeil_ilbo").site is SITES["maeil_ilbo"]


def test_a_bad_sites_file_is_refused_by_the_loader_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "sites.toml"
    bad.write_text(
        '[[site]]\nname = "x_times"\ncms = "drupal"\nhosts = ["x.example"]\n'
        'time_zone = "Asia/Seoul"\n',
        "utf-8",
    )
    loader = SiteSpiderLoader.from_settings(Settings({"SITES_FILE": str(bad)}))
    with pytest.raises(UsageError, match=r"site 1 \(x_times\): unknown cms 'drupal'"):
        loader.list()


def test_scrapy_list_names_the_configured_spiders() -> None:
    listed = _scrapy("list", cwd=ROOT, SITES_FILE=str(SITES_FILE))
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split() == sorted([*SITES, *CONFIGURED])


@pytest.mark.parametrize("spider", CONFIGURED)
def test_check_runs_the_contracts_of_a_configured_site(spider: str, tmp_path: Path) -> None:
    checked = _scrapy(
        "check", spider, cwd=ROOT, SITES_FILE=str(SITES_FILE),
        REPLAY_DIR=str(SEEDS / spider), DATABASE_URL=f"sqlite:///{tmp_path / 'a.db'}",
    )  # fmt: skip
    assert checked.returncode == 0, checked.stderr
    assert "Ran 3 contracts" in checked.stderr
    assert checked.stderr.rstrip().endswith("OK")


def test_a_crawl_with_a_bad_sites_file_exits_with_the_configuration_error(
    tmp_path: Path,
) -> None:
    bad = tmp_path / "sites.toml"
    bad.write_text(
        '[[site]]\nname = "hangang_times"\ncms = "ndsoft"\n'
        'hosts = ["www.hangangtimes.example"]\ntime_zone = "Asia/Sleepy_Hollow"\n',
        "utf-8",
    )
    result = crawl(
        "hangang_times",
        SEEDS / "hangang_times",
        f"sqlite:///{tmp_path / 'a.db'}",
        expect_exit=CONFIGURATION_ERROR_EXIT_CODE,
        environment={"SITES_FILE": str(bad)},
    )
    (line,) = [line for line in result.stderr.splitlines() if "configuration error" in line]
    assert line == (
        f"crawl hangang_times: configuration error: sites file {bad}, site 1 (hangang_times): "
        "unknown time zone 'Asia/Sleepy_Hollow' (an IANA name: 'Asia/Seoul')"
    )
    assert "Traceback" not in result.stderr


def test_reextraction_extracts_a_configured_sites_captures(sqlite_url: str, tmp_path: Path) -> None:
    """``news-archive reextract`` with SITES_FILE: the configured site's captures are
    extracted again in worker processes (the site travels there by pickle); without
    the file, its articles are named as of an unknown site."""
    warc = tmp_path / "warc"
    sites_file = {"SITES_FILE": str(SITES_FILE)}
    crawl(
        "hangang_times", SEEDS / "hangang_times", sqlite_url, warc_dir=warc, environment=sites_file
    )
    sites = all_sites(SITES_FILE)
    assert reextract_counts(sqlite_url, warc, progress=False, workers=2, sites=sites) == {
        "targets": 5,
        "unchanged": 5,
    }
    unknown = reextract_counts(sqlite_url, warc, progress=False, on_failure=lambda _: None)
    assert unknown == {"targets": 5, "unusable": 5, "unusable/unknown_site": 5}
    command = [str(Path(sys.executable).parent / "news-archive"), "reextract", "--site"]
    command += ["hangang_times", "--database-url", sqlite_url, "--warc-dir", str(warc)]
    done = subprocess.run(
        [*command, "--no-progress", "--json"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **sites_file},
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"targets": 5, "unchanged": 5}


def test_the_four_classes_are_stored_as_the_articles_they_are(
    crawls: dict[str, Snapshot],
) -> None:
    """The configured sites get the generic rules too: a title without headline
    element loses the site's name, a <br> body keeps its dateline paragraph, a
    subtitle deep in the body is a subtitle, a download box and its usage note are
    no article text."""
    articles = crawls["day1"].articles
    no_headline = articles[HANGANG.format(30125)]
    assert no_headline["title"] == "성동구, 응봉산 개나리 군락지에 무장애 숲길 1.2㎞ 조성"
    paragraphs = no_headline["body"].split("\n")
    assert len(paragraphs) == 5
    assert paragraphs[0].startswith("[한강타임즈 박준호 기자] 서울 성동구가")
    long_read = articles[HANGANG.format(30124)]
    deep = "큰비 오면 하수 넘쳐…“물재생센터 지하화 서둘러야”"
    assert deep in long_read["subtitle"].split("\n") and deep not in long_read["body"]
    assert "흰수마자, 한강 서울 구간서 첫 발견" not in long_read["body"]
    press = articles[BITGARAM.format(2048)]
    for furniture in ("보도자료 다운로드", ".hwp", "자유롭게 사용하실 수 있습니다", "관련 글"):
        assert furniture not in press["body"], furniture
    interview = articles[BITGARAM.format(2050)]
    assert interview["title"].endswith("전기 끊기지 않는 섬을 만든 사람들")
    assert interview["body"].startswith("[빛가람 뉴스룸 최은비 기자] 목포에서")
    assert interview["subtitle"] == "“바람 세면 전기 남고, 잦아들면 모자랐죠”"
