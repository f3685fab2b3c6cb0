"""Default readers for a workspace, so ``kira ask`` answers out of the box.

``ensure_default_readers`` trains, once, an extractive reader from ``minilm-l6`` and then a FiD
reader from BERT2BERT over that reader's encoder (``bert2bert:models/reader-extractive``) on
questions generated from the workspace's KB (the demo's WordNet), single- and two-hop, with
passages from the current index's BM25 retriever (plus graph expansion for the two-hop ones), and
caches them in ``models/reader-extractive`` and ``models/reader-fid``. Later calls return the
cached paths.

Budget: training is bounded by wall time (``max_seconds`` per reader) as well as by question
count, with short sequences: one epoch for the extractive reader, many cheap epochs over cached
frozen-encoder states for FiD. Each artifact is written to a temporary directory and renamed into
place, so an interrupted run never leaves a half-written reader that would be taken as cached.
"""

from __future__ import annotations

import random
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kira.errors import KiraError


def _ready(d: Path) -> bool:
    return (d / "kira.json").exists()


def _train_subprocess(questions: Path, kind: str, out: Path, base: str, k: int, max_length: int, lr: float,
                      max_seconds: float, n_questions: int, batch_size: int = 4, epochs: int = 1,
                      freeze_encoder: bool = False, copy_head: bool = False) -> dict[str, Any]:
    """Train in a fresh interpreter (``kira.isolated``) on passages retrieved beforehand."""
    from kira.isolated import run_kira_json

    return run_kira_json("kira.reader", [
        "train", "--questions", str(questions), "--kind", kind, "--base", base, "--out", str(out), "--k", str(k),
        "--max-length", str(max_length), "--lr", str(lr), "--batch-size", str(batch_size), "--epochs", str(epochs),
        "--max-seconds", str(max_seconds), "--max-questions", str(n_questions),
        "--calibrate-seconds", str(max_seconds / 5), "--json", *(["--freeze-encoder"] if freeze_encoder else []),
        *(["--copy-head"] if copy_head else [])],
        f"training the default {kind} reader")


def _with_contexts(records: list[dict[str, Any]], evidences) -> list[dict[str, Any]]:
    """Records carrying their passages as ``contexts`` (what ``kira reader train`` reads)."""
    return [{**r, "contexts": [{"id": e.id, "title": e.title, "text": e.text} for e in evs]}
            for r, evs in zip(records, evidences, strict=True)]


def _multihop_contexts(cfg, store, kb: str, text_retriever, n: int, data_dir: Path,
                       log: Callable[[str], None] | None) -> list[dict[str, Any]]:
    """Train-split two-hop questions with their text + graph evidence (written for evaluation too)."""
    from kira.graph.expansion import GraphExpansionRetriever, TextPlusGraphRetriever
    from kira.graph.multihop import questions_from_store, split_by_start_entity, write_jsonl

    rows = questions_from_store(store, kb, max_questions=n, max_answers=2, max_per_pair=100, seed=0)
    if not rows:
        return []
    rows = split_by_start_entity(rows, 0.2, seed=0)
    write_jsonl(rows, data_dir / f"{kb}-multihop-questions.jsonl")
    train = [r for r in rows if r["split"] == "train"]
    if log:
        log(f"   {len(rows)} two-hop questions from {kb} ({len(train)} for training); expanding over the graph …")
    graph = GraphExpansionRetriever.from_config(cfg, store, encoder=None)  # token overlap: fast on CPU
    hits = TextPlusGraphRetriever(text_retriever, graph).batch_search([r["question"] for r in train], k=10)
    return _with_contexts(train, hits)


def ensure_default_readers(cfg, store, kb: str | None = None, n_questions: int = 3000,
                           extractive_seconds: float = 270, fid_seconds: float = 330, force: bool = False,
                           kinds: tuple[str, ...] = ("extractive", "fid"), bases: dict[str, str] | None = None,
                           multihop: int = 1000, log: Callable[[str], None] | None = print) -> dict[str, Any]:
    """Paths of the workspace's default readers, training the missing ones first.

    Both readers also learn from up to ``multihop`` two-relation-path questions
    (``kira.graph.multihop``, 20% of start entities held out) read over text + graph-expansion
    evidence, so ``kira eval qa --graph`` and ``kira ask`` can answer multi-hop questions."""
    from kira.pipeline import default_reader_dir

    dirs = {kind: default_reader_dir(cfg, kind) for kind in kinds}
    todo = [kind for kind, d in dirs.items() if force or not _ready(d)]
    info: dict[str, Any] = {"paths": {k: str(d) for k, d in dirs.items()}, "trained": todo}
    if not todo:
        return info
    from kira.reader.questions import questions_from_kb, write_questions
    from kira.reader.train import attach_passages
    from kira.retriever import open_retrievers, resolve_version

    kbs = store.list_kbs()
    kb = kb or ("wordnet" if "wordnet" in kbs else (kbs[0] if kbs else None))
    if kb is None:
        raise KiraError("no KB in the store to generate reader training questions from; add one (kira kb add)")
    records = questions_from_kb(store, kb, limit=n_questions + n_questions // 5)
    if not records:
        raise KiraError(f"KB {kb!r} yielded no questions")
    data_dir = Path(cfg.models_dir) / "reader-data"
    write_questions(records, data_dir / f"{kb}-questions.jsonl")
    info["questions"] = str(data_dir / f"{kb}-questions.jsonl")
    version = resolve_version(cfg.indexes_dir)
    retriever = open_retrievers(version, cfg)["bm25"]  # lexical: fast on CPU, good for entity names
    train_recs = [r for r in records if r.get("split") != "heldout"]
    evidences = attach_passages(train_recs, retriever, k=10)
    ctx_file = data_dir / f"{kb}-train-contexts.jsonl"
    ctx_rows = _with_contexts(train_recs, evidences)
    write_questions(ctx_rows, ctx_file)
    files = dict.fromkeys(todo, ctx_file)
    if multihop:
        mh = _multihop_contexts(cfg, store, kb, retriever, multihop, data_dir, log)
        if mh:
            mixed = data_dir / f"{kb}-train-contexts-with-multihop.jsonl"
            rows = [*ctx_rows[:max(n_questions - len(mh), n_questions // 2)], *mh]
            random.Random(0).shuffle(rows)
            write_questions(rows, mixed)
            files = dict.fromkeys(todo, mixed)
            info["multihop_questions"] = str(data_dir / f"{kb}-multihop-questions.jsonl")
    close = getattr(retriever, "close", None)
    if callable(close):
        close()
    plans = {
        "extractive": dict(base="minilm-l6", k=3, max_length=128, lr=1e-4, max_seconds=extractive_seconds),
        # FiD on a CPU budget (bench/regressions/fid_k.yaml): BERT2BERT from the extractive reader's
        # QA-tuned encoder when there is one (its states already mark answers; it stays frozen, so
        # they are computed once), a warm-started decoder trained for as many epochs as the budget
        # allows, and a copy head so that answers about unseen entities are copied, not spelled.
        "fid": dict(base=None, k=10, max_length=96, lr=3e-4, max_seconds=fid_seconds,
                    batch_size=8, epochs=30, freeze_encoder=True, copy_head=True),
    }
    for kind, spec in (bases or {}).items():
        plans[kind]["base"] = spec
    info["summaries"] = {}
    for kind in todo:
        final = dirs[kind]
        tmp = final.with_name(final.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        p = plans[kind]
        if kind == "fid" and p["base"] is None:
            extractive = default_reader_dir(cfg, "extractive")
            p["base"] = f"bert2bert:{extractive}" if _ready(extractive) else "bert2bert:minilm-l6"
        if log:
            log(f"training default {kind} reader on the synthetic {kb} questions of {files[kind].name} (budget "
                f"{p['max_seconds']:.0f}s) …")
        summary = _train_subprocess(files[kind], kind, tmp, n_questions=n_questions, **p)
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        info["summaries"][kind] = summary | {"path": str(final)}
        if log:
            log(f"{kind} reader: {summary['steps']} steps in {summary['seconds']:.0f}s → {final}")
    return info
