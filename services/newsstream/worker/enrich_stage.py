"""Stage 1 of the worker: validate and enrich raw events, ship them by content to stage 2.

Stateless, so it scales with the raw topics' partitions. Items go out in
envelopes (:mod:`newsstream.worker.envelope`), one message per by-content
partition per batch: stage 2 pays faust's per-event cost once per envelope.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from newsstream.contract import wire
from newsstream.dedup.exact import dedup_key, partition_for
from newsstream.dedup.placement import event_time
from newsstream.enrich.item import enrich_batch
from newsstream.platform import metrics
from newsstream.worker.delivery import SERVICE, Output
from newsstream.worker.envelope import EnvelopeBuilder, Origin


class EnrichStage:
    def __init__(self, output: Output, by_content_topic: str, partitions: int, *, structured: bool = True,
                 embeddings: bool = False, article_tokens: int = 128, ner_context_tokens: int = 0) -> None:
        self.output = output
        self.by_content_topic = by_content_topic
        self.partitions = partitions
        self.structured = structured  # NEWSSTREAM_ENRICH_STRUCTURED
        self.embeddings = embeddings  # NEWSSTREAM_EMBEDDINGS
        self.article_tokens = article_tokens
        self.ner_context_tokens = ner_context_tokens  # NEWSSTREAM_NER_CONTEXT_TOKENS (read with embeddings on)

    async def handle(self, events: Sequence[Any]) -> None:
        """One batch of faust events from the raw topics."""
        started = time.perf_counter()
        now = wire.utcnow()
        parsed = []
        for event in events:
            msg = event.message
            metrics.ITEMS_IN.labels(SERVICE, msg.topic).inc()
            try:
                parsed.append((msg, wire.loads_raw(msg.value)))
            except Exception as exc:  # bad input must never stop the worker
                await self._dead_letter(msg, exc)
        # One batched encoder pass for the whole batch (vectors and the tagger's
        # context): per item it would cost several times more.
        results = enrich_batch([raw for _, raw in parsed], now, structured=self.structured, embeddings=self.embeddings,
                               article_tokens=self.article_tokens, ner_context_tokens=self.ner_context_tokens)
        envelopes = EnvelopeBuilder()
        for (msg, _), enriched in zip(parsed, results):
            if isinstance(enriched, Exception):
                await self._dead_letter(msg, enriched)
                continue
            try:
                metrics.ENRICHED.labels(enriched.kind, enriched.enrichment.language).inc()
                content_key = dedup_key(enriched)
                envelopes.add(
                    partition_for(content_key, self.partitions),
                    content_key, enriched.id, enriched.kind, wire.dumps(enriched), event_time=event_time(enriched.raw),
                    origin=Origin(msg.topic, msg.partition, msg.offset),
                )
            except Exception as exc:  # too big for an envelope, say: this item only
                await self._dead_letter(msg, exc)
        for partition, envelope in envelopes.drain():
            await self.output.send(self.by_content_topic, None, envelope, partition)
        metrics.PROCESSING_SECONDS.labels(SERVICE, "enrich").observe(time.perf_counter() - started)

    async def _dead_letter(self, msg: Any, exc: BaseException) -> None:
        key = msg.key.decode("utf-8", "replace") if isinstance(msg.key, bytes) else None
        await self.output.dead_letter(msg.topic, msg.partition, msg.offset, msg.value, exc, key)
