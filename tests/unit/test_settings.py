"""Every setting lives in the Settings object, and secrets stay secret (issue 15, item 9)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from newsstream.contract import wire
from newsstream.contract.models import RawTickerItem
from newsstream.platform.settings import Settings
from newsstream.worker.app import _faust_broker_settings
from newsstream.worker.envelope import read_envelope

SECRET = "s3cret-sasl-pw"
PUB = datetime(2025, 3, 1, 22, 4, tzinfo=UTC)


def _sasl_settings(**overrides: Any) -> Settings:
    return Settings(
        kafka_bootstrap_servers="kafka:9093", kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_mechanism="PLAIN",
        kafka_sasl_username="newsstream", kafka_sasl_password=SECRET, **overrides,
    )


def test_the_sasl_password_is_never_in_repr_str_or_a_dump(caplog: pytest.LogCaptureFixture) -> None:
    settings = _sasl_settings()
    for shown in (repr(settings), str(settings), str(settings.model_dump()), settings.model_dump_json()):
        assert SECRET not in shown
    with caplog.at_level(logging.INFO):
        logging.getLogger("test").info("settings: %s", settings)
    assert SECRET not in caplog.text


def test_the_store_url_and_its_password_stay_out_of_repr() -> None:
    settings = _sasl_settings(store_url=f"postgresql://newsstream:{SECRET}@db/newsstream")
    assert SECRET not in repr(settings) and SECRET not in str(settings)


def test_the_clients_get_the_plain_password() -> None:
    settings = _sasl_settings()
    assert settings.kafka_client_kwargs()["sasl_plain_password"] == SECRET
    assert _faust_broker_settings(settings)["broker_credentials"].password == SECRET


def test_enrich_structured_is_read_with_the_settings_not_at_import(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: read from os.environ once, when newsstream.enrich.item was first imported."""
    import newsstream.enrich.item  # noqa: F401 - imported before the variable is set, as in a long-lived process

    monkeypatch.setenv("NEWSSTREAM_ENRICH_STRUCTURED", "off")
    assert Settings().enrich_structured is False
    monkeypatch.setenv("NEWSSTREAM_ENRICH_STRUCTURED", "on")
    assert Settings().enrich_structured is True


def _ticker() -> RawTickerItem:
    return RawTickerItem(id="t1", source="s", time="22:04", published_at=PUB, text="طهران تتخلى عن الحوثيين",
                         attribution="تلغراف عن مسؤول إيراني رفيع", thread_id="th", fetched_at=PUB)


class _Output:
    def __init__(self) -> None:
        self.sent: list[tuple[str, Any, bytes, Any]] = []

    async def send(self, topic: str, key: Any, value: bytes, partition: Any = None) -> None:
        self.sent.append((topic, key, value, partition))

    async def dead_letter(self, *args: Any) -> None:
        raise AssertionError(f"unexpected dead letter: {args}")


@pytest.mark.parametrize("structured", [True, False])
def test_the_worker_enriches_as_the_settings_say(structured: bool) -> None:
    import asyncio

    from newsstream.worker.enrich_stage import EnrichStage

    settings = Settings(enrich_structured=structured)
    output = _Output()
    stage = EnrichStage(output, "by-content", settings.partitions, structured=settings.enrich_structured)  # type: ignore[arg-type]
    raw = _ticker()
    message = SimpleNamespace(topic="news.raw.ticker.v1", partition=0, offset=0, key=raw.id.encode(), value=wire.dumps(raw))
    asyncio.run(stage.handle([SimpleNamespace(message=message)]))
    (_topic, _key, envelope, _partition), = output.sent
    (item,) = list(read_envelope(envelope))
    entities = wire.loads_enriched(item.value).enrichment.entities
    assert (entities is not None) is structured


@pytest.mark.parametrize("structured", [True, False])
def test_the_offline_replay_enriches_as_configured(structured: bool) -> None:
    from newsstream.evaluation.stream_replay import Pipeline, PipelineConfig

    processed = Pipeline(PipelineConfig(structured=structured)).process(_ticker(), PUB)
    assert (processed.enriched.enrichment.entities is not None) is structured


def test_eval_stream_takes_enrich_structured_from_the_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    from typer.testing import CliRunner

    from newsstream.cli import eval as eval_cli
    from newsstream.cli.main import app

    seen: list[Any] = []
    monkeypatch.setattr(eval_cli, "eval_stream", lambda _f, config, *_a: seen.append(config) or {"sample": []})
    stream = tmp_path / "s.jsonl"
    stream.write_text("")
    monkeypatch.setenv("NEWSSTREAM_ENRICH_STRUCTURED", "off")
    result = CliRunner().invoke(app, ["eval", "stream", str(stream)])
    assert result.exit_code == 0, result.output
    assert seen[0].structured is False
