from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
import pytest
from pydantic import ValidationError

from newsstream.contract.models import RawArticle, RawTickerItem
from newsstream.ingest.events import (
    event_from_json_line,
    events_from_page_text,
    resolve_clock_time,
)

SEED = Path(__file__).resolve().parents[3] / "shared" / "seeds" / "000_d53218aacc3a3954.txt"
BEIRUT = ZoneInfo("Asia/Beirut")  # UTC+2 in November
FETCHED = datetime(2026, 11, 25, 21, 0, tzinfo=timezone.utc)  # 23:00 in Beirut


def test_clock_time_resolves_in_the_source_time_zone() -> None:
    assert resolve_clock_time("22:35", FETCHED, BEIRUT) == datetime(2026, 11, 25, 20, 35, tzinfo=timezone.utc)


def test_clock_time_after_the_fetch_belongs_to_the_day_before() -> None:
    just_after_midnight = datetime(2026, 11, 25, 22, 10, tzinfo=timezone.utc)  # 00:10 on the 26th in Beirut
    assert resolve_clock_time("23:55", just_after_midnight, BEIRUT) == datetime(2026, 11, 25, 21, 55, tzinfo=timezone.utc)
    assert resolve_clock_time("00:05", just_after_midnight, BEIRUT) == datetime(2026, 11, 25, 22, 5, tzinfo=timezone.utc)


def test_a_known_page_date_is_used_as_it_is() -> None:
    assert resolve_clock_time("23:55", FETCHED, BEIRUT, date(2026, 11, 20)) == datetime(
        2026, 11, 20, 21, 55, tzinfo=timezone.utc
    )


def test_seed_page_becomes_one_article_and_six_ticker_events_with_stable_ids() -> None:
    text = SEED.read_text(encoding="utf-8")
    events = events_from_page_text(text, source="outlet", fetched_at=FETCHED, tz=BEIRUT)
    assert [type(e) for e in events] == [RawArticle] + [RawTickerItem] * 6
    ticker = [e for e in events if isinstance(e, RawTickerItem)]
    assert [t.time for t in ticker] == ["22:35", "22:34", "22:04", "22:03", "21:52", "21:17"]
    assert ticker[0].published_at == datetime(2026, 11, 25, 20, 35, tzinfo=timezone.utc)
    assert ticker[0].thread_id == ticker[1].thread_id != ticker[2].thread_id == ticker[3].thread_id

    later = events_from_page_text(text, source="outlet", fetched_at=FETCHED.replace(minute=30), tz=BEIRUT)
    assert [e.id for e in later] == [e.id for e in events]  # fetched again: same ids
    other = events_from_page_text(text, source="other-outlet", fetched_at=FETCHED, tz=BEIRUT)
    assert not {e.id for e in other} & {e.id for e in events}
    assert ticker[0].thread_id not in {e.thread_id for e in other if isinstance(e, RawTickerItem)}


def test_json_line_gets_id_and_fetch_time_when_absent() -> None:
    line = orjson.dumps({"kind": "article", "source": "wire", "title": "t", "body": "نص"})
    event = event_from_json_line(line, FETCHED)
    assert isinstance(event, RawArticle) and event.fetched_at == FETCHED
    assert event.id == event_from_json_line(line, datetime.now(timezone.utc)).id


@pytest.mark.parametrize("line", [b"[1, 2]", b'"text"', b'{"kind": "article", "source": "s", "body": "b", "bogus": 1}'])
def test_json_line_that_is_not_a_raw_event_is_rejected(line: bytes) -> None:
    with pytest.raises(ValidationError):
        event_from_json_line(line, FETCHED)


def test_a_ticker_line_gets_one_id_whatever_spelling_of_its_time() -> None:
    def line(published_at: str) -> bytes:
        return orjson.dumps({"kind": "ticker", "source": "wire", "time": "22:35", "published_at": published_at,
                             "text": "نص", "thread_id": "th"})

    ids = {event_from_json_line(line(t), FETCHED).id
           for t in ("2026-11-25T20:35:00Z", "2026-11-25T20:35:00+00:00", "2026-11-25T22:35:00+02:00")}
    assert len(ids) == 1
