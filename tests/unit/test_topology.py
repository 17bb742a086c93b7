"""The worker's internal topics as ``topics create`` makes them are the ones faust uses (issue 15, item 7).

faust names changelog topics ``<app_id>-<table>-changelog`` and compacts them;
if an upgrade changes that, the worker would read topics nobody created, so
these compare :mod:`newsstream.worker.topology` with what faust builds.
"""

from __future__ import annotations

from newsstream.contract.topics import topic_specs
from newsstream.platform.kafka import new_topics
from newsstream.platform.settings import Settings
from newsstream.worker.app import build_app
from newsstream.worker.topology import every_topic_spec, worker_topic_specs


def _faust_topics(settings: Settings) -> dict[str, tuple[int, dict[str, str]]]:
    """name -> (partitions, cleanup config) of every internal topic and changelog faust would declare."""
    app = build_app(settings)
    found: dict[str, tuple[int, dict[str, str]]] = {}
    for table in app.tables.values():
        topic = table.changelog_topic
        config = {"cleanup.policy": "compact"} if topic.compacting else {}
        assert not topic.retention and not topic.deleting and topic.internal
        found[topic.get_topic_name()] = (topic.partitions, config)
    for agent in app.agents.values():
        if agent.channel.internal:
            (name,) = agent.channel.topics
            found[name] = (agent.channel.partitions, {})
    leader = app._leader_assignor._leader_topic  # faust's leader election topic
    found[leader.get_topic_name()] = (leader.partitions, {})
    return found


def test_topics_create_makes_exactly_the_internal_topics_faust_uses() -> None:
    settings = Settings(kafka_bootstrap_servers="127.0.0.1:1", partitions=6, worker_app_id="news-w")
    specs = {s.name: (s.partitions, s.config) for s in worker_topic_specs(settings)}
    assert specs == _faust_topics(settings)
    assert "news-w-dedup-first-seen-changelog" in specs and specs["news-w-by-content"][0] == 6


def test_faust_never_creates_topics_itself() -> None:
    """A worker without CreateTopics rights runs once `topics create` made every topic."""
    assert build_app(Settings(kafka_bootstrap_servers="127.0.0.1:1")).conf.topic_allow_declare is False


def test_replicated_topics_get_min_insync_replicas() -> None:
    specs = every_topic_spec(Settings())
    assert len(specs) == len(topic_specs(4)) + len(worker_topic_specs(Settings()))
    for settings, expected in ((Settings(replication_factor=3), "2"), (Settings(replication_factor=3, min_insync_replicas=3), "3")):
        for topic in new_topics(specs, settings):
            assert topic.replication_factor == 3 and topic.topic_configs["min.insync.replicas"] == expected, topic.name
    changelog = next(t for t in new_topics(specs, Settings(replication_factor=3)) if t.name.endswith("-changelog"))
    assert changelog.topic_configs == {"cleanup.policy": "compact", "min.insync.replicas": "2"}
    assert all("min.insync.replicas" not in t.topic_configs for t in new_topics(specs, Settings()))
