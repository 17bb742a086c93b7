from __future__ import annotations

from datetime import datetime, timezone

import orjson
import pytest
from pydantic import ValidationError

from newsstream.contract import wire
from newsstream.contract.ids import article_id, content_hash, ticker_id
from newsstream.contract.models import RawArticle, RawTickerItem

T0 = datetime(2026, 11, 25, 19, 35, tzinfo=timezone.utc)


def test_article_id_is_stable_and_depends_on_url_when_there_is_one() -> None:
    a = article_id("outlet", "https://example.org/a", "عنوان", "نص")
    assert a == article_id("outlet", "https://example.org/a", "عنوان آخر", "نص معدل")  # edits keep the id
    assert a != article_id("outlet", "https://example.org/b", "عنوان", "نص")
    assert a.startswith("a_") and len(a) == 34


def test_article_id_without_url_follows_normalised_content() -> None:
    plain = article_id("outlet", None, "عنوان", "أكد الوزير")
    assert plain == article_id("outlet", None, "عنوان", "أكّد الوزير")  # a shadda is not new content
    assert plain != article_id("other-outlet", None, "عنوان", "أكد الوزير")
    assert plain != article_id("outlet", None, "عنوان", "نفى الوزير")


def test_ticker_id_depends_on_source_time_and_text() -> None:
    base = ticker_id("outlet", T0.isoformat(), "نص الخبر", "الخارجية")
    assert base == ticker_id("outlet", T0.isoformat(), "نص الخبر", "الخارجية")
    assert base != ticker_id("outlet", "2026-11-26T19:35:00+00:00", "نص الخبر", "الخارجية")
    assert base != ticker_id("outlet", T0.isoformat(), "نص آخر", "الخارجية")
    assert base.startswith("t_")


def test_content_hash_is_equal_for_equal_text_only() -> None:
    assert content_hash("abc") == content_hash("abc") != content_hash("abd")


def test_events_round_trip_through_the_wire() -> None:
    article = RawArticle(id="a_1", source="s", title="t", body="ب", fetched_at=T0)
    assert wire.loads_raw(wire.dumps(article)) == article
    tick = RawTickerItem(id="t_1", source="s", time="22:35", published_at=T0, text="x", thread_id="th", fetched_at=T0)
    assert wire.loads_raw(wire.dumps(tick)) == tick


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{not json", "invalid_json"),
        (b'{"kind": "article", "id": "a", "source": "s", "body": "", "fetched_at": "2026-01-01T00:00:00Z"}', "validation_error"),
        (b'{"kind": "ticker", "id": "t", "source": "s", "time": "25:99", "text": "x", "thread_id": "th",'
         b' "published_at": "2026-01-01T00:00:00Z", "fetched_at": "2026-01-01T00:00:00Z"}', "validation_error"),
        (b'{"kind": "video"}', "validation_error"),
        (b'{"kind": "article", "id": "a", "source": "s", "body": "b", "fetched_at": "2026-01-01T00:00:00Z", "extra": 1}',
         "validation_error"),
    ],
)
def test_bad_input_is_described_for_a_dead_letter(payload: bytes, reason: str) -> None:
    with pytest.raises((orjson.JSONDecodeError, ValidationError)) as caught:
        wire.validate_raw(orjson.loads(payload))  # the ingest edge: an unknown field is refused there
    assert wire.describe_error(caught.value)[0] == reason


def test_dead_letter_keeps_undecodable_bytes_exactly() -> None:
    letter = wire.dead_letter(b"\xff\xfe bad", stage="ingest", reason="invalid_encoding", error="x", input_ref="f:1")
    assert letter.payload_encoding == "base64"
    import base64

    assert base64.b64decode(letter.payload) == b"\xff\xfe bad"
    again = wire.dead_letter(b"\xff\xfe bad", stage="ingest", reason="invalid_encoding", error="x", input_ref="f:1")
    other_line = wire.dead_letter(b"\xff\xfe bad", stage="ingest", reason="invalid_encoding", error="x", input_ref="f:2")
    assert letter.id == again.id != other_line.id
