"""Structured logs: one JSON object a line, error context as fields, no secrets."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from newsstream.contract import topics
from newsstream.platform.kafka import ensure_topics, start_producer
from newsstream.platform.logs import configure_logging, redact_text
from newsstream.platform.settings import Settings
from newsstream.sink.stores import open_store
from tests.integration import harness

SECRET = "s3cret-Pa55"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


def _json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"postgresql://news:{SECRET}@db:5432/news?schema=s", "postgresql://news:***@db:5432/news?schema=s"),
        (f"sasl_plain_password={SECRET} user=x", "sasl_plain_password=*** user=x"),
        (f"connect failed: password: {SECRET}", "connect failed: password: ***"),
        ("kafka:9092 and http://host:9300/metrics", "kafka:9092 and http://host:9300/metrics"),  # no credentials, unchanged
    ],
)
def test_redact_text(text: str, expected: str) -> None:
    assert redact_text(text) == expected


def test_json_logs_carry_extra_fields_and_no_secrets(restore_logging: None, capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", "json")
    log = logging.getLogger("newsstream.test")
    log.warning(
        "write failed for %s", f"postgresql://u:{SECRET}@h/db",
        extra={"item_id": "a_1", "topic": "news.enriched.articles.v1", "partition": 3, "offset": 42, "password": SECRET},
    )
    try:
        raise ConnectionError(f"cannot reach postgresql://u:{SECRET}@h/db")
    except ConnectionError:
        log.exception("store down", extra={"offset": 7})
    structlog.get_logger("newsstream.native").error("native", dsn=f"postgresql://u:{SECRET}@h/db", kafka_sasl_password=SECRET)

    err = capsys.readouterr().err
    assert SECRET not in err
    first, second, third = _json_lines(err)
    assert first["event"] == "write failed for postgresql://u:***@h/db"
    assert (first["item_id"], first["topic"], first["partition"], first["offset"]) == ("a_1", "news.enriched.articles.v1", 3, 42)
    assert first["level"] == "warning" and first["password"] == "***" and first["timestamp"].endswith("Z")
    assert second["level"] == "error" and "ConnectionError" in second["exception"] and second["offset"] == 7
    assert third["dsn"] == "postgresql://u:***@h/db" and third["kafka_sasl_password"] == "***"


@pytest.mark.integration
async def test_services_log_json_with_message_coordinates_and_no_store_password(
    fast_settings: Settings, pg_url: str, tmp_path: Path, query_store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Trust auth ignores the password, so the URL works and the secret is real text the sink must not leak.
    url = pg_url.replace("postgresql://postgres@", f"postgresql://postgres:{SECRET}@")
    async with open_store(url) as store:
        await store.migrate()
    settings = fast_settings.model_copy(update={"store_url": url})
    monkeypatch.setenv("NEWSSTREAM_LOG_FORMAT", "json")  # inherited by the child processes
    # As `topics create` does before any service starts: a record sent first would make
    # Tansu auto-create its topic with 4 partitions, which the services now refuse.
    await ensure_topics(settings)
    services = [harness.start("worker", settings, tmp_path), harness.start("sink", settings, tmp_path)]
    worker, sink = services
    try:
        rogue = await start_producer(settings)
        try:
            await rogue.send_and_wait(topics.RAW_ARTICLES, b"{not json", key=b"raw-bad-1")
            await rogue.send_and_wait(topics.ENRICHED_ARTICLES, b"also not json", key=b"enriched-bad-1")
        finally:
            await rogue.stop()

        async def both_stored() -> bool:
            return (await query_store(url, "SELECT count(*) n FROM dead_letters"))[0]["n"] == 2

        await harness.wait_for(both_stored, 90, "two dead letters stored", services)  # type: ignore[arg-type]
    finally:
        for service in services:
            service.stop()

    logs = {s.name: s.log_path.read_text() for s in services}
    for name, text in logs.items():
        assert SECRET not in text, f"{name} logged the store password"
        records = _json_lines(text)  # every line is one JSON object (faust's own lines included)
        assert records and all("level" in r and "timestamp" in r for r in records), name

    def dead_letter_record(name: str, item_id: str) -> dict[str, Any]:
        matching = [r for r in _json_lines(logs[name]) if r.get("item_id") == item_id]
        assert matching, f"no log record of {name} names item {item_id}:\n{logs[name][-3000:]}"
        return matching[0]

    raw = dead_letter_record("worker", "raw-bad-1")
    assert raw["topic"] == topics.RAW_ARTICLES and raw["reason"] == "invalid_json"
    assert isinstance(raw["partition"], int) and isinstance(raw["offset"], int)
    enriched = dead_letter_record("sink", "enriched-bad-1")
    assert enriched["topic"] == topics.ENRICHED_ARTICLES and enriched["level"] == "warning"
    assert isinstance(enriched["partition"], int) and isinstance(enriched["offset"], int)
    assert "postgresql://postgres:***@" in logs["sink"]  # the store it opened, password redacted
