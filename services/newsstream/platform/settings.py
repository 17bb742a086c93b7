"""Configuration by flags and environment (pydantic-settings).

Every setting reads ``NEWSSTREAM_<NAME>``; the Kafka bootstrap address also
reads the conventional ``KAFKA_BOOTSTRAP_SERVERS``. CLI flags override both.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NEWSSTREAM_", extra="ignore", populate_by_name=True)

    kafka_bootstrap_servers: str = Field(
        default="localhost:9092",
        validation_alias=AliasChoices("NEWSSTREAM_KAFKA_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS"),
        description="host:port[,host:port] of the Kafka cluster (like every Kafka tool, localhost:9092 by default).",
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: str | None = None
    kafka_sasl_username: str | None = None
    # A secret: '**********' in repr, str and dumps; only the Kafka clients read its value.
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: str | None = None
    kafka_connect_timeout_s: float = Field(default=30.0, ge=0, description="How long start-up waits for the broker.")
    kafka_idempotence: Literal["auto", "on", "off"] = Field(
        default="auto", description="'auto': idempotent producer where the broker supports it (Apache Kafka does)."
    )

    max_record_bytes: int = Field(
        default=1_000_000, ge=10_000,
        description="Largest record a service writes (Apache Kafka's default message.max.bytes); a bigger item is a 'too_large' dead letter.",
    )

    partitions: int = Field(default=4, ge=1, description="Partitions of raw and enriched topics.")
    replication_factor: int = Field(default=1, ge=1)

    # Group timings: Kafka's defaults make a new consumer wait ~30 s for its
    # first assignment; these keep start-up at a few seconds and are still
    # safe for production-sized batches.
    session_timeout_s: float = 10.0
    rebalance_timeout_s: float = 10.0
    heartbeat_interval_s: float = 1.0
    fetch_max_wait_ms: int = 100

    worker_app_id: str = "newsstream-worker"
    worker_datadir: str = Field(default=".newsstream/worker-data", description="faust's local state directory.")
    worker_batch_size: int = Field(default=500, ge=1)
    worker_batch_within_s: float = 0.2
    dedup_window_hours: float = Field(default=48.0, gt=0, description="How long a content hash is remembered.")
    # Stage 3 of the worker: near-duplicates, ticker threads across fetches, stories.
    stories_enabled: bool = Field(
        default=True,
        description="Run stage 3 (near-duplicates, threads, stories, news.stories.v1). Off: enriched items carry exact duplicates only.",
    )
    near_threshold: float = Field(default=0.5, gt=0, le=1, description="Estimated Jaccard of word shingles for a near-duplicate.")
    near_window_hours: float = Field(default=48.0, gt=0, description="How far back a near-duplicate is looked for (event time).")
    thread_followup_minutes: float = Field(default=60.0, gt=0, description="A line of the same attribution joins a thread within this.")
    thread_continuation_hours: float = Field(default=6.0, gt=0, description="A '-' continuation line joins a thread within this.")
    story_threshold: float = Field(default=0.2, gt=0, le=1, description="Similarity at which an item joins a story.")
    story_window_hours: float = Field(default=24.0, gt=0, description="A story silent for longer takes no new members.")
    enrich_structured: bool = Field(
        default=True,
        description="Entities, quotes, times, topics, regions, urgency; off: language, normalisation, hash and word count only.",
    )

    # Out of repr: a PostgreSQL URL may carry the database password (logs show it redacted).
    store_url: str = Field(default="sqlite:///.newsstream/newsstream.sqlite", repr=False)
    sink_group_id: str = "newsstream-sink"
    sink_batch_size: int = Field(default=500, ge=1)
    sink_batch_wait_ms: int = 200

    metrics_host: str = "0.0.0.0"
    metrics_port: int = Field(default=9300, ge=0, le=65535)
    log_level: str = "info"
    log_format: Literal["json", "console"] = "console"

    def sasl_password(self) -> str | None:
        """The SASL password in clear, for the Kafka clients only."""
        return self.kafka_sasl_password.get_secret_value() if self.kafka_sasl_password else None

    def kafka_client_kwargs(self) -> dict[str, object]:
        """Security settings for aiokafka clients (producer, consumer, admin)."""
        kwargs: dict[str, object] = {"security_protocol": self.kafka_security_protocol}
        if self.kafka_sasl_mechanism:
            kwargs.update(
                sasl_mechanism=self.kafka_sasl_mechanism,
                sasl_plain_username=self.kafka_sasl_username,
                sasl_plain_password=self.sasl_password(),
            )
        if self.kafka_security_protocol in ("SSL", "SASL_SSL"):
            from aiokafka.helpers import create_ssl_context

            kwargs["ssl_context"] = create_ssl_context(cafile=self.kafka_ssl_cafile)
        return kwargs


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment, with non-None overrides (CLI flags) on top."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
