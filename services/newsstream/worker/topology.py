"""The worker's internal topics, named and configured as faust would make them.

``newsstream topics create`` creates them ahead of the worker (so a worker
without CreateTopics rights can run), and every worker checks at start-up
that they have the partitions the settings say. The names follow faust 0.15
(``Collection._changelog_topic_name``, ``LeaderAssignor._leader_topic_name``);
``tests/unit/test_topology.py`` compares them with what faust builds, so a
faust upgrade that renames a topic fails there first.

Partitions: the by-content topic and the dedup table's changelog have
``NEWSSTREAM_PARTITIONS`` (a content hash's table entry lives on the
partition number of its envelopes); stage 3's input and tables have one
partition (one ordered input, one writer).
"""

from __future__ import annotations

from newsstream.contract.topics import TopicSpec, topic_specs
from newsstream.dedup.placement import CHANGELOGGED_TABLES
from newsstream.platform.settings import Settings

BY_CONTENT = "by-content"  # stage 1 -> stage 2, partitioned by content hash
PLACEMENT = "placement"  # stage 2 -> stage 3, one partition
DEDUP_TABLE = "dedup-first-seen"
PLACEMENT_TABLES = {name: f"placement-{name.replace('_', '-')}" for name in CHANGELOGGED_TABLES}

# faust's changelog topics are compacted (Collection._changelog_compacting) and carry no retention.
CHANGELOG_CONFIG = {"cleanup.policy": "compact"}


def internal_topic(app_id: str, suffix: str) -> str:
    return f"{app_id}-{suffix}"


def changelog_topic(app_id: str, table: str) -> str:
    return f"{app_id}-{table}-changelog"


def leader_topic(app_id: str) -> str:
    """faust's leader election topic (one partition)."""
    return f"{app_id}-__assignor-__leader"


def worker_topic_specs(settings: Settings) -> list[TopicSpec]:
    """Every topic the worker reads or writes besides the public ones."""
    app_id, partitions = settings.worker_app_id, settings.partitions
    return [
        TopicSpec(internal_topic(app_id, BY_CONTENT), partitions, {}),
        TopicSpec(internal_topic(app_id, PLACEMENT), 1, {}),
        TopicSpec(changelog_topic(app_id, DEDUP_TABLE), partitions, CHANGELOG_CONFIG),
        *(TopicSpec(changelog_topic(app_id, table), 1, CHANGELOG_CONFIG) for table in PLACEMENT_TABLES.values()),
        TopicSpec(leader_topic(app_id), 1, {}),
    ]


def every_topic_spec(settings: Settings) -> list[TopicSpec]:
    """The public topics and the worker's: what ``topics create`` makes and the worker checks."""
    return [*topic_specs(settings.partitions), *worker_topic_specs(settings)]
