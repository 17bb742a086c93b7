"""Thin aiokafka plumbing shared by the producer and the sink.

Producer settings suit a news pipeline: nothing may be lost (acks=all,
idempotence), and throughput comes from batching and zstd compression
(aiokafka's lz4 runs at level 9 and is several times slower).
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    TopicAlreadyExistsError,
    UnknownError,
)

from newsstream.contract.topics import TopicSpec, topic_specs
from newsstream.errors import ConfigError, InfrastructureError
from newsstream.platform.settings import Settings

log = logging.getLogger(__name__)


def require_bootstrap(settings: Settings) -> str:
    if not settings.kafka_bootstrap_servers:
        raise ConfigError("no Kafka bootstrap address: pass --bootstrap HOST:PORT or set KAFKA_BOOTSTRAP_SERVERS")
    return settings.kafka_bootstrap_servers


class KafkaUnavailable(InfrastructureError):
    """The brokers did not answer within ``kafka_connect_timeout_s``."""


def make_producer(settings: Settings, *, idempotent: bool = True, **overrides: object) -> AIOKafkaProducer:
    kwargs: dict[str, object] = dict(
        bootstrap_servers=require_bootstrap(settings),
        acks="all",
        enable_idempotence=idempotent,
        compression_type="zstd",
        linger_ms=10,
        max_batch_size=1024 * 1024,  # the default 16 KiB cuts 2 KB-message throughput by ~4x
        # Apache Kafka's default message.max.bytes: a bigger record is refused
        # at send() (and dead-lettered) instead of failing at the broker.
        max_request_size=settings.max_record_bytes,
        request_timeout_ms=30_000,
        client_id="newsstream",
        **settings.kafka_client_kwargs(),
    )
    kwargs.update(overrides)
    return AIOKafkaProducer(**kwargs)


def make_consumer(settings: Settings, *topics: str, group_id: str, **overrides: object) -> AIOKafkaConsumer:
    kwargs: dict[str, object] = dict(
        bootstrap_servers=require_bootstrap(settings),
        group_id=group_id,
        enable_auto_commit=False,  # offsets are committed only after the work is durable
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        session_timeout_ms=int(settings.session_timeout_s * 1000),
        rebalance_timeout_ms=int(settings.rebalance_timeout_s * 1000),
        heartbeat_interval_ms=int(settings.heartbeat_interval_s * 1000),
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
        max_poll_records=settings.sink_batch_size,
        client_id="newsstream",
        **settings.kafka_client_kwargs(),
    )
    kwargs.update(overrides)
    return AIOKafkaConsumer(*topics, **kwargs)


async def start_producer(settings: Settings, **overrides: object) -> AIOKafkaProducer:
    """Start a producer, idempotent where the broker supports it.

    aiokafka sends InitProducerId v0, which the embedded Tansu broker answers
    with UnknownError; Apache Kafka accepts it. With ``kafka_idempotence=auto``
    we fall back to acks=all without idempotence: a retry may then
    write an event twice, which is harmless because every event carries a
    stable id and every consumer (worker dedup, sink upsert) is idempotent by id.
    """
    mode = settings.kafka_idempotence
    producer = make_producer(settings, idempotent=mode != "off", **overrides)
    sender_log = logging.getLogger("aiokafka.producer.sender")
    level = sender_log.level
    if mode == "auto":
        sender_log.setLevel(logging.CRITICAL)  # the refusal is expected and handled below; don't log it as an error
    try:
        await _started(producer, settings)
        return producer
    except UnknownError:
        await producer.stop()
        if mode != "auto":
            raise
    except BaseException:
        await producer.stop()
        raise
    finally:
        sender_log.setLevel(level)
    # Expected on the embedded broker, so said once and quietly.
    log.debug("broker refused InitProducerId: producing with acks=all, idempotence off (see kafka_idempotence)")
    producer = make_producer(settings, idempotent=False, **overrides)
    await _started(producer, settings)
    return producer


async def _started(client: AIOKafkaProducer, settings: Settings) -> None:
    """``client.start()``, with the broker's absence as one clear :class:`KafkaUnavailable`."""
    try:
        await client.start()
    except KafkaConnectionError as exc:
        raise KafkaUnavailable(f"Kafka at {settings.kafka_bootstrap_servers} is not reachable: {exc}") from None


async def ensure_topics(settings: Settings, specs: list[TopicSpec] | None = None) -> list[str]:
    """Create the topics that do not exist yet; returns the names created.

    Idempotent, so every service calls it at start-up and the first one wins.
    Waits for the broker up to ``kafka_connect_timeout_s``, saying so in one
    line per attempt (a broker that accepts connections but never answers
    counts as absent), then raises :class:`KafkaUnavailable`.
    """
    specs = specs if specs is not None else topic_specs(settings.partitions)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settings.kafka_connect_timeout_s
    attempt = 0
    while True:
        attempt += 1
        admin = AIOKafkaAdminClient(bootstrap_servers=require_bootstrap(settings), request_timeout_ms=5000,
                                    **settings.kafka_client_kwargs())
        try:
            async with asyncio.timeout(max(1.0, min(ATTEMPT_TIMEOUT_S, deadline - loop.time()))):
                await admin.start()
                return await _create_missing(admin, settings, specs)
        except (KafkaConnectionError, KafkaTimeoutError, TimeoutError) as exc:
            left = deadline - loop.time()
            if left <= 0:
                raise KafkaUnavailable(
                    f"Kafka at {settings.kafka_bootstrap_servers} did not answer within "
                    f"{settings.kafka_connect_timeout_s:g} s (NEWSSTREAM_KAFKA_CONNECT_TIMEOUT_S)"
                ) from None
            log.warning("waiting for Kafka at %s (attempt %d, %.0f s left): %s",
                        settings.kafka_bootstrap_servers, attempt, left, _reason(exc))
            await asyncio.sleep(min(0.25 * 2 ** (attempt - 1), 3.0, left))
        finally:
            await admin.close()


async def cluster_id(settings: Settings) -> str | None:
    """The cluster's id (DescribeCluster, Kafka 2.8+); None when the broker does not say.

    One request on a new connection: ~30 ms on this machine."""
    admin = AIOKafkaAdminClient(bootstrap_servers=require_bootstrap(settings), request_timeout_ms=5000,
                                **settings.kafka_client_kwargs())
    try:
        async with asyncio.timeout(ATTEMPT_TIMEOUT_S):
            await admin.start()
            return (await admin.describe_cluster()).get("cluster_id")
    except (KafkaError, TimeoutError) as exc:
        log.info("the broker did not tell its cluster id (%s)", _reason(exc))
        return None
    finally:
        await admin.close()


# One attempt to reach the brokers: a listener that accepts and never answers is given up on after this.
ATTEMPT_TIMEOUT_S = 5.0


def _reason(exc: BaseException) -> str:
    return "no answer" if isinstance(exc, TimeoutError) else (str(exc) or type(exc).__name__)


def new_topics(specs: list[TopicSpec], settings: Settings) -> list[NewTopic]:
    """The CreateTopics request for ``specs``: their partitions and configs, the replication settings."""
    return [NewTopic(s.name, s.partitions, settings.replication_factor,
                     topic_configs={**s.config, **settings.replication_configs()}) for s in specs]


async def _create_missing(admin: AIOKafkaAdminClient, settings: Settings, specs: list[TopicSpec]) -> list[str]:
    existing = set(await admin.list_topics())
    missing = [s for s in specs if s.name not in existing]
    if missing:
        try:
            response = await admin.create_topics(new_topics(missing, settings))
        except TopicAlreadyExistsError:
            response = None  # another service created them in the meantime
        # create_topics reports per-topic errors in its response instead of raising.
        for error in getattr(response, "topic_errors", None) or ():
            name, code = error[0], error[1]
            if code not in (0, TopicAlreadyExistsError.errno):
                message = error[2] if len(error) > 2 else ""
                raise InfrastructureError(f"could not create topic {name}: error {code} {message}")
    # Only topics known to exist are described: a metadata request for a missing
    # topic makes brokers with auto-creation on (Tansu, Kafka's default) create it.
    present = [s.name for s in specs if s.name in existing and s.checked]
    counts = {t["topic"]: len(t["partitions"]) for t in await admin.describe_topics(present)} if present else {}
    check_partitions(specs, counts, settings)
    return [s.name for s in missing]


class PartitionMismatch(ConfigError):
    """Existing topics have other partition counts than the settings say."""


def check_partitions(specs: list[TopicSpec], counts: dict[str, int], settings: Settings) -> None:
    """Raise :class:`PartitionMismatch` when an existing topic's partition count is not its spec's.

    Keys are co-partitioned end to end (raw, enriched, stories) and with the
    worker's state (the by-content topic and the dedup changelog); stage 3
    reads one partition. A topic with another count would silently put keys
    next to the wrong state, so the services refuse to start instead."""
    wrong = [(s, counts[s.name]) for s in specs if s.checked and s.name in counts and counts[s.name] != s.partitions]
    if not wrong:
        return
    listed = ", ".join(f"{s.name} has {n} (expected {s.partitions})" for s, n in wrong)
    # The setting is the fix only when every topic that follows it agrees on one count.
    scaled = [s for s in specs if s.checked and s.partitions == settings.partitions]
    agreed = {counts[s.name] for s in scaled if s.name in counts}
    if len(agreed) == 1 and all(s in scaled for s, _ in wrong):
        fix = f"set NEWSSTREAM_PARTITIONS={agreed.pop()} (or --partitions) to match them"
    else:
        fix = "the topics no longer agree with each other: recreate them (docs/operations.md#partitions)"
    raise PartitionMismatch(f"topic partitions disagree with NEWSSTREAM_PARTITIONS={settings.partitions}: {listed}; {fix}")
