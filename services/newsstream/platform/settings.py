"""Configuration by flags and environment (pydantic-settings).

Every setting reads ``NEWSSTREAM_<NAME>``; the Kafka bootstrap address also
reads the conventional ``KAFKA_BOOTSTRAP_SERVERS``. CLI flags override both.
An invalid value is a :class:`~newsstream.errors.ConfigError` naming the
variable or flag to change (:func:`load_settings`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from newsstream.errors import ConfigError

# Each service's own port for /metrics, /healthz and /readyz, so that a worker,
# a sink and an ingest server run side by side on one host without a setting.
DEFAULT_METRICS_PORTS = {"worker": 9300, "sink": 9301, "ingest": 9302}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NEWSSTREAM_", extra="ignore", populate_by_name=True)

    kafka_bootstrap_servers: str = Field(
        default="localhost:9092",
        validation_alias=AliasChoices("NEWSSTREAM_KAFKA_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS"),
        description="host:port[,host:port] of the Kafka cluster (like every Kafka tool, localhost:9092 by default).",
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    # The mechanisms a username and password work with (what the clients are given).
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
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
    min_insync_replicas: int | None = Field(
        default=None, ge=1,
        description="min.insync.replicas of the topics created; unset: replication_factor - 1 when replicated.",
    )

    # Group timings: Kafka's defaults make a new consumer wait ~30 s for its
    # first assignment; these keep start-up at a few seconds and are still
    # safe for production-sized batches.
    session_timeout_s: float = 10.0
    rebalance_timeout_s: float = 10.0
    heartbeat_interval_s: float = 1.0
    # The longest a consumer's fetch waits for records. Apache Kafka answers as soon as
    # a record is there; the embedded broker holds every fetch this long, so on it this
    # is added at each hop (worker x3, sink): bench/latency.py.
    fetch_max_wait_ms: int = Field(default=50, ge=1)

    worker_app_id: str = "newsstream-worker"
    worker_datadir: str = Field(default=".newsstream/worker-data", description="faust's local state directory.")
    changelog_tail_check: Literal["auto", "on", "off"] = Field(
        default="auto",
        description="Re-read the owned changelog partitions after each assignment (a Tansu work-around); auto: on Tansu only.",
    )
    worker_batch_size: int = Field(default=500, ge=1)
    # The longest a stage waits to fill a batch once its queue is empty. Under load
    # batches fill while the previous one is processed, so this bounds the latency of
    # a quiet stream without costing throughput (bench/latency.py).
    worker_batch_within_s: float = Field(default=0.02, gt=0)
    dedup_window_hours: float = Field(default=48.0, gt=0, description="How long a content hash is remembered.")
    embeddings: bool = Field(
        default=True,
        description="Sentence vectors (multilingual-e5-small) on every item, used by stories. Off: today's lexical stories, no vector field.",
    )
    embedding_article_tokens: int = Field(default=128, ge=8, le=512, description="Tokens of an article's title and lead that are embedded.")
    # 128: the vector's window, read in context at no extra cost. Each further
    # token costs six encoder layers (0.28-0.4 ms of CPU by machine): 256
    # gives long articles +0.003 F1 and median ones about +0.01, and an
    # article 190 ms of CPU on a machine without AVX-512, past the 150 ms budget.
    ner_context_tokens: int = Field(
        default=128, ge=0, le=4096,
        description="With embeddings: encoder tokens of each text (a line, a headline, a body's start) the entity tagger "
                    "reads in context; the first 128 come with the vector, each further one costs about 0.3 ms of CPU. "
                    "0: the tagger's own features only.",
    )
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
    story_vector_threshold: float = Field(
        default=0.4, gt=0, lt=1,
        description="With embeddings: the same-story probability (from the cosine of the items' vectors) an item needs to join a story.",
    )
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
    metrics_port: int | None = Field(
        default=None, ge=0, le=65535,
        description="Port of /metrics, /healthz, /readyz for every service; unset: each its own (DEFAULT_METRICS_PORTS).",
    )
    log_level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    log_format: Literal["json", "console"] = "console"

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower_case_level(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _cafile_exists(self) -> Settings:
        # Only where TLS is used: an unused CA path (a shared config on PLAINTEXT) is no mistake.
        if self.kafka_security_protocol in ("SSL", "SASL_SSL") and self.kafka_ssl_cafile \
                and not Path(self.kafka_ssl_cafile).is_file():
            raise ValueError(f"NEWSSTREAM_KAFKA_SSL_CAFILE: no such file {self.kafka_ssl_cafile}")
        return self

    @model_validator(mode="after")
    def _insync_within_replicas(self) -> Settings:
        if self.min_insync_replicas is not None and self.min_insync_replicas > self.replication_factor:
            raise ValueError(f"NEWSSTREAM_MIN_INSYNC_REPLICAS={self.min_insync_replicas} is more than "
                             f"NEWSSTREAM_REPLICATION_FACTOR={self.replication_factor}: no write could succeed")
        return self

    @model_validator(mode="after")
    def _sasl_is_complete(self) -> Settings:
        if self.kafka_security_protocol.startswith("SASL_"):
            missing = [f"NEWSSTREAM_{name.upper()}" for name in ("kafka_sasl_mechanism", "kafka_sasl_username", "kafka_sasl_password")
                       if not getattr(self, name)]
            if missing:
                raise ValueError(f"NEWSSTREAM_KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} needs {', '.join(missing)}")
        return self

    def replication_configs(self) -> dict[str, str]:
        """Topic configs that go with the replication factor.

        Producers write with acks=all; with min.insync.replicas = replicas - 1
        (2 of 3) an acknowledged record is on two brokers, and one broker may
        be down without stopping writes. Unreplicated topics keep the broker's
        default (1)."""
        insync = self.min_insync_replicas or (self.replication_factor - 1 if self.replication_factor > 1 else None)
        return {"min.insync.replicas": str(insync)} if insync else {}

    def metrics_port_for(self, service: str) -> int:
        """The port ``service`` serves on: ``metrics_port`` when set, else the service's own default."""
        return self.metrics_port if self.metrics_port is not None else DEFAULT_METRICS_PORTS[service]

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


# The command-line flag of a setting, where it is not ``--`` and the setting's name.
FLAGS = {"kafka_bootstrap_servers": "--bootstrap", "store_url": "--store"}
# Values never repeated in an error message.
SECRET_SETTINGS = {"kafka_sasl_password", "store_url"}


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment, with non-None overrides (CLI flags) on top.

    An invalid value raises :class:`ConfigError`, one line naming the flag or
    the environment variable it came from."""
    flags = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**flags)
    except ValidationError as exc:
        raise ConfigError("; ".join(_describe(error, flags) for error in exc.errors())) from None


def env_name(setting: str) -> str:
    return "KAFKA_BOOTSTRAP_SERVERS" if setting == "kafka_bootstrap_servers" else f"NEWSSTREAM_{setting.upper()}"


def _describe(error: Any, flags: dict[str, object]) -> str:
    reason = str(error["msg"]).removeprefix("Value error, ")
    if not error["loc"]:
        return reason  # a rule across settings: its message names them
    setting = str(error["loc"][0])
    if setting in flags:
        source = FLAGS.get(setting, "--" + setting.replace("_", "-"))
    else:
        source = f"{env_name(setting)} (flag {FLAGS[setting]})" if setting in FLAGS else env_name(setting)
    shown = "" if setting in SECRET_SETTINGS else f" {error['input']!r}"
    return f"invalid {source}{shown}: {reason[:1].lower()}{reason[1:]}"
