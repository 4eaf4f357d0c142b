"""The archive's WARC files, both directions: written by capture, read by replay and
re-extraction. No other module parses WARC; warcio does the record work.

Layout: a root folder (``WARC_DIR``) holds one folder per crawl run,
``<spider>-<UTC start>-<pid>/``, of gzip WARC files (ISO 28500, WARC/1.0)
``<spider>-<serial>.warc.gz`` rotated at a size limit. Each response is a
``response`` record (HTTP status line, headers and the payload exactly as it came
over the wire, still ``Content-Encoding``-encoded) followed by its ``request``
record. A payload already written in full (same ``WARC-Payload-Digest``, in this run
or an earlier one) is written as a ``revisit`` record instead (profile
identical-payload-digest): its own status and headers, no payload.

Reading resolves those: a revisit is answered with the payload of the record it
refers to (``WARC-Refers-To`` when present, else the payload digest), found under
the root. `WarcArchive.retrieve_response` gives the payload as captured (for replay,
where Scrapy's decompression runs again) or decoded (for extraction). A record cut
short (a truncated file, a crash mid-write) or whose payload does not match its
digest raises `WarcError`: never a silently short page.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from http import HTTPStatus
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

from scrapy import Request
from scrapy.http import Response
from warcio.archiveiterator import ArchiveIterator
from warcio.bufferedreaders import BufferedReader
from warcio.exceptions import ArchiveLoadFailed
from warcio.limitreader import LimitReader
from warcio.recordloader import ArcWarcRecord
from warcio.statusandheaders import StatusAndHeaders, StatusAndHeadersParserException
from warcio.warcwriter import WARCWriter
from zlib_ng import zlib_ng

WARC_DATE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
DEFAULT_MAX_BYTES = 100 * 1024 * 1024
FILE_PATTERN = "*.warc.gz"
# Headers that describe the encoded bytes, not the decoded payload.
ENCODING_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})
CHUNK = 64 * 1024
# What warcio and zlib raise on a damaged file (besides OSError).
_DAMAGE = (ArchiveLoadFailed, StatusAndHeadersParserException, zlib.error, EOFError, ValueError)
# What a whole record has (ISO 28500 §5): a header block cut short lacks some.
REQUIRED_HEADERS = ("WARC-Type", "WARC-Record-ID", "WARC-Date", "Content-Length")


class WarcError(Exception):
    """A WARC file or record is unusable: truncated, corrupt, not where the index
    says, or a revisit whose payload is nowhere under the root. The message names
    the file and offset; `location` is the record's, and `url` its target URI when
    what is left of the record still names it (a reader reporting the damage needs
    both, not a message to parse)."""

    def __init__(
        self, message: str, *, location: RecordLocation | None = None, url: str | None = None
    ) -> None:
        super().__init__(message)
        self.location = location
        self.url = url


@dataclass(frozen=True, slots=True, order=True)
class RecordLocation:
    """Where a record starts: its file (absolute) and byte offset (of its gzip member)."""

    file: Path
    offset: int

    def __str__(self) -> str:
        return f"{self.file}@{self.offset}"


@dataclass(frozen=True, slots=True)
class PayloadRef:
    """A payload already written in full: its response record's target URI, its
    ``WARC-Date`` (``YYYY-MM-DDTHH:MM:SSZ``) and, when known, its ``WARC-Record-ID``."""

    url: str
    date: str
    record_id: str | None = None


@dataclass(frozen=True, slots=True)
class WrittenRecord:
    """A response or revisit record just written: `file` relative to the root
    (``<run>/<name>.warc.gz``), byte `offset` and `length` of its gzip member."""

    file: str
    offset: int
    length: int
    record_type: str
    payload_digest: str


@dataclass(frozen=True, slots=True)
class Capture:
    """A stored response: its own record (status and headers) and the record whose
    payload answers it (the same one, except for a revisit)."""

    url: str
    record_type: str
    status: int
    headers: list[tuple[str, str]]
    record: RecordLocation
    payload: RecordLocation


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """A response read back: status, headers (in order, repeats kept) and body bytes.

    With ``decode=True`` the body has its ``Content-Encoding`` undone and the
    headers lose ``Content-Encoding``/``Content-Length``/``Transfer-Encoding``,
    as Scrapy's ``HttpCompressionMiddleware`` leaves a response."""

    url: str
    status: int
    headers: list[tuple[str, str]]
    body: bytes


# Full records of the current run whose payloads a run remembers itself, the latest
# first: a repeat among them is a revisit without asking anyone. Bounded, so that a
# run's memory does not grow with its responses (about 450 bytes each: 45 MB at
# 100,000); an older payload is found through `earlier_payload` or the caller's
# `earlier` (the capture index, written every 100 records).
RECENT_PAYLOADS = 10_000
# The level of each record's gzip member: 6, zlib's and gzip's default (warcio uses
# 9). On the archive's pages level 9 took 17-25 % more CPU than 6 for 0.4 % fewer
# bytes; each record is still a gzip member of its own (ISO 28500 annex D).  The
# members are made by zlib-ng, which writes the same format as zlib: at level 6 it
# took 0.31 ms a page against zlib's 0.58, for 2 % more bytes (docs/benchmarks.md).
COMPRESSION_LEVEL = 6


@dataclass
class _Run:
    """The run being written: its folder and current file."""

    directory: Path
    prefix: str
    serial: int = 0
    name: str = ""
    file: IO[bytes] | None = None
    writer: _Writer | None = None
    # payload digest → the response record that holds it, for the run's latest
    # `RECENT_PAYLOADS` full records (older ones: the capture index knows them)
    written: dict[str, PayloadRef] = field(default_factory=dict)

    def wrote(self, digest: str, payload: PayloadRef) -> None:
        self.written[digest] = payload
        if len(self.written) > RECENT_PAYLOADS:
            del self.written[next(iter(self.written))]  # the oldest


class WarcArchive:
    """A root folder of WARC captures: writes one run at a time
    (`open_run` / `store_response` / `close_run`) and reads any record back
    (`captures`, `locate`, `retrieve_response`).

    `earlier_payload(digest)` tells the writer whether a payload was written in
    full by an earlier run (the capture index knows); None when not known, which
    costs a full record, never a page."""

    def __init__(
        self,
        root: Path,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        earlier_payload: Callable[[str], PayloadRef | None] | None = None,
    ) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.earlier_payload = earlier_payload
        self._run: _Run | None = None
        # for resolving revisits: payload digest / record id → first full response record
        self._by_digest: dict[str, RecordLocation] = {}
        self._by_record_id: dict[str, RecordLocation] = {}
        self._indexed: set[Path] = set()

    # --- writing ---------------------------------------------------------------

    def open_run(self, name: str, prefix: str) -> Path:
        """Start writing into the run folder ``root/name`` (created); files are
        named ``<prefix>-<serial>.warc.gz``. Returns the folder."""
        self.close_run()
        directory = self.root / name
        directory.mkdir(parents=True, exist_ok=True)
        self._run = _Run(directory, prefix)
        return directory

    def close_run(self) -> None:
        """Close the run's current file; nothing is buffered after this."""
        run = self._run
        if run is not None and run.file is not None:
            run.file.close()
            run.file = run.writer = None

    def store_response(
        self,
        request: Request,
        response: Response,
        fetched_at: datetime,
        earlier: PayloadRef | None = None,
        digest: str | None = None,
    ) -> WrittenRecord:
        """Write `response` (status, headers, body bytes as received) and then
        `request`; a payload written before becomes a revisit record: one this run
        wrote, else `earlier` when the caller found it, else what `earlier_payload`
        says. `digest`: the body's `payload_digest` when the caller has it already."""
        run = self._run
        if run is None:
            raise RuntimeError("store_response before open_run")
        writer, file = self._current_writer(run)
        date = fetched_at.strftime(WARC_DATE_FORMAT)
        digest = digest or payload_digest(response.body)
        full = _response_record(writer, response, date, digest)
        original = (
            run.written.get(digest)
            or earlier
            or (self.earlier_payload(digest) if self.earlier_payload else None)
        )
        record = full if original is None else _revisit_record(writer, full, original, date)
        offset = file.tell()
        writer.write_record(record)
        length = file.tell() - offset
        writer.write_record(_request_record(writer, request, full, date))
        if original is None:
            record_id = full.rec_headers.get_header("WARC-Record-ID")
            run.wrote(digest, PayloadRef(response.url, date, record_id))
        return WrittenRecord(
            file=f"{run.directory.name}/{run.name}",
            offset=offset,
            length=length,
            record_type=record.rec_type,
            payload_digest=digest,
        )

    def _current_writer(self, run: _Run) -> tuple[_Writer, IO[bytes]]:
        if run.file is not None and run.file.tell() >= self.max_bytes:
            self.close_run()
        while run.file is None or run.writer is None:
            run.serial += 1
            run.name = f"{run.prefix}-{run.serial:05d}.warc.gz"
            try:  # never over a file of another run (one started in the same second)
                run.file = (run.directory / run.name).open("xb")
            except FileExistsError:
                continue
            run.writer = _Writer(run.file)
        return run.writer, run.file

    # --- reading ---------------------------------------------------------------

    def captures(
        self, directory: Path | None = None, *, damaged: list[WarcError] | None = None
    ) -> list[Capture]:
        """Every response and revisit record under `directory` (default: the root),
        files in name order, records in file order; revisits resolved.

        A damaged file (or a revisit whose payload is nowhere) raises `WarcError`;
        given a `damaged` list, the error is added to it instead and the records
        that are whole are still returned (those of a file before its damage)."""
        found = []
        for path in sorted((directory or self.root).rglob(FILE_PATTERN)):
            try:
                for location, record in _scan(path):
                    self._remember(location, record)
                    if record.rec_type not in ("response", "revisit"):
                        continue
                    if not record.http_headers:
                        raise WarcError(
                            f"{location}: a {record.rec_type} record without HTTP headers",
                            location=location,
                            url=record.rec_headers.get_header("WARC-Target-URI"),
                        )
                    found.append((location, record))
            except WarcError as error:
                if damaged is None:
                    raise
                damaged.append(error)
        self._indexed.update((directory or self.root).rglob(FILE_PATTERN))
        captures = []
        for location, record in found:
            try:
                captures.append(self._capture(location, record))
            except WarcError as error:
                if damaged is None:
                    raise
                damaged.append(error)
        return captures

    def locate(self, file: Path | str, offset: int) -> Capture:
        """The capture whose record starts at `offset` of `file` (relative to the
        root, or absolute), its revisit resolved."""
        location = RecordLocation(self.root / file, offset)
        with _open_record(location) as record:
            if record.rec_type not in ("response", "revisit") or not record.http_headers:
                raise WarcError(f"{location}: a {record.rec_type} record, not a response")
            return self._capture(location, record)

    def retrieve_response(self, capture: Capture, *, decode: bool) -> StoredResponse:
        """The capture's response: payload as captured (`decode` False) or with its
        ``Content-Encoding`` undone (True). Raises `WarcError` when the record is
        truncated or its payload does not match its digest."""
        headers = capture.headers
        with _open_record(capture.payload) as record:
            stream: IO[bytes] | LimitReader = record.raw_stream
            if decode:
                _check_encoding(capture.payload, record.http_headers)
                stream = record.content_stream()
            body = _read_all(capture.payload, record, stream)
        if decode:
            headers = [(k, v) for k, v in headers if k.lower() not in ENCODING_HEADERS]
        return StoredResponse(capture.url, capture.status, headers, body)

    def _capture(self, location: RecordLocation, record: ArcWarcRecord) -> Capture:
        payload = location
        if record.rec_type == "revisit":
            payload = self._payload_of(location, record)
        return Capture(
            url=record.rec_headers.get_header("WARC-Target-URI"),
            record_type=record.rec_type,
            status=int(record.http_headers.get_statuscode()),
            headers=list(record.http_headers.headers),
            record=location,
            payload=payload,
        )

    def _payload_of(self, revisit: RecordLocation, record: ArcWarcRecord) -> RecordLocation:
        """The response record a revisit refers to: by ``WARC-Refers-To``, else by
        payload digest; its own folder is searched first, then the whole root."""
        refers_to = record.rec_headers.get_header("WARC-Refers-To")
        digest = record.rec_headers.get_header("WARC-Payload-Digest")
        for scope in (None, revisit.file.parent, self.root):
            if scope is not None:
                self._index(scope)
            found = self._by_record_id.get(refers_to or "") or self._by_digest.get(digest)
            if found is not None:
                return found
        url = record.rec_headers.get_header("WARC-Target-URI")
        raise WarcError(
            f"{revisit}: revisit of {url} refers to payload {digest} found nowhere under "
            f"{self.root}",
            location=revisit,
            url=url,
        )

    def _index(self, directory: Path) -> None:
        for path in sorted(directory.rglob(FILE_PATTERN)):
            if path not in self._indexed:
                for location, record in _scan(path):
                    self._remember(location, record)
                self._indexed.add(path)

    def _remember(self, location: RecordLocation, record: ArcWarcRecord) -> None:
        if record.rec_type != "response":
            return
        self._by_digest.setdefault(record.rec_headers.get_header("WARC-Payload-Digest"), location)
        self._by_record_id.setdefault(record.rec_headers.get_header("WARC-Record-ID"), location)


# --- records -------------------------------------------------------------------


def payload_digest(body: bytes) -> str:
    """The ``WARC-Payload-Digest`` the writer gives a response record of `body`
    (warcio's: SHA-1, base32), known before the record is built."""
    return "sha1:" + base64.b32encode(hashlib.sha1(body).digest()).decode("ascii")


class _GzipMember:
    """One record's gzip member, at `COMPRESSION_LEVEL`, made by zlib-ng: what warcio
    writes a record into (its own `GzippingWrapper` is zlib's, fixed at level 9)."""

    def __init__(self, file: IO[bytes]) -> None:
        self.file = file
        self.compressor = zlib_ng.compressobj(
            COMPRESSION_LEVEL, zlib_ng.DEFLATED, zlib_ng.MAX_WBITS + 16
        )

    def write(self, data: bytes) -> None:
        self.file.write(self.compressor.compress(data))

    def flush(self) -> None:
        """The member's end (warcio calls this once the record is written)."""
        self.file.write(self.compressor.flush())
        self.file.flush()


class _Writer(WARCWriter):
    """warcio's writer, each record gzipped as a member of its own by `_GzipMember`."""

    def __init__(self, file: IO[bytes]) -> None:
        super().__init__(file, gzip=False)

    def write_record(self, record: ArcWarcRecord, params: object = None) -> None:
        self._write_warc_record(_GzipMember(self.out), record)


def _response_record(
    writer: WARCWriter, response: Response, date: str, digest: str
) -> ArcWarcRecord:
    headers = [
        (key.decode("latin-1"), value.decode("latin-1"))
        for key, values in response.headers.items()
        for value in values
    ]
    status_line = f"{response.status} {_reason(response.status)}"
    return writer.create_warc_record(
        response.url,
        "response",
        payload=io.BytesIO(response.body),
        length=len(response.body),
        http_headers=StatusAndHeaders(status_line, headers, protocol="HTTP/1.1"),
        warc_headers_dict={"WARC-Date": date, "WARC-Payload-Digest": digest},
    )


def _revisit_record(
    writer: WARCWriter, full: ArcWarcRecord, original: PayloadRef, date: str
) -> ArcWarcRecord:
    warc_headers = {"WARC-Date": date}
    if original.record_id:
        warc_headers["WARC-Refers-To"] = original.record_id
    return writer.create_revisit_record(
        full.rec_headers.get_header("WARC-Target-URI"),
        digest=full.rec_headers.get_header("WARC-Payload-Digest"),
        refers_to_uri=original.url,
        refers_to_date=original.date,
        http_headers=full.http_headers,
        warc_headers_dict=warc_headers,
    )


def _request_record(
    writer: WARCWriter, request: Request, response_record: ArcWarcRecord, date: str
) -> ArcWarcRecord:
    parts = urlsplit(request.url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = [
        (key.decode("latin-1"), value.decode("latin-1"))
        for key, values in request.headers.items()
        for value in values
    ]
    http_headers = StatusAndHeaders(
        f"{request.method} {target} HTTP/1.1", headers, is_http_request=True
    )
    return writer.create_warc_record(
        request.url,
        "request",
        http_headers=http_headers,
        warc_headers_dict={
            "WARC-Date": date,
            "WARC-Concurrent-To": response_record.rec_headers.get_header("WARC-Record-ID"),
        },
    )


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


# --- reading records -------------------------------------------------------------


@contextmanager
def _open_record(location: RecordLocation) -> Iterator[ArcWarcRecord]:
    """The record at `location`, its gzip member checked whole (to its CRC) and its
    digests verified as it is read; a damaged or missing record raises `WarcError`."""
    try:
        stream = location.file.open("rb")
    except OSError as error:
        raise WarcError(f"{location}: unreadable record: {error}") from error
    with stream:
        try:
            stream.seek(location.offset)
            start = stream.read(CHUNK)
        except OSError as error:
            raise WarcError(f"{location}: unreadable record: {error}") from error
        if not start:
            raise WarcError(f"{location}: no record there (the file ends)")
        content, _, _ = _read_member(stream, location, start)
    yield _parse(location, content)


def _scan(path: Path) -> Iterator[tuple[RecordLocation, ArcWarcRecord]]:
    """Each record of a file with its location, after checking it is complete: its
    gzip member whole, its headers and ``Content-Length`` and its digests (the
    payload is drained here; only headers are used). A file with no record at
    all is an error too: it was cut before its first record was written."""
    found = False
    for location, content in _members(path):
        try:
            record = _parse(location, content)
            _read_all(location, record, record.raw_stream, keep=False)
        except WarcError as error:
            error.location = error.location or location
            error.url = error.url or _target_of(content)
            raise
        found = True
        yield location, record
    if not found:
        raise WarcError(
            f"{path}: a WARC file without a record (cut short?)", location=RecordLocation(path, 0)
        )


def _members(path: Path) -> Iterator[tuple[RecordLocation, bytes]]:
    """The decompressed content of each gzip member of `path` (in a WARC file from
    capture, one record each), with where it starts."""
    try:
        with path.open("rb") as stream:
            offset, rest = 0, b""
            while rest or (rest := stream.read(CHUNK)):
                location = RecordLocation(path, offset)
                content, length, rest = _read_member(stream, location, rest)
                yield location, content
                offset += length
    except OSError as error:
        raise WarcError(f"{path}: unreadable WARC file: {error}") from error


def _read_member(
    stream: IO[bytes], location: RecordLocation, start: bytes
) -> tuple[bytes, int, bytes]:
    """Decompress the gzip member that begins with `start` (bytes already read from
    `stream`) to its end: its content, its compressed length and the bytes read
    past it. A member that ends before its gzip trailer (a file cut short, even
    by a byte) or fails its CRC raises `WarcError`: warcio would pass over both."""
    decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
    parts: list[bytes] = []
    used = 0
    data = start
    while True:
        try:
            parts.append(decompressor.decompress(data))
        except zlib.error as error:
            raise WarcError(
                f"{location}: damaged gzip member: {error}",
                location=location,
                url=_target_of(b"".join(parts)),
            ) from error
        if decompressor.eof:
            rest = decompressor.unused_data
            return b"".join(parts), used + len(data) - len(rest), rest
        used += len(data)
        data = stream.read(CHUNK)
        if not data:
            raise WarcError(
                f"{location}: gzip member cut short after {used} bytes (truncated file?)",
                location=location,
                url=_target_of(b"".join(parts)),
            )


def _target_of(content: bytes) -> str | None:
    """The ``WARC-Target-URI`` of what is left of a record's `content` (decompressed),
    when its header block still holds that line whole; else None."""
    head, separator, _ = content.partition(b"\r\n\r\n")
    match = re.search(
        rb"^WARC-Target-URI:[ \t]*([^\r\n]*?)[ \t]*\r\n",
        head + b"\r\n" if separator else head,
        re.MULTILINE | re.IGNORECASE,
    )
    return match.group(1).decode("utf-8", "replace") or None if match else None


def _parse(location: RecordLocation, content: bytes) -> ArcWarcRecord:
    """The record in one member's `content`, its WARC headers checked complete;
    its digests are verified when its block is read to the end."""
    try:
        record = next(iter(ArchiveIterator(io.BytesIO(content), check_digests="raise")))
    except StopIteration:
        raise WarcError(f"{location}: an empty gzip member, no record") from None
    except (*_DAMAGE, AttributeError) as error:
        # AttributeError: warcio's parser on a response record without a target URI
        raise WarcError(f"{location}: unreadable record: {error!r}") from error
    headers = record.rec_headers
    missing = [name for name in REQUIRED_HEADERS if not headers.get_header(name)]
    if missing:
        raise WarcError(f"{location}: {record.rec_type} record without {', '.join(missing)}")
    declared = headers.get_header("Content-Length").strip()
    if not declared.isdigit() or int(declared) != record.length:
        raise WarcError(f"{location}: {record.rec_type} record with Content-Length {declared!r}")
    return record


def _read_all(
    location: RecordLocation,
    record: ArcWarcRecord,
    stream: IO[bytes] | LimitReader,
    *,
    keep: bool = True,
) -> bytes:
    """All of `stream` (the record's raw or content stream); `WarcError` when the
    record ends before its declared ``Content-Length``."""
    parts = []
    try:
        while chunk := stream.read(CHUNK):
            if keep:
                parts.append(chunk)
        # what a decoder left unread still counts (and completes the digest check)
        while record.raw_stream.read(CHUNK):
            pass
    except _DAMAGE as error:
        raise WarcError(f"{location}: damaged record: {error}") from error
    if not isinstance(record.raw_stream, LimitReader):
        # warcio limits every record that declares its length; WARC requires one
        raise WarcError(f"{location}: {record.rec_type} record without Content-Length (cut short?)")
    missing = record.raw_stream.limit
    if missing:
        raise WarcError(
            f"{location}: truncated {record.rec_type} record for "
            f"{record.rec_headers.get_header('WARC-Target-URI')}: "
            f"{missing} bytes of its Content-Length missing"
        )
    return b"".join(parts)


def _check_encoding(location: RecordLocation, http_headers: StatusAndHeaders | None) -> None:
    """Refuse a ``Content-Encoding`` warcio cannot undo (rather than hand on encoded bytes)."""
    encoding = (http_headers.get_header("content-encoding") or "") if http_headers else ""
    encoding = encoding.strip().lower()
    known = ("", "identity", *BufferedReader.get_supported_decompressors())
    if encoding not in known:
        raise WarcError(f"{location}: Content-Encoding {encoding!r} cannot be decoded")
