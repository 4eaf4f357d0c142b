"""The body container's rules by kind (crawler/extract/furniture.py), on small
inline HTML: paragraphs from ``<br>`` with the dateline kept, subtitles by class
wherever they sit, and furniture blocks by their structure, with the negative
cases a rule must not touch."""

from __future__ import annotations

import pytest
from lxml import html as lxml_html

from news_archive.crawler.extract.body import body_lines
from news_archive.crawler.extract.furniture import (
    furniture_kind,
    is_subtitle,
    link_density,
    paragraphs_from_breaks,
    prune_furniture,
    subtitle_elements,
)

DATELINE = (
    "[매일일보 박효길 기자] SK텔레콤이 20일 인공지능(AI) 통역 서비스를 12개 언어로 늘린다고 밝혔다."
)
SECOND = "회사는 연말까지 이용자 100만명을 확보한다는 계획이다."
THIRD = "업계에서는 통신사 간 AI 서비스 경쟁이 본격화할 것으로 보고 있다."
LONG = (
    "유영상 SK텔레콤 사장은 이날 서울 중구 본사에서 열린 간담회에서 “통역콜은 해외 고객과 "
    "통화하는 소상공인에게 특히 쓸모가 크다”며 “연내 기업용 요금제도 내놓겠다”고 말했다."
)


def lines(markup: str) -> list[str]:
    return body_lines(lxml_html.fragment_fromstring(markup), whole_page=False)


def element(markup: str) -> lxml_html.HtmlElement:
    return lxml_html.fragment_fromstring(markup)


# ----------------------------------------------------------- paragraphs from <br>


@pytest.mark.parametrize(
    "markup",
    [
        # text loose in the container, <br><br> between paragraphs, <p> after
        f'<div id="c">{DATELINE}<br><br>{SECOND}<p>{THIRD}</p><p>{LONG}</p></div>',
        # text in an inner div, then paragraphs: trafilatura alone drops the dateline
        f'<div id="c"><div style="x">{DATELINE}<br><br>{SECOND}<br><br>{THIRD}</div>'
        f"<p>{LONG}</p></div>",
        # single <br> between paragraphs, a photo first
        f'<div id="c"><figure><img src="a.jpg"></figure>{DATELINE}<br>{SECOND}<br>{THIRD}'
        f"<br><p>{LONG}</p></div>",
        # the dateline's bracket in bold stays one paragraph with its sentence
        f'<div id="c"><b>{DATELINE[:14]}</b>{DATELINE[14:]}<br><br>{SECOND}<br><br>{THIRD}'
        f"<p>{LONG}</p></div>",
    ],
    ids=["loose-then-p", "div-then-p", "single-br", "bold-dateline"],
)
def test_br_separated_text_becomes_paragraphs_with_the_dateline(markup: str) -> None:
    assert lines(markup) == [DATELINE, SECOND, THIRD, LONG]


def test_p_based_body_is_unchanged() -> None:
    markup = f'<div id="c"><p>{DATELINE}</p><p>{SECOND}</p><h3>소제목</h3><p>{THIRD}</p></div>'
    assert lines(markup) == [DATELINE, SECOND, "소제목", THIRD]


# -------------------------------------------------------------------- subtitles


@pytest.mark.parametrize(
    "markup",
    [
        '<h2 class="subheading">부제</h2>',
        '<h4 class="sub-title">부제</h4>',
        '<div class="sub_title">부제</div>',
        '<p class="subtitle">부제</p>',
        '<div class="article-sub-title">부제</div>',
        '<div class="article_subhead">부제</div>',
        '<div id="부제목">부제</div>',
        '<h2 class="wp-block-heading post-subtitle">부제</h2>',
        '<p class="entry-sub-title">부제</p>',
        '<div class="article-sub">부제</div>',
    ],
)
def test_subtitle_by_class(markup: str) -> None:
    assert is_subtitle(element(markup))


@pytest.mark.parametrize(
    "markup",
    [
        "<h3>소제목</h3>",
        '<h3 class="wp-block-heading">소제목</h3>',
        "<p><strong>소제목</strong></p>",
        '<ul class="sub-menu"><li>메뉴</li></ul>',
        '<div class="subscribe-box">구독</div>',
        '<div class="subheader">머리</div>',
        '<div class="article-subscribe">구독</div>',
    ],
)
def test_in_text_headings_are_not_subtitles(markup: str) -> None:
    assert not is_subtitle(element(markup))


def test_subtitle_deep_in_a_long_body_leaves_the_body() -> None:
    body = "".join(f"<p>{LONG} ({n})</p>" for n in range(12))
    markup = (
        f'<div id="c"><p>{DATELINE}</p>{body}<div class="x"><h2 class="subheading">통역콜, '
        f"12개 언어로</h2></div><h3>요금은 그대로</h3><p>{THIRD}</p></div>"
    )
    container = element(markup)
    assert [e.text_content() for e in subtitle_elements(container)] == ["통역콜, 12개 언어로"]
    got = lines(markup)
    assert "통역콜, 12개 언어로" not in got
    assert "요금은 그대로" in got and got[0] == DATELINE and got[-1] == THIRD


# --------------------------------------------------------- furniture by structure


def test_link_density_is_link_text_over_all_text() -> None:
    assert link_density(element('<p>abcd<a href="x">efgh</a></p>')) == 0.5
    assert link_density(element("<p></p>")) == 0.0


@pytest.mark.parametrize(
    ("markup", "kind"),
    [
        (
            '<div class="box"><a href="/1">첫 기사 제목</a> <a href="/2">둘째 기사 제목</a></div>',
            "box of links",
        ),
        (
            '<ul><li><a href="/1">첫 기사 제목</a></li>'
            '<li><a href="/2">KT도 AI 통역 서비스</a> (11.20)</li></ul>',
            "list of headlines",
        ),
        ('<div class="wp-block-file"><a href="/a.hwp">보도자료</a></div>', "download box"),
        ('<div class="press-attach">보도자료 원문 받기</div>', "download box"),
        ('<p><a href="/files/release.pdf">보도자료 원문(PDF)</a></p>', "download box"),
        ('<p><a href="/get?id=3" download>사진 내려받기</a></p>', "download box"),
        (
            "<p>보도자료 및 사진은 언론 보도 목적으로 자유롭게 사용하실 수 있습니다.</p>",
            "usage note",
        ),
        ("<p>사진 자료는 출처를 밝히고 자유롭게 이용할 수 있다.</p>", "usage note"),
        ("<p>저작권자 © 매일일보 무단전재 및 재배포 금지</p>", "usage note"),
        ("<div>Copyright © 2026 SK Telecom. All rights reserved.</div>", "usage note"),
        ("<p>이 기사의 무단 전재와 복제를 금합니다.</p>", "usage note"),
    ],
)
def test_furniture_by_structure(markup: str, kind: str) -> None:
    assert furniture_kind(element(markup)) == kind


@pytest.mark.parametrize(
    "markup",
    [
        # a real paragraph with one inline link
        f'<p>{LONG} 자세한 내용은 <a href="https://sktelecom.com">홈페이지</a>에서 본다.</p>',
        # a real paragraph with two inline links, mostly text
        f'<p>{LONG} <a href="/a">에이닷</a>과 <a href="/b">T전화</a>에서 쓸 수 있다.</p>',
        # an inline link to a file inside a sentence
        f'<p>{LONG} 전문은 <a href="/report.pdf">보고서</a>에 실렸다.</p>',
        # a data table, even one full of links
        '<table><tr><td><a href="/1">1분기</a></td><td><a href="/2">2분기</a></td></tr></table>',
        # an article paragraph about copyright, without a notice's wording
        "<p>정부는 웹툰 불법 복제 사이트에 대한 저작권 침해 단속을 강화하기로 했다.</p>",
        # sentences reporting on copyright, in a notice's words but not its form
        "<p>법원은 저작권자의 허락 없이 영상을 올린 것은 위법이라고 판단했다.</p>",
        "<p>이번 소송에서 저작권자인 A사는 손해배상을 청구했다.</p>",
        "<p>Copyright 침해 논란이 이어졌다.</p>",
        "<p>이 사진은 자유롭게 사용할 수 없다고 회사 측은 밝혔다.</p>",
        "<p>정부는 기사 무단 전재를 금지하는 법안을 발의했다.</p>",
        # a polite article sentence offering a service, not the material
        "<p>에이닷 앱에서 누구나 무료로 이용하실 수 있습니다.</p>",
        # a prose list
        "<ul><li>첫째, 요금을 내린다.</li><li>둘째, 데이터를 늘린다.</li></ul>",
    ],
    ids=["inline-link", "two-inline-links", "inline-file", "table", "copyright-topic",
         "copyright-owner", "copyright-holder", "copyright-word", "use-refused",
         "ban-reported", "service-offer", "prose-list"],
)  # fmt: skip
def test_not_furniture(markup: str) -> None:
    assert furniture_kind(element(markup)) is None


def test_heading_over_links_goes_with_its_box_and_text_stays() -> None:
    container = element(
        f'<div id="c"><p>{DATELINE}</p><p>{LONG}</p><h3>요금은 그대로</h3><p>{THIRD}</p>'
        "<p><strong>관련기사</strong></p>"
        '<ul><li><a href="/1">SKT, 통역콜 출시</a></li><li><a href="/2">KT도 AI 통역</a></li></ul>'
        "<h4>보도자료 다운로드</h4>"
        "<p>보도자료 및 사진은 언론 보도 목적으로 자유롭게 사용하실 수 있습니다.</p>"
        '<div><a href="/a.hwp">보도자료.hwp</a><a href="/b.zip">사진.zip</a></div>'
        f'<p><a href="/x">▶ 에이닷 바로가기</a></p><p><a href="/y">▶ 통역콜 안내</a></p></div>'
    )
    removed = prune_furniture(container)
    assert [kind for kind, _ in removed] == [
        "heading over links",
        "list of headlines",
        "heading over links",
        "usage note",
        "download box",
        "list of headlines",
        "list of headlines",
    ]
    assert lines(lxml_html.tostring(container, encoding="unicode")) == [
        DATELINE,
        LONG,
        "요금은 그대로",
        THIRD,
    ]


def test_in_text_heading_before_a_paragraph_stays() -> None:
    markup = f'<div id="c"><p>{DATELINE}</p><h3>요금은 그대로</h3><p>{THIRD}</p></div>'
    assert lines(markup) == [DATELINE, "요금은 그대로", THIRD]


# ------------------------------------------- article text that looks like furniture
# (each of these lost real text in a review of the first version of these rules)

CREDITED = "18일 서울 중구 SK텔레콤 본사에서 유영상 대표가 발언하고 있다."


@pytest.mark.parametrize(
    ("markup", "kept"),
    [
        # a wrapper holding a short item and its credit line: the credit goes, the
        # item stays (a note is a line, never a wrapper)
        (
            f'<div id="c"><div style="text-align:left"><p>{DATELINE}</p>'
            "<p>사진=ⓒ 연합뉴스</p></div></div>",
            [DATELINE],
        ),
        (f'<div id="c"><div>{DATELINE}<br><br>ⓒ 매일일보</div></div>', [DATELINE]),
        # sentences that report a sign or a notice
        (
            '<div id="c"><p>이번 소송에서 원고 측은 “ⓒ 표시가 붙은 사진을 무단으로 게재했다”고'
            " 주장했다.</p></div>",
            ["이번 소송에서 원고 측은 “ⓒ 표시가 붙은 사진을 무단으로 게재했다”고 주장했다."],
        ),
        (
            '<div id="c"><p>애플은 Copyright 2026 문구를 새로 넣었다.</p></div>',
            ["애플은 Copyright 2026 문구를 새로 넣었다."],
        ),
        # a sentence citing a file, and one linking two names
        (
            '<div id="c"><p>자세한 내용은 <a href="https://x.go.kr/a.pdf">과기정통부 6G 전략'
            " 보고서</a>에 담겼다.</p></div>",
            ["자세한 내용은 과기정통부 6G 전략 보고서에 담겼다."],
        ),
        (
            '<div id="c"><p><a href="/p/1">SK텔레콤 유영상 대표</a>와 <a href="/p/2">KT 김영섭'
            " 대표</a>가 만났다.</p></div>",
            ["SK텔레콤 유영상 대표와 KT 김영섭 대표가 만났다."],
        ),
        # a wrapper whose class names files, holding the article's paragraph
        (
            f'<div id="c"><div class="file-attach-area"><p>{LONG}</p></div></div>',
            [LONG],
        ),
    ],
    ids=["credit-in-wrapper", "credit-after-br", "sign-reported", "copyright-reported",
         "cites-a-pdf", "links-two-names", "file-class-wrapper"],
)  # fmt: skip
def test_article_text_is_never_furniture(markup: str, kept: list[str]) -> None:
    container = element(markup)
    paragraphs_from_breaks(container)
    prune_furniture(container)
    text = " ".join(container.text_content().split())
    for line in kept:
        assert line in text


def test_a_heading_before_a_linked_photo_stays() -> None:
    """WordPress "link to media file": a link around an image is a photo, not a
    download box, so the heading before it is no heading over links."""
    container = element(
        f'<div id="c"><p>{DATELINE}</p><h3>■ 주요 대책</h3>'
        '<p><a href="https://news.sktelecom.com/wp-content/uploads/2021/02/a.jpg">'
        '<img src="https://news.sktelecom.com/wp-content/uploads/2021/02/a-300x200.jpg"></a></p>'
        f"<p>{SECOND}</p></div>"
    )
    assert prune_furniture(container) == []
    assert "■ 주요 대책" in container.text_content()
