"""Turn wire bytes into text the way a browser would, without guessing early."""

from __future__ import annotations

from collections.abc import Mapping

from w3lib.encoding import html_to_unicode

REPLACEMENT_CHARACTER = "\ufffd"


class DecodeError(ValueError):
    """The bytes could not be read as text in any declared or detected encoding."""


def decode_html(body: bytes, headers: Mapping[str, str]) -> tuple[str, str]:
    """Decode an HTML body; return ``(text, encoding)``.

    Order of evidence, as Scrapy's ``TextResponse`` does: the HTTP
    ``Content-Type`` charset, then a BOM, then ``<meta charset>``, then
    detection. w3lib reads EUC-KR as CP949, its superset, so syllables such as
    ``똠`` survive. Bytes that do not decode become U+FFFD; a page that is mostly
    U+FFFD is refused rather than stored as mojibake.
    """
    content_type = _header(headers, "content-type")
    encoding, text = html_to_unicode(content_type, body)
    if text and text.count(REPLACEMENT_CHARACTER) > max(20, len(text) // 50):
        raise DecodeError(
            f"{text.count(REPLACEMENT_CHARACTER)} undecodable characters as {encoding}"
        )
    return text, encoding


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None
