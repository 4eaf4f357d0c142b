"""The WARC module in-process: what capture writes, replay and re-extraction read back."""

from __future__ import annotations

import gzip
import random
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from scrapy import Request
from scrapy.http import Response
from scrapy.utils.test import get_crawler
from twisted.python.failure import Failure

from news_archive.crawler import warc
from news_archive.crawler.middlewares.replay import BadReplay, ReplayMiddleware
from news_archive.crawler.spiders.sites import MaeilIlboSpider
from news_archive.crawler.warc import (
    PayloadRef,
    WarcArchive,
    WarcError,
    WrittenRecord,
    payload_digest,
)

FETCHED_AT = datetime(2026, 11, 22, 2, 5, tzinfo=UTC)
PAGE = "https://www.m-i.kr/news/articleView.html?idxno={}"
# CP949 bytes with a syllable outside EUC-KR (똠): must come back byte for byte
BODY = "<html><body><p>똠방각하 합종연횡</p></body></html>".encode("cp949")


def _response(url: str, body: bytes = BODY, status: int = 200, **headers: str) -> Response:
    return Response(
        url,
        status=status,
        headers={"Content-Type": "text/html; charset=euc-kr", **headers},
        body=body,
        request=Request(url),
    )


def _store(archive: WarcArchive, response: Response) -> WrittenRecord:
    assert response.request is not None
    return archive.store_response(response.request, response, FETCHED_AT)


@pytest.fixture
def archive(tmp_path: Path) -> WarcArchive:
    archive = WarcArchive(tmp_path / "warc")
    archive.open_run("maeil_ilbo-20261122T020500-1", prefix="maeil_ilbo")
    return archive


def test_a_response_round_trips(archive: WarcArchive) -> None:
    response = _response(PAGE.format(1), ETag='"abc"')
    written = _store(archive, response)
    archive.close_run()
    assert written.record_type == "response"
    assert written.file == "maeil_ilbo-20261122T020500-1/maeil_ilbo-00001.warc.gz"
    assert written.payload_digest == payload_digest(BODY)  # known before the record is
    (capture,) = archive.captures()
    assert capture == archive.locate(written.file, written.offset)
    assert (capture.url, capture.status, capture.record_type) == (PAGE.format(1), 200, "response")
    stored = archive.retrieve_response(capture, decode=False)
    assert stored.body == BODY
    assert {(name.lower(), value) for name, value in stored.headers} >= {
        ("etag", '"abc"'),
        ("content-type", "text/html; charset=euc-kr"),
    }


def test_each_record_is_a_gzip_member_of_its_own_at_the_set_level(
    archive: WarcArchive, tmp_path: Path
) -> None:
    written = _store(archive, _response(PAGE.format(1)))
    archive.close_run()
    data = (tmp_path / "warc" / written.file).read_bytes()
    member = data[written.offset : written.offset + written.length]
    # gzip's XFL byte says how hard zlib worked: 2 at level 9 (warcio's), 0 at 2-8
    assert (member[:2], member[8]) == (b"\x1f\x8b", 0)
    assert warc.COMPRESSION_LEVEL != 9
    record = gzip.decompress(member)
    assert record.startswith(b"WARC/1.0\r\n") and b"WARC-Type: response\r\n" in record
    assert f"WARC-Payload-Digest: {payload_digest(BODY)}".encode() in record
    assert record.endswith(BODY + b"\r\n\r\n")
    # the request record follows, a member of its own
    request = gzip.decompress(data[written.offset + written.length :])
    assert request.startswith(b"WARC/1.0\r\n") and b"WARC-Type: request\r\n" in request


def test_a_run_remembers_its_latest_payloads_and_asks_for_older_ones(
    archive: WarcArchive, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Memory does not grow with a run's responses: a repeat of one of its latest
    `RECENT_PAYLOADS` payloads is a revisit at once; an older one, only when the
    caller (the capture index) names it."""
    monkeypatch.setattr(warc, "RECENT_PAYLOADS", 2)
    bodies = [BODY + bytes([i]) for i in range(3)]
    for i, body in enumerate(bodies):
        _store(archive, _response(PAGE.format(i), body))
    repeat_latest = _store(archive, _response(PAGE.format(10), bodies[2]))
    repeat_oldest = _store(archive, _response(PAGE.format(11), bodies[0]))
    named = archive.store_response(
        Request(PAGE.format(12)),
        _response(PAGE.format(12), bodies[1]),
        FETCHED_AT,
        PayloadRef(PAGE.format(1), "2026-11-22T02:05:00Z"),
    )
    archive.close_run()
    assert [repeat_latest.record_type, repeat_oldest.record_type, named.record_type] == [
        "revisit",
        "response",  # forgotten by the run, unknown to the caller: stored again
        "revisit",
    ]


def test_a_run_in_the_same_folder_never_writes_over_another(tmp_path: Path) -> None:
    """Two runs of one process started in the same second share a folder name: the
    second writes the next file, never over the first."""
    first, second = WarcArchive(tmp_path), WarcArchive(tmp_path)
    for number, archive in enumerate((first, second), 1):
        archive.open_run("maeil_ilbo-20261122T020500-1", prefix="maeil_ilbo")
        written = _store(archive, _response(PAGE.format(number)))
        archive.close_run()
        assert written.file.endswith(f"maeil_ilbo-{number:05d}.warc.gz")
    assert [capture.url for capture in WarcArchive(tmp_path).captures()] == [
        PAGE.format(1),
        PAGE.format(2),
    ]


def test_an_identical_payload_is_a_revisit_that_resolves_to_it(archive: WarcArchive) -> None:
    first = _store(archive, _response(PAGE.format(1)))
    second = _store(archive, _response(PAGE.format(2), status=200, ETag='"again"'))
    archive.close_run()
    assert (first.record_type, second.record_type) == ("response", "revisit")
    assert second.payload_digest == first.payload_digest
    revisit = archive.locate(second.file, second.offset)
    assert revisit.record_type == "revisit"
    assert revisit.payload.offset == first.offset
    stored = archive.retrieve_response(revisit, decode=True)
    # the revisit's own URL and headers, the payload it refers to
    assert stored.url == PAGE.format(2)
    assert ("etag", '"again"') in {(name.lower(), value) for name, value in stored.headers}
    assert stored.body == BODY


def test_a_revisit_resolves_to_a_payload_an_earlier_run_wrote(tmp_path: Path) -> None:
    root = tmp_path / "warc"
    day1 = WarcArchive(root)
    day1.open_run("maeil_ilbo-day1", prefix="maeil_ilbo")
    first = _store(day1, _response(PAGE.format(1)))
    day1.close_run()
    # As the capture index answers for an earlier run: URL and date, no record id.
    known = {first.payload_digest: PayloadRef(PAGE.format(1), "2026-11-22T02:05:00Z")}
    day2 = WarcArchive(root, earlier_payload=known.get)
    day2.open_run("maeil_ilbo-day2", prefix="maeil_ilbo")
    second = _store(day2, _response(PAGE.format(1)))
    day2.close_run()
    assert second.record_type == "revisit"
    reader = WarcArchive(root)
    stored = reader.retrieve_response(reader.locate(second.file, second.offset), decode=True)
    assert stored.body == BODY
    # the day-2 folder alone still replays: the payload is found in the folder beside it
    (capture,) = WarcArchive(root).captures(root / "maeil_ilbo-day2")
    assert capture.payload.file.parent.name == "maeil_ilbo-day1"


def test_a_revisit_whose_payload_is_nowhere_is_an_error(tmp_path: Path) -> None:
    archive = WarcArchive(tmp_path, earlier_payload=lambda digest: PayloadRef(PAGE.format(1), "x"))
    archive.open_run("run", prefix="maeil_ilbo")
    written = _store(archive, _response(PAGE.format(1)))
    archive.close_run()
    with pytest.raises(WarcError, match=r"refers to payload sha1:\S+ found nowhere"):
        archive.locate(written.file, written.offset)


def test_content_encoding_is_decoded_on_request(archive: WarcArchive) -> None:
    encoded = gzip.compress(BODY, mtime=0)
    written = _store(
        archive,
        _response(PAGE.format(1), body=encoded, **{"Content-Encoding": "gzip"}),
    )
    archive.close_run()
    capture = archive.locate(written.file, written.offset)
    as_captured = archive.retrieve_response(capture, decode=False)
    assert as_captured.body == encoded
    assert ("Content-Encoding", "gzip") in as_captured.headers
    decoded = archive.retrieve_response(capture, decode=True)
    assert decoded.body == BODY
    assert all(name.lower() != "content-encoding" for name, _ in decoded.headers)


def test_an_encoding_that_cannot_be_undone_is_an_error(archive: WarcArchive) -> None:
    written = _store(archive, _response(PAGE.format(1), **{"Content-Encoding": "x-unknown"}))
    archive.close_run()
    capture = archive.locate(written.file, written.offset)
    with pytest.raises(WarcError, match="Content-Encoding 'x-unknown' cannot be decoded"):
        archive.retrieve_response(capture, decode=True)


@pytest.mark.parametrize("kept", [0.01, 0.5, 0.95])
def test_a_truncated_file_is_an_error_never_a_short_page(archive: WarcArchive, kept: float) -> None:
    # a page that does not compress, so a cut lands in its headers or its payload
    body = BODY + random.Random(7).randbytes(20_000)
    written = _store(archive, _response(PAGE.format(1), body=body))
    archive.close_run()
    capture = archive.locate(written.file, written.offset)
    path = archive.root / written.file
    path.write_bytes(path.read_bytes()[: int(written.length * kept)])
    with pytest.raises(WarcError, match=rf"{path.name}@{written.offset}"):
        archive.retrieve_response(capture, decode=False)
    with pytest.raises(WarcError, match=path.name):
        WarcArchive(archive.root).captures()


def test_a_record_offset_past_the_end_is_an_error(archive: WarcArchive) -> None:
    written = _store(archive, _response(PAGE.format(1)))
    archive.close_run()
    with pytest.raises(WarcError, match="no record there"):
        archive.locate(written.file, written.offset + 10_000_000)


def test_files_rotate_at_the_size_limit(tmp_path: Path) -> None:
    archive = WarcArchive(tmp_path, max_bytes=1)
    archive.open_run("run", prefix="skt_insight")
    names = [_store(archive, _response(PAGE.format(n), body=b"%d" % n)).file for n in range(3)]
    archive.close_run()
    assert names == [f"run/skt_insight-0000{n}.warc.gz" for n in (1, 2, 3)]
    assert [c.url for c in archive.captures()] == [PAGE.format(n) for n in range(3)]


def test_a_file_cut_after_a_whole_record_still_fails_the_scan(archive: WarcArchive) -> None:
    written = _store(archive, _response(PAGE.format(1)))
    archive.close_run()
    path = archive.root / written.file
    # the response record whole, its request record cut: the page reads, the file fails
    path.write_bytes(path.read_bytes()[: written.offset + written.length + 30])
    capture = archive.locate(written.file, written.offset)
    assert archive.retrieve_response(capture, decode=False).body == BODY
    with pytest.raises(WarcError, match="gzip member cut short"):
        WarcArchive(archive.root).captures()


def _replay(directory: Path) -> ReplayMiddleware:
    return ReplayMiddleware.from_crawler(get_crawler(settings_dict={"REPLAY_DIR": str(directory)}))


def test_replay_serves_a_day_2_run_folder_as_captured(tmp_path: Path) -> None:
    """A run folder replays on its own: a revisit with its own status and headers and
    the payload an earlier run wrote beside it, still gzip as on the wire (Scrapy's
    HttpCompressionMiddleware decodes it as it did live)."""
    root = tmp_path / "warc"
    encoded = gzip.compress(BODY, mtime=0)
    gzip_headers = {"Content-Encoding": "gzip"}
    day1 = WarcArchive(root)
    day1.open_run("maeil_ilbo-day1", prefix="maeil_ilbo")
    first = _store(day1, _response(PAGE.format(1), body=encoded, **gzip_headers))
    day1.close_run()
    known = {first.payload_digest: PayloadRef(PAGE.format(1), "2026-11-22T02:05:00Z")}
    day2 = WarcArchive(root, earlier_payload=known.get)
    day2.open_run("maeil_ilbo-day2", prefix="maeil_ilbo")
    _store(day2, _response(PAGE.format(1), body=encoded, ETag='"day2"', **gzip_headers))
    _store(day2, _response(PAGE.format(2), body=b"new", status=404))
    day2.close_run()
    middleware = _replay(root / "maeil_ilbo-day2")
    revisited = middleware.process_request(Request(PAGE.format(1)))
    assert (revisited.status, revisited.body) == (200, encoded)
    assert revisited.headers["Content-Encoding"] == b"gzip"
    assert revisited.headers["ETag"] == b'"day2"'
    assert middleware.process_request(Request(PAGE.format(2))).status == 404
    assert middleware.stats.get_value("replay/hit") == 2


def test_replay_refuses_the_record_of_a_cut_warc_folder_as_already_reported(
    archive: WarcArchive,
) -> None:
    """The cut record is damage handed out once (recorded at start); a request for
    its URL fails marked as reported, so it is not recorded twice."""
    written = _store(archive, _response(PAGE.format(1)))
    archive.close_run()
    path = archive.root / written.file
    path.write_bytes(path.read_bytes()[: written.length - 5])  # in its gzip trailer
    middleware = _replay(path.parent)
    (damage,) = middleware.damage()
    assert damage.url == PAGE.format(1)
    assert re.search(r"maeil_ilbo-00001.warc.gz@0: .*cut short", damage.detail)
    assert middleware.damage() == []
    with pytest.raises(BadReplay, match="cut short") as failed:
        middleware.process_request(Request(PAGE.format(1)))
    assert failed.value.reported


def test_a_record_unreadable_at_request_time_is_a_bad_replay(archive: WarcArchive) -> None:
    """Whole when replay started, gone when asked for: the request fails with a
    ``bad_replay`` problem, not a 500 the site never sent."""
    written = _store(archive, _response(PAGE.format(1)))
    archive.close_run()
    middleware = _replay((archive.root / written.file).parent)
    path = archive.root / written.file
    path.write_bytes(path.read_bytes()[: written.length // 2])
    request = Request(PAGE.format(1))
    with pytest.raises(BadReplay, match=r"unreadable: .*@0: gzip member cut short") as failed:
        middleware.process_request(request)
    assert not failed.value.reported
    spider = MaeilIlboSpider()
    failure = Failure(failed.value)
    failure.request = request  # type: ignore[attr-defined]
    (problem,) = spider.on_failure(failure)
    assert (problem.url, problem.reason) == (PAGE.format(1), "bad_replay")
    assert middleware.stats.get_value("replay/error") == 1


def test_a_reader_may_take_the_whole_records_of_a_damaged_folder(tmp_path: Path) -> None:
    """For a replay that serves what is whole and reports the rest: the records of a
    cut file before its damage, and the damage as an error, not raised."""
    archive = WarcArchive(tmp_path / "warc")
    archive.open_run("run", prefix="maeil_ilbo")
    written = [_store(archive, _response(PAGE.format(n), body=b"page %d" % n)) for n in range(3)]
    archive.close_run()
    path = archive.root / written[2].file
    path.write_bytes(path.read_bytes()[: written[2].offset + written[2].length // 2])
    damaged: list[WarcError] = []
    captures = WarcArchive(archive.root).captures(damaged=damaged)
    assert [capture.url for capture in captures] == [PAGE.format(0), PAGE.format(1)]
    (error,) = damaged
    assert f"{path.name}@{written[2].offset}: gzip member cut short" in str(error)
