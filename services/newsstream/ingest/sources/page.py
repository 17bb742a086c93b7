"""Article pages: main text and metadata with trafilatura, ticker lines with the page parser.

trafilatura (measured on our fixtures and the seed layout) keeps the article's
paragraphs and drops navigation, "most read" boxes and the breaking-news
widget. The article text then goes through :func:`parse_page` as well, which
removes any remaining chrome line («اقرأ أيضاً», «الأكثر قراءة» ...). The
ticker lines come from the page's *whole* visible text, one block per line,
through the same parser that handles page files, so a fetched page and a
saved page give the same ticker events.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from urllib.parse import urljoin
from zoneinfo import ZoneInfo

from newsstream.contract import wire
from newsstream.ingest.events import events_from_page
from newsstream.ingest.sources.base import (
    STAGE,
    Outcome,
    RawItem,
    as_utc,
    language_code,
)
from newsstream.ingest.sources.textutil import count_invisible, visible_lines
from newsstream.ingest.sources.urls import canonical_url
from newsstream.text.normalize import normalize_text
from newsstream.text.page import ParsedArticle, ParsedPage, parse_page

_DATE_META = (
    "article:published_time", "og:published_time", "og:article:published_time", "datePublished",
    "pubdate", "publishdate", "date", "dc.date.issued", "dc.date", "sailthru.date", "parsely-pub-date",
)


@dataclass
class PageMeta:
    title: str
    canonical_url: str | None
    language: str | None
    published_at: datetime | None


def _parse_datetime(value: str | None, tz: ZoneInfo) -> datetime | None:
    if not value:
        return None
    value = value.strip()
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            parsed = datetime.combine(date.fromisoformat(value[:10]), time(0, 0))
        except ValueError:
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    return as_utc(parsed)


def page_meta(html: str, url: str | None, tz: ZoneInfo) -> PageMeta:
    """Canonical URL, declared language, publication time and <title>, from the markup."""
    import lxml.html
    from lxml import etree

    try:
        root = lxml.html.document_fromstring(html)
    except (etree.ParserError, ValueError):
        return PageMeta("", canonical_url(url), None, None)
    canonical = None
    for href in root.xpath("//link[translate(@rel,'CANONIC','canonic')='canonical']/@href") + root.xpath(
        "//meta[@property='og:url']/@content"
    ):
        canonical = canonical_url(urljoin(url or "", href.strip()))
        if canonical:
            break
    lang = language_code(root.get("lang") or root.get("xml:lang"))
    if not lang:
        values = root.xpath("//meta[translate(@http-equiv,'CONTENT-LANGUAGE','content-language')='content-language']/@content")
        lang = language_code(values[0]) if values else None
    published = None
    for meta in root.xpath("//meta[@property or @name or @itemprop]"):
        key = (meta.get("property") or meta.get("name") or meta.get("itemprop") or "").lower()
        if key in {k.lower() for k in _DATE_META}:
            published = _parse_datetime(meta.get("content"), tz)
            if published:
                break
    if published is None:
        for value in root.xpath("//time/@datetime")[:1]:
            published = _parse_datetime(value, tz)
    titles = root.xpath("//title/text()")
    return PageMeta(titles[0].strip() if titles else "", canonical or canonical_url(url), lang, published)


def extract_article(html: str, url: str | None) -> tuple[str, list[str]]:
    """(title, paragraphs) of the main text; ([], "") when trafilatura finds none."""
    import trafilatura

    doc = trafilatura.bare_extraction(
        html, url=url, with_metadata=True, include_comments=False, include_tables=False, favor_precision=True
    )
    if doc is None or not (doc.text or "").strip():
        return "", []
    title = (doc.title or "").strip()
    parsed = parse_page(doc.text)  # drops chrome lines and any ticker line trafilatura kept
    if not parsed.articles:
        return title, []
    article = parsed.articles[0]
    paragraphs = list(article.paragraphs)
    if article.title and normalize_text(article.title) != normalize_text(title):
        paragraphs.insert(0, article.title)  # the parser took a short first line as a headline: keep it as text
    if paragraphs and title and normalize_text(paragraphs[0]) == normalize_text(title):
        paragraphs = paragraphs[1:]  # the headline repeated as the first line of the text
    return title or article.title, paragraphs


def page_outcome(
    html: str,
    *,
    source: str,
    url: str | None,
    fetched_at: datetime,
    tz: ZoneInfo,
    language: str | None = None,
    fallback_title: str = "",
    fallback_published: datetime | None = None,
    payload: bytes | None = None,
    plain_text: bool = False,
) -> Outcome:
    """Raw events of one page: its article (if any) and its ticker lines; an
    ``empty_page`` dead letter when it has neither. ``plain_text``: the page is
    text, not HTML (served as ``text/plain``), read as ``ingest page`` reads a file."""
    out = Outcome()
    out.clean("invisible_chars", count_invisible(html))
    if plain_text:
        parsed = parse_page(html)
        meta = PageMeta(title="", canonical_url=url, language=None, published_at=None)
        articles, ticker = list(parsed.articles), parsed.ticker
        if articles and not articles[0].title and fallback_title:
            articles[0] = articles[0].model_copy(update={"title": fallback_title})
    else:
        meta = page_meta(html, url, tz)
        title, paragraphs = extract_article(html, meta.canonical_url or url)
        title = title or meta.title or fallback_title
        ticker = parse_page(visible_lines(html)).ticker
        articles = []
        if paragraphs:
            articles = [ParsedArticle(title=title, body="\n\n".join(paragraphs), paragraphs=paragraphs)]
    published = meta.published_at or fallback_published
    events: list[RawItem] = events_from_page(
        ParsedPage(articles=articles, ticker=ticker),
        source=source, fetched_at=fetched_at, url=meta.canonical_url, tz=tz, published_at=published,
    )
    lang = meta.language or language_code(language)
    events = [e.model_copy(update={"language": lang}) if e.kind == "article" else e for e in events]
    if articles and published is None:
        out.clean("missing_date")
    if not events:
        out.dead_letters.append(
            wire.dead_letter(
                payload if payload is not None else html, stage=STAGE, reason="empty_page",
                error="no article text and no ticker lines found", input_ref=url,
            )
        )
        out.error("empty_page")
    out.events = events
    return out
