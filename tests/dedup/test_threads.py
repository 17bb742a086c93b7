"""Ticker threads: the seed page, and lines that arrive from separate fetches."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from newsstream.contract.models import RawTickerItem
from newsstream.dedup.threads import ThreadConfig, Threads
from newsstream.ingest.events import events_from_page
from newsstream.text.page import parse_page

SEED = Path(__file__).resolve().parents[3] / "shared" / "seeds" / "000_d53218aacc3a3954.txt"
BEIRUT = ZoneInfo("Asia/Beirut")
FETCHED = datetime(2026, 11, 25, 21, 0, tzinfo=UTC)  # 23:00 in Beirut

TURKEY = "الخارجية التركية"
TELEGRAPH = "تلغراف عن مسؤول إيراني رفيع"


def assign(threads: Threads, line: RawTickerItem):
    return threads.assign(
        item_id=line.id,
        source=line.source,
        attribution=line.attribution,
        text=line.text,
        published_at=line.published_at.timestamp(),
        continues_previous=line.continues_previous,
        raw_thread_id=line.thread_id,
        time=line.time,
    )


def seed_lines() -> list[RawTickerItem]:
    page = parse_page(SEED.read_text(encoding="utf-8"))
    events = events_from_page(page, source="outlet", fetched_at=FETCHED, tz=BEIRUT)
    lines = [e for e in events if isinstance(e, RawTickerItem)]
    return sorted(lines, key=lambda e: e.published_at)  # the stream delivers them oldest first


def test_seed_page_turkish_lines_form_one_thread_and_telegraph_lines_another() -> None:
    threads = Threads()
    placed = {line.time: (line, assign(threads, line)) for line in seed_lines()}
    assert set(placed) == {"22:35", "22:34", "22:04", "22:03", "21:52", "21:17"}

    turkey = {placed["22:34"][1].thread_id, placed["22:35"][1].thread_id}
    telegraph = {placed["22:03"][1].thread_id, placed["22:04"][1].thread_id}
    assert len(turkey) == 1 and len(telegraph) == 1 and turkey != telegraph
    others = {placed["21:52"][1].thread_id, placed["21:17"][1].thread_id}
    assert len(others) == 2 and not others & (turkey | telegraph)

    thread = threads.state[f"t:{turkey.pop()}"]
    assert [line["time"] for line in thread["lines"]] == ["22:34", "22:35"]  # in order
    assert thread["attribution"] == TURKEY and thread["line_count"] == 2
    # The newest line without the continuation marker is the headline.
    assert thread["headline"] == f"{TURKEY}: " + placed["22:35"][0].text

    thread = threads.state[f"t:{telegraph.pop()}"]
    assert [line["time"] for line in thread["lines"]] == ["22:03", "22:04"]
    assert thread["headline"].startswith(f"{TELEGRAPH}: طهران تتخلى عن الحوثيين")


def test_thread_ids_are_stable_and_the_opening_line_creates_the_thread() -> None:
    first, second = Threads(), Threads()
    lines = seed_lines()
    a = [assign(first, line) for line in lines]
    b = [assign(second, line) for line in lines]
    assert [u.thread_id for u in a] == [u.thread_id for u in b]
    assert [u.created for u in a] == [True, True, True, False, True, False]


def line(id_: str, text: str, minutes: float, *, attribution: str | None = TURKEY, continues: bool = False,
         source: str = "outlet") -> RawTickerItem:
    at = datetime(2026, 11, 25, 20, 0, tzinfo=UTC) + timedelta(minutes=minutes)
    # Each line as if from its own fetch: the parser could not group them, so every raw thread id differs.
    return RawTickerItem(id=id_, source=source, time=at.strftime("%H:%M"), published_at=at, text=text,
                         attribution=attribution, continues_previous=continues, thread_id=f"th_{id_}", fetched_at=at)


def test_lines_from_separate_fetches_join_by_attribution_and_marker_within_the_windows() -> None:
    threads = Threads(ThreadConfig(followup_window_s=1800, continuation_window_s=3 * 3600))
    t1 = assign(threads, line("l1", "أنقرة تدعو إلى وقف فوري لإطلاق النار", 0))
    t2 = assign(threads, line("l2", "نتابع التطورات مع الأطراف المعنية", 10, continues=True))
    t3 = assign(threads, line("l3", "وزير الخارجية يتوجه غداً إلى بيروت", 25))  # follow-up, no marker
    t4 = assign(threads, line("l4", "الحوار هو السبيل الوحيد", 120, continues=True))  # marker: longer window
    t5 = assign(threads, line("l5", "تركيا ترحب بنتائج القمة الأوروبية", 300))  # too late: a new thread
    assert t1.created and t1.thread_id == "th_l1"
    assert {t2.thread_id, t3.thread_id, t4.thread_id} == {"th_l1"}
    assert t5.created and t5.thread_id == "th_l5"
    thread = threads.state["t:th_l1"]
    assert [x["id"] for x in thread["lines"]] == ["l1", "l2", "l3", "l4"]
    assert thread["headline"] == f"{TURKEY}: وزير الخارجية يتوجه غداً إلى بيروت"  # updated by l3


def test_other_sources_attributions_and_unattributed_lines_do_not_join() -> None:
    threads = Threads()
    base = assign(threads, line("l1", "أنقرة تدعو إلى وقف فوري لإطلاق النار", 0))
    other_source = assign(threads, line("l2", "أنقرة تدعو إلى التهدئة", 1, source="another"))
    other_attr = assign(threads, line("l3", "موسكو تدعو إلى التهدئة", 2, attribution="الكرملين"))
    plain = assign(threads, line("l4", "انفجار في ميناء", 3, attribution=None))
    plain_follow = assign(threads, line("l5", "سقوط جرحى", 4, attribution=None))
    plain_cont = assign(threads, line("l6", "الدفاع المدني في المكان", 5, attribution=None, continues=True))
    assert len({base.thread_id, other_source.thread_id, other_attr.thread_id, plain.thread_id, plain_follow.thread_id}) == 5
    assert plain_cont.thread_id == plain_follow.thread_id  # the marker joins the latest unattributed line


def test_reprocessing_a_line_keeps_its_place_and_expiry_forgets_silent_threads() -> None:
    threads = Threads(ThreadConfig(ttl_s=3600))
    assign(threads, line("l1", "أنقرة تدعو إلى وقف فوري لإطلاق النار", 0))
    again = assign(threads, line("l1", "أنقرة تدعو إلى وقف فوري لإطلاق النار", 0))
    assert not again.created and again.position == 0 and again.thread["line_count"] == 1
    now = datetime(2026, 11, 25, 22, 0, tzinfo=UTC).timestamp()
    deleted = set(threads.expire(now))
    assert {"t:th_l1", "r:th_l1", "i:l1"} <= deleted
    assert not threads.state
