"""SASL and TLS reach every client by configuration (docs/operations.md, "Kafka security").

No SASL/TLS broker is available offline, so these check the wiring: the
settings every aiokafka client gets, and what faust hands to aiokafka.
"""

from __future__ import annotations

import ssl

import pytest
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from newsstream.platform.kafka import make_consumer, make_producer
from newsstream.platform.settings import Settings
from newsstream.worker.app import _faust_broker_settings


def _settings(**overrides: object) -> Settings:
    return Settings(kafka_bootstrap_servers="kafka-1:9093,kafka-2:9093", **overrides)  # type: ignore[arg-type]


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
async def test_sasl_over_tls_reaches_aiokafka_and_faust(mechanism: str) -> None:
    settings = _settings(
        kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism=mechanism,
        kafka_sasl_username="newsstream", kafka_sasl_password="pw",
    )
    kwargs = settings.kafka_client_kwargs()
    assert kwargs["security_protocol"] == "SASL_SSL" and kwargs["sasl_mechanism"] == mechanism
    assert (kwargs["sasl_plain_username"], kwargs["sasl_plain_password"]) == ("newsstream", "pw")
    assert isinstance(kwargs["ssl_context"], ssl.SSLContext)
    # aiokafka clients must be created inside a running loop; they are never started here.
    producer, consumer = make_producer(settings), make_consumer(settings, "t", group_id="g")
    try:
        for client in (producer.client, consumer._client):
            assert client._security_protocol == "SASL_SSL" and client._sasl_mechanism == mechanism
    finally:
        await producer.stop()
        await consumer.stop()

    faust_kwargs = _faust_broker_settings(settings)
    assert faust_kwargs["broker"] == "kafka://kafka-1:9093;kafka://kafka-2:9093"
    auth = credentials_to_aiokafka_auth(faust_kwargs["broker_credentials"])
    assert auth["security_protocol"] == "SASL_SSL" and auth["sasl_mechanism"] == mechanism
    assert auth["sasl_plain_username"] == "newsstream" and isinstance(auth["ssl_context"], ssl.SSLContext)


def test_sasl_without_tls() -> None:
    settings = _settings(
        kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_mechanism="SCRAM-SHA-256",
        kafka_sasl_username="u", kafka_sasl_password="pw",
    )
    assert "ssl_context" not in settings.kafka_client_kwargs()
    auth = credentials_to_aiokafka_auth(_faust_broker_settings(settings)["broker_credentials"])
    assert auth["security_protocol"] == "SASL_PLAINTEXT" and auth["sasl_mechanism"] == "SCRAM-SHA-256"


def test_tls_only() -> None:
    settings = _settings(kafka_security_protocol="SSL")
    assert settings.kafka_client_kwargs()["security_protocol"] == "SSL"
    auth = credentials_to_aiokafka_auth(_faust_broker_settings(settings)["broker_credentials"])
    assert auth["security_protocol"] == "SSL" and isinstance(auth["ssl_context"], ssl.SSLContext)


def test_plaintext_by_default() -> None:
    settings = _settings()
    assert settings.kafka_client_kwargs() == {"security_protocol": "PLAINTEXT"}
    assert "broker_credentials" not in _faust_broker_settings(settings)
