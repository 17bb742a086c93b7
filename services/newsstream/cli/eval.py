"""``newsstream eval``: quality figures on labelled data, offline.

Every command prints a readable table on stderr and, as the last line of
stdout, one JSON object. The scoring lives in :mod:`newsstream.evaluation`.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from newsstream.dedup.neardup import NearDupConfig
from newsstream.dedup.stories import StoryConfig
from newsstream.dedup.threads import ThreadConfig
from newsstream.evaluation.enrichment import eval_entities, eval_topics
from newsstream.evaluation.stories import eval_pairs, eval_stream
from newsstream.evaluation.stream_replay import PipelineConfig
from newsstream.platform.settings import load_settings

eval_app = typer.Typer(help="Measure quality on labelled data (offline).", no_args_is_help=True)

Embeddings = Annotated[bool, typer.Option("--embeddings/--no-embeddings",
                                          help="Stage 3 with sentence vectors, as the worker runs by default (NEWSSTREAM_EMBEDDINGS).")]


def _emit(result: dict[str, Any]) -> None:
    sys.stdout.buffer.write(orjson.dumps(result) + b"\n")
    sys.stdout.flush()


def _table(rows: Iterable[tuple[str, dict[str, Any]]]) -> None:
    print(f"{'lang':8} {'n':>5} {'pearson':>8} {'f1':>6} {'prec':>6} {'rec':>6} {'same':>5}", file=sys.stderr)
    for lang, s in rows:
        print(
            f"{lang:8} {s['n']:>5} {s['pearson'] if s['pearson'] is not None else 'n/a':>8} {s['f1']:>6} "
            f"{s['precision']:>6} {s['recall']:>6} {s['same_story_pairs']:>5}",
            file=sys.stderr,
        )


def _type_table(res: dict, key: str) -> None:
    for name, m in res[key].items():
        print(f"{name:>18}  P {m['precision']:.3f}  R {m['recall']:.3f}  F1 {m['f1']:.3f}  n {m['support']}", file=sys.stderr)


@eval_app.command("pairs")
def pairs(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="JSONL with text, text_pair, label (1 = same story .. 4).")],
    story_threshold: Annotated[float | None, typer.Option(help="Story similarity threshold (default: the pipeline's).")] = None,
    near_threshold: Annotated[float | None, typer.Option(help="Near-duplicate Jaccard threshold (default: the pipeline's).")] = None,
    backend: Annotated[str, typer.Option(help="MinHash library: rensa or datasketch.")] = "rensa",
    embeddings: Embeddings = True,
) -> None:
    """Similarity vs human scores: Pearson, F1 for "same story" (gold <= 2) at the pipeline's threshold, per language."""
    story = StoryConfig()
    if story_threshold is not None:
        story = replace(story, **{"vector_threshold" if embeddings else "threshold": story_threshold})
    near = NearDupConfig(backend=backend) if near_threshold is None else NearDupConfig(threshold=near_threshold, backend=backend)
    result = eval_pairs(str(file), story, near, embeddings=embeddings)
    _table([("all", result), *result["languages"].items()])
    _emit(result)


@eval_app.command("stream")
def stream(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Time-ordered JSONL of raw events or ANT-style articles.")],
    near_threshold: Annotated[float, typer.Option(help="Near-duplicate Jaccard threshold.")] = NearDupConfig.threshold,
    near_window_hours: Annotated[float, typer.Option(help="Near-duplicate window (hours).")] = NearDupConfig.window_s / 3600,
    story_threshold: Annotated[float, typer.Option(help="Story similarity threshold.")] = StoryConfig.threshold,
    story_window_hours: Annotated[float, typer.Option(help="A story takes members while active within this many hours.")] = StoryConfig.window_s / 3600,
    backend: Annotated[str, typer.Option(help="MinHash library: rensa or datasketch.")] = "rensa",
    sample: Annotated[int, typer.Option(help="Multi-source stories to include in the output (largest first).")] = 10,
    ticker_interval_minutes: Annotated[
        float | None,
        typer.Option(help="Read records that are not raw events as ticker posts ('عاجل | who: what'), this many minutes apart when they carry no time."),
    ] = None,
    embeddings: Embeddings = True,
    vector_threshold: Annotated[float, typer.Option(help="Same-story probability an item needs to join a story (with embeddings).")] = StoryConfig.vector_threshold,
) -> None:
    """Replay a stream through the worker's functions: duplicates, stories, precision/recall vs exact_dup_group."""
    config = PipelineConfig(
        near=NearDupConfig(threshold=near_threshold, window_s=near_window_hours * 3600, backend=backend),
        threads=ThreadConfig(),
        stories=StoryConfig(threshold=story_threshold, window_s=story_window_hours * 3600, vector_threshold=vector_threshold),
        embeddings=embeddings,
        structured=load_settings().enrich_structured,  # as the worker enriches
        ner_context_tokens=load_settings().ner_context_tokens,
    )
    interval = None if ticker_interval_minutes is None else ticker_interval_minutes * 60
    result = eval_stream(str(file), config, sample, interval)
    for story in result["sample"]:
        print(f"\n[{story['story_id']}] {story['headline']}  ({', '.join(story['sources'])})", file=sys.stderr)
        for m in story["members"]:
            print(f"   {m['joined_by']:10} {m['similarity']:.2f} {m['source']:18} {m['title']}", file=sys.stderr)
    _emit(result)


@eval_app.command("topics")
def topics_cmd(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="JSONL with title, text, iptc.")],
    embeddings: Annotated[bool | None, typer.Option(
        "--embeddings/--no-embeddings",
        help="Read each article's vector too, as the worker does with embeddings on "
             "(default: NEWSSTREAM_EMBEDDINGS; about 0.1 s an article).")] = None,
) -> None:
    """IPTC topic classifier: macro-F1 and accuracy (last line: JSON)."""
    if embeddings is None:
        embeddings = load_settings().embeddings
    try:
        res = eval_topics(file, embeddings=embeddings)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    _type_table(res, "per_class")
    print(f"macro-F1 {res['macro_f1']:.4f}  accuracy {res['accuracy']:.4f}  n {res['n']}", file=sys.stderr)
    sys.stdout.write(orjson.dumps(res).decode() + "\n")

@eval_app.command("entities")
def entities_cmd(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="JSONL with tokens and BIO tags.")],
    model_only: Annotated[bool, typer.Option("--model-only", help="Tagger alone, without gazetteer names and roles.")] = False,
    document_sentences: Annotated[int | None, typer.Option(
        "--document-sentences", min=1,
        help="Consecutive lines per document (name propagation works within a document; 1: every line "
             "on its own). Default: lines up to 6,000 characters, as the pipeline tags one article; "
             "ignored when rows have a 'doc' field.")] = None,
    context_tokens: Annotated[int | None, typer.Option(
        "--context-tokens", min=0,
        help="Encoder tokens of each document the tagger reads in context. Default: as the worker "
             "(NEWSSTREAM_NER_CONTEXT_TOKENS with embeddings on, else 0).")] = None,
) -> None:
    """Entity tagger: exact-match span P/R/F1 over PERS, LOC, ORG (last line: JSON)."""
    if context_tokens is None:
        settings = load_settings()
        context_tokens = settings.ner_context_tokens if settings.embeddings else 0
    try:
        res = eval_entities(file, gazetteer=not model_only, document_sentences=document_sentences,
                            context_tokens=context_tokens)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    _type_table(res, "per_type")
    print(f"P {res['precision']:.4f}  R {res['recall']:.4f}  F1 {res['f1']:.4f}  n {res['n']}", file=sys.stderr)
    sys.stdout.write(orjson.dumps(res).decode() + "\n")
