"""Structured enrichment, pure functions (no Kafka): entities linked to a
gazetteer, quotes and speakers, times, IPTC topics, regions, urgency.

Entry point: :func:`newsstream.enrich.pipeline.enrich_fields`. Models and
lexicons live in ``data/`` (each with a model card) and are rebuilt with
``python tools/build_models.py all``.
"""
