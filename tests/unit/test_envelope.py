from __future__ import annotations

from newsstream.dedup.exact import partition_for
from newsstream.worker.envelope import EnvelopeBuilder, EnvelopeItem, Origin, read_envelope


def test_items_round_trip_per_partition_in_order() -> None:
    builder = EnvelopeBuilder()
    builder.add(1, "ticker:aa", "t_1", "ticker", b'{"text": "a\\tb\\nc"}')
    builder.add(0, "article:bb", "a_1", "article", b'{"body": "x"}')
    builder.add(1, "ticker:cc", "t\t2", "ticker", b"{}")  # a tab inside an id is escaped by JSON
    drained = dict(builder.drain())
    assert sorted(drained) == [0, 1]
    items = list(read_envelope(drained[1]))
    assert [(i.content_key, i.item_id, i.kind, i.value) for i in items] == [
        ("ticker:aa", "t_1", "ticker", b'{"text": "a\\tb\\nc"}'),
        ("ticker:cc", "t\t2", "ticker", b"{}"),
    ]
    assert list(builder.drain()) == []  # drained means empty


def test_an_envelope_is_split_before_it_exceeds_its_size_limit() -> None:
    builder = EnvelopeBuilder(max_bytes=100)
    for n in range(10):
        builder.add(0, f"ticker:{n:02x}", f"t_{n}", "ticker", b"x" * 30)
    envelopes = list(builder.drain())
    assert len(envelopes) > 1 and all(len(e) <= 100 for _, e in envelopes)
    ids = [i.item_id for _, e in envelopes for i in read_envelope(e)]
    assert ids == [f"t_{n}" for n in range(10)]


def test_a_broken_line_is_reported_and_the_others_still_read() -> None:
    items = list(read_envelope(b'["k:1", "t_1", "ticker"]\t{}\nno tab here\n["k:2", "t_2", "ticker"]\t{}'))
    assert isinstance(items[0], EnvelopeItem) and isinstance(items[2], EnvelopeItem)
    line, error = items[1]
    assert line == b"no tab here" and isinstance(error, ValueError)


def test_partition_follows_the_content_digest() -> None:
    assert partition_for("article:0000000a", 4) == 10 % 4
    assert partition_for("ticker:ffffffff00", 3) == 0xFFFFFFFF % 3


def test_an_item_bigger_than_an_envelope_is_refused_alone() -> None:
    builder = EnvelopeBuilder(max_bytes=100)
    builder.add(0, "ticker:01", "t_1", "ticker", b"x" * 10)
    try:
        builder.add(0, "ticker:02", "t_2", "ticker", b"x" * 200)
    except ValueError as exc:
        assert "more than an envelope may hold" in str(exc)
    else:
        raise AssertionError("an oversize item was accepted")
    assert [i.item_id for _, e in builder.drain() for i in read_envelope(e)] == ["t_1"]


def test_the_header_carries_event_time_and_raw_coordinates_and_an_older_workers_header_still_reads() -> None:
    builder = EnvelopeBuilder()
    origin = Origin("news.raw.articles.v1", 2, 99)
    builder.add(0, "article:aa", "a_1", "article", b"{}", event_time=1_551_427_200.0, origin=origin)
    builder.add(0, "article:bb", "a_2", "article", b"{}")
    first, second = read_envelope(next(builder.drain())[1])
    assert isinstance(first, EnvelopeItem) and (first.event_time, first.origin) == (1_551_427_200.0, origin)
    assert isinstance(second, EnvelopeItem) and (second.event_time, second.origin) == (None, None)
    (old,) = read_envelope(b'["article:aa", "a_1", "article"]\t{}')  # written before the header grew
    assert isinstance(old, EnvelopeItem) and (old.item_id, old.event_time, old.origin) == ("a_1", None, None)
