"""Tables for people (``cli/output.py``): sized to the terminal, Korean counted
two columns wide, missing values blank, text cut only where room runs out."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from news_archive.cli.output import (
    DEFAULT_WIDTH,
    ELLIPSIS,
    display_width,
    format_cell,
    render_table,
    terminal_width,
)
from tests.test_cli import Cli

LONG_TITLE = "삼성전자, 차세대 HBM4 양산 돌입…AI 반도체 주도권 탈환 나서"  # 61 columns
SNIPPET = "…고객사와의 긴밀한 «협력»을 통해 품질과 공급 안정성을 동시에 확보…"
ROWS = [
    (2, date(2026, 11, 22), "maeil_ilbo", LONG_TITLE, SNIPPET),
    (11, date(2026, 11, 18), "skt_insight", "SKT 보고서", "주요 «협력»사 120곳"),
]
HEADERS = ("id", "published", "site", "title", "snippet")


def widths_of(table: str) -> list[int]:
    return [display_width(line) for line in table.splitlines()]


def test_a_table_with_room_cuts_nothing() -> None:
    table = render_table(HEADERS, ROWS, width=200)
    assert LONG_TITLE in table  # no fixed cut at 40 characters
    assert SNIPPET in table
    header, _rule, first, _ = table.splitlines()
    assert header.split() == list(HEADERS)
    # Columns line up in display columns: Hangul counts two.
    assert display_width(first[: first.index("…고객사")]) == display_width(
        header[: header.index("snippet")]
    )


@pytest.mark.parametrize("width", [100, 80, 60])
def test_the_widest_text_columns_shrink_to_the_width(width: int) -> None:
    table = render_table(HEADERS, ROWS, width=width, anchors={4: "«"})
    assert max(widths_of(table)) <= width
    lines = table.splitlines()
    # Numbers, dates and the short site names are never cut.
    assert lines[2].startswith("2   2026-11-22  maeil_ilbo   ")
    assert lines[3].startswith("11  2026-11-18  skt_insight  SKT 보고서")
    assert ELLIPSIS in lines[2]
    # The snippet is cut around its highlight, not before it.
    assert "«협력»" in lines[2]


def test_the_widest_column_shrinks_first() -> None:
    title, snippet = "가" * 30, "a" * 40  # 60 and 40 columns
    rows = [(1, title, snippet)]
    # 2 + 60 + 40 and two gaps of 2: ten columns too many come off the title alone...
    table = render_table(("id", "title", "snippet"), rows, width=96)
    assert snippet in table
    assert title not in table
    assert max(widths_of(table)) == 96
    # ...and once it is level with the snippet, off both in turn.
    lines = render_table(("id", "title", "snippet"), rows, width=74).splitlines()
    assert lines[1].split() == ["--", "-" * 34, "-" * 34]


def test_text_is_never_cut_below_the_floor_nor_its_header() -> None:
    table = render_table(("text",), [("가" * 30,)], width=5)
    # MIN_TEXT_WIDTH: a terminal too narrow overflows rather than show nothing.
    assert widths_of(table)[1] == 12
    assert table.splitlines()[2] == "가" * 5 + ELLIPSIS


def test_missing_values_are_blank_and_cells_one_line() -> None:
    table = render_table(
        ("name", "author", "when", "ok"),
        [("a", None, None, None), ("b\nc", "박효길", datetime(2026, 1, 2, 3, 4, tzinfo=UTC), True)],
        width=80,
    )
    assert "None" not in table
    lines = table.splitlines()
    assert lines[2] == "a"
    assert lines[3].split() == ["b", "c", "박효길", "2026-01-02", "03:04", "yes"]
    assert format_cell(None) == ""


def test_the_width_is_the_terminals_and_columns_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "70")
    assert terminal_width() == 70
    assert max(widths_of(render_table(HEADERS, ROWS))) <= 70
    monkeypatch.delenv("COLUMNS")
    # Under pytest the output is no terminal: the fallback width.
    assert terminal_width() == DEFAULT_WIDTH


def test_search_table_fits_the_terminal(
    cli: Cli, archive_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "72")
    output = cli.succeed("search", "협력", database_url=archive_url)
    table = output.split("\n\n")[0]
    assert max(widths_of(table)) <= 72
    assert all("«협력»" in line for line in table.splitlines()[2:])
    monkeypatch.setenv("COLUMNS", "250")
    wide = cli.succeed("search", "HBM4", database_url=archive_url)
    assert "삼성전자, 차세대 HBM4 양산 돌입…AI 반도체 주도권 탈환 나서" in wide


def test_show_prints_missing_values_blank(cli: Cli, archive_url: str) -> None:
    # The SKT seed names no author: the row is there, empty.
    output = cli.succeed("show", "https://news.sktelecom.com/129639", database_url=archive_url)
    assert "None" not in output
    assert "\n  author\n" in output
