"""Bytes to text and HTML to visible text, shared by the source parsers."""

from __future__ import annotations

import re
from dataclasses import dataclass

from newsstream.text.normalize import clean_text

# Invisible characters clean_text removes (bidi controls, zero-width); counted for metrics.
_INVISIBLE_RE = re.compile("[\u200e\u200f\u202a-\u202e\u2066-\u2069\u061c\u200b\u200d\ufeff\u2060]")
_META_CHARSET_RE = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_\-:.]+)""", re.IGNORECASE)
_XML_ENCODING_RE = re.compile(rb"""^\s*<\?xml[^>]+encoding\s*=\s*["']([A-Za-z0-9_\-:.]+)""", re.IGNORECASE)


@dataclass(frozen=True)
class Decoded:
    text: str
    encoding: str
    declared: bool  # the encoding came from the response or the document, not from a guess


def decode_body(body: bytes, header_charset: str | None = None) -> Decoded:
    """Decode a response body.

    Order: BOM, the HTTP charset, a ``<meta charset>`` / XML declaration,
    strict UTF-8. Bytes that are none of these raise ``UnicodeDecodeError``
    (the caller's ``invalid_encoding`` dead letter) rather than being guessed
    into mojibake.
    """
    if body.startswith(b"\xef\xbb\xbf"):
        return Decoded(body[3:].decode("utf-8"), "utf-8", True)
    candidates: list[str] = []
    if header_charset:
        candidates.append(header_charset)
    head = body[:4096]
    if m := (_META_CHARSET_RE.search(head) or _XML_ENCODING_RE.search(head)):
        candidates.append(m.group(1).decode("ascii", "replace"))
    for name in candidates:
        try:
            return Decoded(body.decode(name), name.lower(), True)
        except (LookupError, UnicodeDecodeError):
            continue
    return Decoded(body.decode("utf-8"), "utf-8", False)


def count_invisible(text: str) -> int:
    return len(_INVISIBLE_RE.findall(text))


def clean(text: str | None) -> str:
    return clean_text(text or "").strip()


_BLOCK_TAGS = (
    "p", "div", "li", "ul", "ol", "br", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "td", "th", "section",
    "article", "aside", "header", "footer", "nav", "span", "time", "blockquote", "dt", "dd", "pre", "figure",
    "figcaption", "table", "main", "a",
)


def visible_lines(html: str) -> str:
    """The visible text of an HTML document or fragment, one block per line.

    ``span``/``time``/``a`` count as blocks too: ticker widgets put the clock
    time and the sentence in sibling spans, and the page parser needs them on
    lines of their own (it accepts "22:35" and "22:35 text" alike).
    """
    import lxml.html
    from lxml import etree

    try:
        root = lxml.html.document_fromstring(html)
    except (etree.ParserError, ValueError):
        return ""
    for bad in root.xpath("//script|//style|//noscript|//template|//head"):
        bad.drop_tree()
    for el in root.iter(*_BLOCK_TAGS):
        el.tail = "\n" + (el.tail or "")
        if el.tag != "br":
            el.text = "\n" + (el.text or "")
    text = root.text_content()
    return "\n".join(line.strip() for line in text.split("\n") if line.strip())
