"""Sites on a known CMS from configuration alone (``SITES_FILE``): what an entry
becomes (an instance of its CMS profile), what the profile fills in, the site's time
zone, and a one-line error for every mistake a sites file can make."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime
from pathlib import Path

import pytest

from news_archive.cli.main import CliError, check_site
from news_archive.crawler.cms.ndsoft import NDSoftSite
from news_archive.crawler.cms.wordpress import WordPressSite
from news_archive.crawler.extract.dates import (
    KOREA,
    LocalTime,
    parse_iso,
    parse_korea_local,
    parse_local,
)
from news_archive.crawler.sites import SITES, SitesFileError, all_sites
from news_archive.crawler.sites.maeil_ilbo import MaeilIlbo
from news_archive.crawler.sites.skt_insight import SktInsight
from news_archive.crawler.spiders.sites import spider_class
from news_archive.vocabulary import Article, FeedEntry
from tests.golden import FETCHED_AT, SEEDS

ENTRY = """
[[site]]
name = "{name}"
cms = "ndsoft"
hosts = ["www.{name}.example", "m.{name}.example"]
brands = ["가람일보"]
time_zone = "{zone}"
"""
PAGE = """<!DOCTYPE html><html lang="ko"><head><meta charset="utf-8">
<title>강변 산책로 새 단장 - 가람일보</title></head><body>
<section class="article-view-head"><h1 class="titles">강변 산책로 새 단장</h1>
<ul class="infos"><li>김가람 기자</li><li>입력 2026.11.20 16:40</li></ul></section>
<article id="article-view-content-div">
<p>[가람일보 김가람 기자] 강변 산책로가 새로 단장을 마쳤다.</p>
<p>구는 낡은 보도블록을 걷어내고 자전거 도로와 산책로를 나눠 안전을 높였다고 밝혔다.</p>
<p>이 기사를 공유합니다</p></article></body></html>"""
BODY = (
    "[가람일보 김가람 기자] 강변 산책로가 새로 단장을 마쳤다.\n"
    "구는 낡은 보도블록을 걷어내고 자전거 도로와 산책로를 나눠 안전을 높였다고 밝혔다."
)


def _sites_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sites.toml"
    path.write_text(text, "utf-8")
    return path


def test_an_entry_is_an_instance_of_its_profile_with_the_profiles_defaults(
    tmp_path: Path,
) -> None:
    sites = all_sites(_sites_file(tmp_path, ENTRY.format(name="garam", zone="Asia/Seoul")))
    assert list(sites) == [*SITES, "garam"]
    site = sites["garam"]
    assert type(site) is NDSoftSite
    assert site.hosts == frozenset({"www.garam.example", "m.garam.example"})
    assert site.article_url == "https://www.garam.example/news/articleView.html?idxno={id}"
    assert site.feed_urls == ("https://www.garam.example/rss/allArticle.xml",)
    assert site.sample_article_id is None
    assert (
        site.canonical_url("http://m.garam.example/news/articleViewAmp.html?idxno=7&x=1")
        == "https://www.garam.example/news/articleView.html?idxno=7"
    )
    assert site.backfill_start_urls(("S1N2",)) == [
        "https://www.garam.example/news/articleList.html?sc_section_code=S1N2&view_type=sm&page=1"
    ]
    article = site.extract(
        "https://www.garam.example/news/articleView.html?idxno=7", PAGE.encode(), {}, FETCHED_AT
    )
    assert isinstance(article, Article)
    assert (article.title, article.authors, article.body) == (
        "강변 산책로 새 단장",
        ("김가람",),
        BODY,
    )
    assert article.published_at == datetime(2026, 11, 20, 7, 40, tzinfo=UTC)
    # The same unchanged file gives the same instances (a spider's site is one object).
    assert all_sites(tmp_path / "sites.toml")["garam"] is site


def test_dates_without_a_zone_are_read_in_the_sites_time_zone(tmp_path: Path) -> None:
    site = all_sites(_sites_file(tmp_path, ENTRY.format(name="garam", zone="America/New_York")))[
        "garam"
    ]
    article = site.extract(
        "https://www.garam.example/news/articleView.html?idxno=7", PAGE.encode(), {}, FETCHED_AT
    )
    assert isinstance(article, Article)
    assert article.published_at == datetime(2026, 11, 20, 21, 40, tzinfo=UTC)  # EST, -05:00
    feed = b"""<?xml version="1.0"?><rss version="2.0"><channel><item><title>t</title>
<link>https://www.garam.example/news/articleView.html?idxno=8</link>
<pubDate>2026-07-01 09:00:00</pubDate></item></channel></rss>"""
    (entry,) = site.feed_entries(feed, site.feed_urls[0])
    assert entry.published_at == datetime(2026, 7, 1, 13, 0, tzinfo=UTC)  # EDT, -04:00


# Zone-less ISO dates in the JSON-LD and article:* signals (<time datetime> below).
ISO_PAGE = """<!DOCTYPE html><html lang="de"><head><meta charset="utf-8">
<title>Neue Uferpromenade eröffnet - Garam Zeitung</title>
<meta property="og:type" content="article">
{metas}
</head><body>
<article id="article-view-content-div">
<p>Die Uferpromenade ist nach zwei Jahren Bauzeit wieder für Fußgänger geöffnet.</p>
<p>Die Stadt hat die alten Platten ersetzt und Rad- und Fußweg getrennt.</p>
</article></body></html>"""


@pytest.mark.parametrize(
    ("metas", "source"),
    [
        (
            '<script type="application/ld+json">{"@type": "NewsArticle",'
            ' "datePublished": "2026-07-01T09:00:00", "dateModified": "2026-07-01T10:30:00"}'
            "</script>",
            "json-ld",
        ),
        (
            '<meta property="article:published_time" content="2026-07-01T09:00:00">'
            '<meta property="article:modified_time" content="2026-07-01T10:30:00">',
            "article:published_time",
        ),
    ],
)
def test_zone_less_iso_dates_are_read_in_the_sites_time_zone(
    tmp_path: Path, metas: str, source: str
) -> None:
    """A configured site in Europe/Berlin: ``2026-07-01T09:00:00`` is 09:00 CEST
    (+02:00), not 09:00 Korea time."""
    site = all_sites(_sites_file(tmp_path, ENTRY.format(name="garam", zone="Europe/Berlin")))[
        "garam"
    ]
    page = ISO_PAGE.format(metas=metas)
    article = site.extract(
        "https://www.garam.example/news/articleView.html?idxno=9", page.encode(), {}, FETCHED_AT
    )
    assert isinstance(article, Article)
    assert article.published_at == datetime(2026, 7, 1, 7, 0, tzinfo=UTC)
    assert article.modified_at == datetime(2026, 7, 1, 8, 30, tzinfo=UTC)
    assert article.sources["published_at"] == source
    # An ISO date with an offset keeps its own.
    offset = page.replace("2026-07-01T09:00:00", "2026-07-01T09:00:00+09:00")
    article = site.extract(
        "https://www.garam.example/news/articleView.html?idxno=9", offset.encode(), {}, FETCHED_AT
    )
    assert isinstance(article, Article)
    assert article.published_at == datetime(2026, 7, 1, 0, 0, tzinfo=UTC)
    # The declared sites keep Korea time for the same zone-less value.
    assert parse_iso("2026-07-01T09:00:00") == datetime(2026, 7, 1, 0, 0, tzinfo=UTC)


def test_a_wordpress_sites_time_element_and_unzoned_feed_dates_use_its_zone(
    tmp_path: Path,
) -> None:
    path = _sites_file(
        tmp_path,
        """
[[site]]
name = "garam_newsroom"
cms = "wordpress"
hosts = ["news.garam.example"]
time_zone = "Europe/Berlin"
""",
    )
    site = all_sites(path)["garam_newsroom"]
    page = (
        "<html><head><title>Windpark eröffnet</title></head>"
        '<body><article id="post-4711"><h1 class="post-title">Windpark eröffnet</h1>'
        '<div class="post-content"><p>Der Windpark an der Küste ist in Betrieb gegangen.</p>'
        "<p>Er liefert Strom für vierzigtausend Haushalte im Jahr.</p></div>"
        '<time class="post-date" datetime="2026-01-15T09:00:00">15.01.2026</time>'
        "</article></body></html>"
    )
    article = site.extract("https://news.garam.example/4711", page.encode(), {}, FETCHED_AT)
    assert isinstance(article, Article)
    assert article.published_at == datetime(2026, 1, 15, 8, 0, tzinfo=UTC)  # CET, +01:00
    assert article.sources["published_at"] == "markup"
    # RFC 822's "-0000" (zone unknown) is the site's local time too.
    feed = b"""<?xml version="1.0"?><rss version="2.0"><channel><item><title>t</title>
<link>https://news.garam.example/4712</link>
<pubDate>Wed, 01 Jul 2026 09:00:00 -0000</pubDate></item></channel></rss>"""
    (entry,) = site.feed_entries(feed, site.feed_urls[0])
    assert entry.published_at == datetime(2026, 7, 1, 7, 0, tzinfo=UTC)
    # A declared WordPress site keeps Korea time for it.
    (entry,) = SITES["skt_insight"].feed_entries(
        feed.replace(b"news.garam.example", b"news.sktelecom.com"),
        SITES["skt_insight"].feed_urls[0],
    )
    assert entry.published_at == datetime(2026, 7, 1, 0, 0, tzinfo=UTC)


def test_since_is_a_date_of_the_sites_time_zone(tmp_path: Path) -> None:
    """``-a since=2026-07-01``: an article published 2026-07-01 00:30 in Berlin
    (2026-06-30 22:30 UTC, 07:30 on 2026-07-01 in Korea) is on the day for a Berlin
    site; one published 2026-06-30 23:30 in Berlin is older, though it is 2026-07-01
    in Korea."""
    site = all_sites(_sites_file(tmp_path, ENTRY.format(name="garam", zone="Europe/Berlin")))[
        "garam"
    ]
    spider = spider_class(site)(since="2026-07-01")
    url = "https://www.garam.example/news/articleView.html?idxno=1"
    on_the_day = FeedEntry(url, published_at=datetime(2026, 6, 30, 22, 30, tzinfo=UTC))
    the_day_before = FeedEntry(url, published_at=datetime(2026, 6, 30, 21, 30, tzinfo=UTC))
    assert not spider._older_than_since(on_the_day)
    assert spider._older_than_since(the_day_before)
    # The declared sites count days in Korea time.
    korean = spider_class(SITES["maeil_ilbo"])(since="2026-07-01")
    assert not korean._older_than_since(the_day_before)  # 06:30 on 2026-07-01 in Korea
    assert korean._older_than_since(
        FeedEntry(url, published_at=datetime(2026, 6, 30, 14, 59, tzinfo=UTC))
    )


def test_local_dates_keep_korea_time_for_the_declared_sites() -> None:
    assert parse_korea_local("2020.06.21 09:00") == datetime(2020, 6, 21, 0, 0, tzinfo=UTC)
    assert parse_local("2020.06.21 09:00", KOREA) == parse_korea_local("2020.06.21 09:00")
    assert LocalTime(KOREA)("2021. 03. 15") == datetime(2021, 3, 14, 15, 0, tzinfo=UTC)


def test_a_wordpress_entry_takes_its_feed_urls_and_title_brands(tmp_path: Path) -> None:
    path = _sites_file(
        tmp_path,
        """
[[site]]
name = "garam_newsroom"
cms = "wordpress"
hosts = ["news.garam.example", "blog.garam.example"]
brands = ["가람 뉴스룸", "가람전력"]
title_brands = ["가람 뉴스룸"]
time_zone = "Asia/Seoul"
feed_urls = ["https://news.garam.example/feed?cat=3"]
sample_article_id = 4711
""",
    )
    site = all_sites(path)["garam_newsroom"]
    assert type(site) is WordPressSite
    assert site.feed_urls == ("https://news.garam.example/feed?cat=3",)
    assert site.sample_article_id == "4711"
    assert site.canonical_url("https://blog.garam.example/4711/amp/") == (
        "https://news.garam.example/4711"
    )
    page = (
        "<html><head><title>가람전력, 풍력단지 준공 - 가람 뉴스룸</title>"
        '<meta property="og:title" content="가람전력, 풍력단지 준공 - 가람 뉴스룸"></head>'
        '<body><article id="post-4711"><div class="post-content">'
        "<p>가람전력이 서해안 풍력단지를 준공했습니다.</p>"
        "<p>발전 용량은 96MW로 4만 가구가 1년 동안 쓸 수 있는 전력입니다.</p>"
        '</div><time class="post-date" datetime="2026-11-20T09:00:00+09:00">2026.11.20</time>'
        "</article></body></html>"
    )
    article = site.extract("https://news.garam.example/4711", page.encode(), {}, FETCHED_AT)
    assert isinstance(article, Article)
    # Only the newsroom's name is stripped; the company's name begins the title.
    assert article.title == "가람전력, 풍력단지 준공"


def test_a_configured_site_travels_to_worker_processes_by_pickle() -> None:
    site = all_sites(SEEDS / "sites.toml")["hangang_times"]
    copy = pickle.loads(pickle.dumps(site))
    page = (SEEDS / "hangang_times" / "pages" / "30122.html").read_bytes()
    url = "https://www.hangangtimes.example/news/articleView.html?idxno=30122"
    assert copy.extract(url, page, {}, FETCHED_AT) == site.extract(url, page, {}, FETCHED_AT)


def test_the_declared_sites_are_instances_of_the_profiles() -> None:
    assert isinstance(SITES["maeil_ilbo"], NDSoftSite) and type(SITES["maeil_ilbo"]) is MaeilIlbo
    assert isinstance(SITES["skt_insight"], WordPressSite)
    assert type(SITES["skt_insight"]) is SktInsight
    assert SITES["maeil_ilbo"].feed_urls == ("https://www.m-i.kr/rss/allArticle.xml",)
    assert SITES["skt_insight"].article_url == "https://news.sktelecom.com/{id}"
    # 매일일보 keeps reading Korea time; the English edition of SKT names no post.
    assert SITES["maeil_ilbo"].time_zone is KOREA
    assert SITES["skt_insight"].canonical_url("https://news.sktelecom.com/en/129639") is None


GOOD = 'name = "garam"\ncms = "ndsoft"\nhosts = ["www.garam.example"]\ntime_zone = "Asia/Seoul"\n'


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (GOOD.replace('"ndsoft"', '"drupal"'), "unknown cms 'drupal' (known: ndsoft, wordpress)"),
        (GOOD.replace('hosts = ["www.garam.example"]\n', ""), "missing hosts"),
        (GOOD.replace('["www.garam.example"]', "[]"), "hosts is empty"),
        (
            GOOD.replace('"www.garam.example"', '"https://www.garam.example/"'),
            "host 'https://www.garam.example/' is no lowercase host name",
        ),
        (GOOD.replace('"Asia/Seoul"', '"Asia/Busan"'), "unknown time zone 'Asia/Busan'"),
        (GOOD.replace('"garam"', '"Garam Ilbo"'), "name 'Garam Ilbo' is no spider name"),
        (GOOD.replace('"Asia/Seoul"', '"localtime"'), "unknown time zone 'localtime'"),
        (GOOD.replace('"Asia/Seoul"', '"posixrules"'), "unknown time zone 'posixrules'"),
        (GOOD.replace('"Asia/Seoul"', '"Factory"'), "unknown time zone 'Factory'"),
        (
            GOOD.replace('"Asia/Seoul"', '"posix/Asia/Seoul"'),
            "unknown time zone 'posix/Asia/Seoul'",
        ),
        (GOOD.replace('"Asia/Seoul"', '"right/UTC"'), "unknown time zone 'right/UTC'"),
        # Spellings that would make a declared site's spider class (MaeilIlboSpider).
        (GOOD.replace('"garam"', '"maeil__ilbo"'), "name 'maeil__ilbo' is no spider name"),
        (GOOD.replace('"garam"', '"maeil_ilbo_"'), "name 'maeil_ilbo_' is no spider name"),
        (GOOD.replace('"garam"', '"_maeil_ilbo"'), "name '_maeil_ilbo' is no spider name"),
        (GOOD + 'brand = ["가람일보"]\n', "unknown key 'brand'"),
        (GOOD.replace('"garam"', '"maeil_ilbo"'), "the spider name 'maeil_ilbo' is taken"),
        (
            GOOD.replace("www.garam.example", "www.m-i.kr"),
            "host 'www.m-i.kr' belongs to site 'maeil_ilbo'",
        ),
        (
            GOOD + 'feed_urls = ["https://elsewhere.example/rss"]\n',
            "feed URL 'https://elsewhere.example/rss' is not an http(s) URL on one of the hosts",
        ),
    ],
)
def test_every_mistake_is_one_line_naming_file_and_entry(
    tmp_path: Path, text: str, error: str
) -> None:
    path = _sites_file(tmp_path, "[[site]]\n" + text)
    with pytest.raises(SitesFileError) as refused:
        all_sites(path)
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith(f"sites file {path.resolve()}, site 1")
    assert error in message


def test_names_making_one_spider_class_name_are_refused(tmp_path: Path) -> None:
    """``garam_2`` and ``garam2`` are both ``Garam2Spider``: the second is refused."""
    path = _sites_file(
        tmp_path,
        "[[site]]\n"
        + GOOD.replace('"garam"', '"garam2"')
        + "[[site]]\n"
        + GOOD.replace('"garam"', '"garam_2"').replace("www.garam", "m.garam"),
    )
    with pytest.raises(SitesFileError) as refused:
        all_sites(path)
    assert str(refused.value).endswith(
        "site 2 (garam_2): the spider class name 'Garam2Spider' is taken by site 'garam2'"
    )


def test_configured_names_and_zones_that_are_accepted(tmp_path: Path) -> None:
    text = "".join(
        "[[site]]\n"
        + GOOD.replace('"garam"', f'"{name}"')
        .replace("www.garam.example", f"www.{name.replace('_', '-')}.example")
        .replace('"Asia/Seoul"', f'"{zone}"')
        for name, zone in (
            ("garam", "Europe/Berlin"),
            ("garam_ilbo2", "UTC"),
            ("g2_x", "Etc/GMT-9"),
        )
    )
    sites = all_sites(_sites_file(tmp_path, text))
    assert [str(sites[n].time_zone) for n in ("garam", "garam_ilbo2", "g2_x")] == [
        "Europe/Berlin",
        "UTC",
        "Etc/GMT-9",
    ]


def test_a_name_twice_in_one_file_is_refused(tmp_path: Path) -> None:
    second = GOOD.replace("www.garam.example", "www.garam2.example")
    path = _sites_file(tmp_path, f"[[site]]\n{GOOD}\n[[site]]\n{second}")
    with pytest.raises(SitesFileError, match=r"site 2 \(garam\): the spider name 'garam' is taken"):
        all_sites(path)


def test_a_missing_or_broken_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SitesFileError, match="cannot be read"):
        all_sites(tmp_path / "nowhere.toml")
    with pytest.raises(SitesFileError, match="not TOML"):
        all_sites(_sites_file(tmp_path, "[[site]\nname = "))


def test_the_command_lines_site_check_sees_configured_sites(tmp_path: Path) -> None:
    sites_file = str(SEEDS / "sites.toml")
    check_site("hangang_times", sites_file)
    with pytest.raises(CliError, match="unknown site 'hangang_times'") as unknown:
        check_site("hangang_times")
    assert unknown.value.exit_code == 2
    bad = _sites_file(tmp_path, "[[site]]\n" + GOOD.replace('"ndsoft"', '"joomla"'))
    with pytest.raises(CliError, match=r"configuration error: .*unknown cms 'joomla'") as refused:
        check_site("garam", str(bad))
    assert refused.value.exit_code == 78
