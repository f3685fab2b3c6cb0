"""Default readers for a workspace, so ``kira ask`` answers out of the box.

``ensure_default_readers`` trains, once, an extractive reader (fine-tuned from the per-user
pretrained reader) and then a FiD reader from BERT2BERT over that reader's encoder
(``bert2bert:models/reader-extractive``) on questions generated from the workspace's own passages
(``kira.reader.generate``: any text, glosses, KB facts), KB templates and two-hop paths, and
caches them in ``models/reader-extractive`` and ``models/reader-fid``. Later calls return the
cached paths.

Budget: the extractive reader is pretrained once per user (``kira.reader.pretrain``, cached under
``~/.cache/kira``) and fine-tuned here for a fixed number of steps; FiD trains many cheap epochs
over cached frozen-encoder states. Wall-clock limits are only caps. Each artifact is written to a temporary directory and renamed into
place, so an interrupted run never leaves a half-written reader that would be taken as cached.
"""

from __future__ import annotations

import random
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from kira.artifacts import role_dir
from kira.errors import KiraError


def _ready(d: Path) -> bool:
    return (d / "kira.json").exists()


def _train_subprocess(questions: Path, kind: str, out: Path, base: str, k: int, max_length: int, lr: float,
                      max_seconds: float, n_questions: int, batch_size: int = 4, epochs: int = 1,
                      freeze_encoder: bool = False, copy_head: bool = False, max_steps: int | None = None,
                      heldout: Path | None = None, workspace: Path | None = None) -> dict[str, Any]:
    """Train in a fresh interpreter (``kira.isolated``) on passages retrieved beforehand; with
    ``workspace``, abstention is calibrated on ``heldout`` read over that workspace's retrieval."""
    from kira.isolated import run_kira_json

    return run_kira_json("kira.reader", [
        "train", "--questions", str(questions), "--kind", kind, "--base", base, "--out", str(out), "--k", str(k),
        "--max-length", str(max_length), "--lr", str(lr), "--batch-size", str(batch_size), "--epochs", str(epochs),
        "--max-seconds", str(max_seconds), "--max-questions", str(n_questions),
        "--calibrate-seconds", str(max_seconds / 5), "--json", *(["--freeze-encoder"] if freeze_encoder else []),
        *(["--copy-head"] if copy_head else []), *(["--max-steps", str(max_steps)] if max_steps else []),
        *(["--calibrate-questions", str(heldout)] if heldout else []),
        *(["--workspace", str(workspace)] if workspace and heldout else [])],
        f"training the default {kind} reader")


def _with_contexts(records: list[dict[str, Any]], evidences) -> list[dict[str, Any]]:
    """Records carrying their passages as ``contexts`` (what ``kira reader train`` reads)."""
    return [{**r, "contexts": [{"id": e.id, "title": e.title, "text": e.text} for e in evs]}
            for r, evs in zip(records, evidences, strict=True)]


def _multihop_contexts(cfg, store, kb: str, text_retriever, n: int, data_dir: Path,
                       log: Callable[[str], None] | None) -> list[dict[str, Any]]:
    """Train-split two-hop questions with their text + graph evidence (written for evaluation too)."""
    from kira.graph.expansion import GraphExpansionRetriever, TextPlusGraphRetriever
    from kira.graph.multihop import questions_from_store, split_by_start_entity
    from kira.jsonl import write_jsonl

    rows = questions_from_store(store, kb, max_questions=n, max_answers=2, max_per_pair=100, seed=0)
    if not rows:
        return []
    rows = split_by_start_entity(rows, 0.2, seed=0)
    write_jsonl(data_dir / f"{kb}-multihop-questions.jsonl", rows)
    train = [r for r in rows if r["split"] == "train"]
    if log:
        log(f"   {len(rows)} two-hop questions from {kb} ({len(train)} for training); expanding over the graph …")
    graph = GraphExpansionRetriever.from_config(cfg, store, encoder=None)  # token overlap: fast on CPU
    hits = TextPlusGraphRetriever(text_retriever, graph).batch_search([r["question"] for r in train], k=10)
    return _with_contexts(train, hits)


def _generated_contexts(store, n_questions: int, seed: int = 0, max_docs: int = 30_000,
                        log: Callable[[str], None] | None = None) -> tuple[list[dict], list[dict]]:
    """(train, heldout) questions generated from the workspace's passages (``kira.reader.generate``:
    text, glosses, KB facts, table rows), each with its own passage and hard negatives as contexts."""
    from kira.reader.generate import contexts_of, docs_from_store, generate, iter_records_stats

    docs = docs_from_store(store, max_docs=max_docs, seed=seed)
    if not docs:
        return [], []
    per = max(1, min(4, -(-int(n_questions * 1.3) // len(docs))))
    recs = generate(docs, per_passage=per, seed=seed, negatives=2, limit=int(n_questions * 1.3) + 50)
    if log:
        log(f"   generated {len(recs)} questions from {len(docs)} passages: {iter_records_stats(recs)}")
    recs = [dict(r, contexts=contexts_of(r)) for r in recs]
    return [r for r in recs if r["split"] == "train"], [r for r in recs if r["split"] == "heldout"]


def ensure_default_readers(cfg, store, kb: str | None = None, n_questions: int = 3000,
                           extractive_seconds: float = 270, fid_seconds: float = 330, force: bool = False,
                           kinds: tuple[str, ...] = ("extractive", "fid"), bases: dict[str, str] | None = None,
                           multihop: int = 1000, log: Callable[[str], None] | None = print,
                           finetune_steps: int | None = None, pretrain: bool = True,
                           unseen: Sequence[str] = ()) -> dict[str, Any]:
    """Paths of the workspace's default readers, training the missing ones first.

    Recipe (gen-2): the extractive reader starts from the per-user pretrained reader
    (``kira.reader.pretrain``: WordNet-generated questions, trained once and cached under
    ``~/.cache/kira``; trained now when missing) and is fine-tuned for ``finetune_steps`` steps
    (default ``n_questions / 16``, at most 120) on questions generated from *this workspace's*
    passages (``kira.reader.generate``), plus KB-template and two-hop questions when the store has
    a KB. Abstention is calibrated on held-out generated questions read as ``kira ask`` reads
    (the workspace's retrieval, the reader's default k). FiD is BERT2BERT over the
    fine-tuned extractive encoder, trained on the same questions. ``extractive_seconds`` and
    ``fid_seconds`` are wall-clock *caps* (a far-too-slow machine stops early, with a warning);
    the budgets are step counts. ``bases`` (tests, experiments) skips pretraining for the kinds it names.
    ``unseen``: questions that must not be trained on (the demo's showcase): generated questions equal to
    one of them, up to case, punctuation and articles, are dropped (``kira.reader.generate.decontaminate``)."""

    dirs = {kind: role_dir(cfg.models_dir, f"reader-{kind}") for kind in kinds}
    todo = [kind for kind, d in dirs.items() if force or not _ready(d)]
    info: dict[str, Any] = {"paths": {k: str(d) for k, d in dirs.items()}, "trained": todo}
    if not todo:
        return info
    from kira.reader.generate import decontaminate
    from kira.reader.questions import questions_from_kb, write_questions
    from kira.reader.train import attach_passages
    from kira.retriever import open_retrievers, resolve_version

    bases = dict(bases or {})
    data_dir = role_dir(cfg.models_dir, "reader-data")
    if "extractive" in todo and "extractive" not in bases and pretrain:
        from kira.reader.pretrain import ensure_pretrained

        bases["extractive"] = str(ensure_pretrained(log=log, max_seconds=max(3 * extractive_seconds, 3600)))
        info["pretrained"] = bases["extractive"]
    train_recs, held = _generated_contexts(store, n_questions, log=log)
    kbs = store.list_kbs()
    kb = kb or ("wordnet" if "wordnet" in kbs else (kbs[0] if kbs else None))
    rows = list(train_recs)
    if kb is not None:
        kb_recs = questions_from_kb(store, kb, limit=n_questions // 3)
        if kb_recs:
            version = resolve_version(cfg.indexes_dir)
            retriever = open_retrievers(version, cfg)["bm25"]  # lexical: fast on CPU, good for entity names
            kb_train = [r for r in kb_recs if r.get("split") != "heldout"]
            rows += _with_contexts(kb_train, attach_passages(kb_train, retriever, k=3))
            if multihop:
                rows += _multihop_contexts(cfg, store, kb, retriever, min(multihop, n_questions // 5), data_dir, log)
            close = getattr(retriever, "close", None)
            if callable(close):
                close()
    if not rows:
        raise KiraError("the store has no passages to generate reader training questions from")
    rows, dropped = decontaminate(rows, unseen)
    held, _ = decontaminate(held, unseen)  # abstention is fitted on these: not on a showcase question either
    if dropped and log:
        log(f"   dropped {dropped} generated questions equal to a showcase question")
    random.Random(0).shuffle(rows)
    ctx_file = data_dir / "train-contexts.jsonl"
    write_questions(rows, ctx_file)
    held_file = data_dir / "heldout-generated.jsonl"
    write_questions([dict(r, split="heldout") for r in held], held_file)
    info["questions"] = str(ctx_file)
    info["heldout_questions"] = str(held_file)
    steps = finetune_steps if finetune_steps is not None else max(10, min(120, n_questions // 16))
    plans = {
        "extractive": dict(base="minilm-l6", k=3, max_length=128, lr=5e-5, max_seconds=extractive_seconds * 3,
                           batch_size=16, max_steps=steps),
        # FiD on a CPU budget (bench/regressions/fid_k.yaml): BERT2BERT from the extractive reader's
        # QA-tuned encoder when there is one (its states already mark answers; it stays frozen, so
        # they are computed once), a warm-started decoder trained for as many epochs as the budget
        # allows, and a copy head so that answers about unseen entities are copied, not spelled.
        "fid": dict(base=None, k=3, max_length=96, lr=3e-4, max_seconds=fid_seconds,
                    batch_size=8, epochs=30, freeze_encoder=True, copy_head=True),
    }
    for kind, spec in bases.items():
        if kind in plans:
            plans[kind]["base"] = spec
    info["summaries"] = {}
    for kind in todo:
        final = dirs[kind]
        tmp = final.with_name(final.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        p = plans[kind]
        if kind == "fid" and p["base"] is None:
            extractive = role_dir(cfg.models_dir, "reader-extractive")
            p["base"] = f"bert2bert:{extractive}" if _ready(extractive) else "bert2bert:minilm-l6"
        if log:
            log(f"training default {kind} reader on {len(rows)} generated questions ({ctx_file.name}) from "
                f"{p['base']} …")
        summary = _train_subprocess(ctx_file, kind, tmp, n_questions=n_questions, heldout=held_file,
                                    workspace=cfg.workspace, **p)
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        info["summaries"][kind] = summary | {"path": str(final)}
        if log:
            log(f"{kind} reader: {summary['steps']} steps in {summary['seconds']:.0f}s → {final}")
    return info
