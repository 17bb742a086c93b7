"""The changelog tail re-read is a Tansu work-around: on by default only where it is needed (issue 15, item 8).

Re-reading every owned changelog partition after each assignment costs about
as much as faust's recovery itself; Apache Kafka does not need it.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from faust.types import TP

from newsstream.errors import ConfigError
from newsstream.platform.settings import Settings, load_settings
from newsstream.worker import changelog
from newsstream.worker.changelog import TANSU_CLUSTER_ID, ChangelogTail, tail_check_wanted

CHANGELOG = "newsstream-worker-dedup-first-seen-changelog"


@pytest.mark.parametrize(
    ("mode", "cluster", "wanted"),
    [
        ("auto", TANSU_CLUSTER_ID, True),
        ("auto", None, True),  # the broker does not say: the safe side
        ("auto", "MkU3OEVBNTcwNTJENDM2Qg", False),  # an Apache Kafka cluster id
        ("on", "MkU3OEVBNTcwNTJENDM2Qg", True),
        ("off", TANSU_CLUSTER_ID, False),
    ],
)
def test_auto_re_reads_on_tansu_only(mode: str, cluster: str | None, wanted: bool) -> None:
    assert tail_check_wanted(mode, cluster) is wanted


def test_the_setting_takes_auto_on_off_only(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().changelog_tail_check == "auto"
    monkeypatch.setenv("NEWSSTREAM_CHANGELOG_TAIL_CHECK", "sometimes")
    with pytest.raises(ConfigError, match="NEWSSTREAM_CHANGELOG_TAIL_CHECK"):
        load_settings()


class _Table:
    name = "dedup-first-seen"
    changelog_topic = SimpleNamespace(get_topic_name=lambda: CHANGELOG)
    data: dict[str, Any] = {}


def _tail(enabled: bool) -> ChangelogTail:
    assignor = SimpleNamespace(assigned_actives=lambda: {TP(CHANGELOG, 0), TP("other", 0)})
    return ChangelogTail(Settings(kafka_bootstrap_servers="127.0.0.1:1"), assignor, enabled=enabled)


@pytest.mark.parametrize("enabled", [True, False])
async def test_a_new_assignment_is_reported_once_and_re_read_only_when_enabled(
    enabled: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[tuple[str, list[int]]] = []

    async def read(settings: Settings, topic: str, partitions: list[int], table: Any) -> int:
        reads.append((topic, partitions))
        return 0

    monkeypatch.setattr(changelog, "add_missing_entries", read)
    monkeypatch.setattr(changelog, "sync_with_changelog", read)
    tail = _tail(enabled)
    # True: stage 3 rebuilds its derived index after every assignment, re-read or not.
    assert await tail.repair([_Table()]) is True
    assert await tail.repair([_Table()]) is False
    tail.forget()
    assert await tail.repair([_Table()], sync=True) is True
    assert reads == ([(CHANGELOG, [0])] * 2 if enabled else [])


async def test_a_failed_re_read_is_tried_again(monkeypatch: pytest.MonkeyPatch) -> None:
    async def timeout(*_: Any) -> int:
        raise TimeoutError("broker gone")

    monkeypatch.setattr(changelog, "add_missing_entries", timeout)
    tail = _tail(True)
    for _ in range(2):
        with pytest.raises(TimeoutError):
            await tail.repair([_Table()])


async def test_the_embedded_broker_is_recognised_as_tansu(fast_settings: Settings) -> None:
    assert await changelog.tail_check_enabled(fast_settings) is True
    assert await changelog.tail_check_enabled(fast_settings.model_copy(update={"changelog_tail_check": "off"})) is False
    # The cluster id is the one Tansu reports, so auto is not on merely because the broker said nothing.
    from newsstream.platform.kafka import cluster_id

    assert await cluster_id(fast_settings) == TANSU_CLUSTER_ID
