"""Default readers for a workspace, so ``kira ask`` answers out of the box.

``ensure_default_readers`` trains, once, an extractive reader from ``minilm-l6`` and a FiD reader
from ``bert2bert:minilm-l6`` on questions generated from the workspace's KB (the demo's WordNet),
with passages from the current index's BM25 retriever, and caches them in
``models/reader-extractive`` and ``models/reader-fid``. Later calls return the cached paths.

Budget: the demo's whole first run must stay under 20 minutes on 2 CPU cores, so training is
bounded by wall time (``max_seconds`` per reader) as well as by question count, with short
sequences and one epoch. Each artifact is written to a temporary directory and renamed into
place, so an interrupted run never leaves a half-written reader that would be taken as cached.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kira.errors import KiraError


def _ready(d: Path) -> bool:
    return (d / "kira.json").exists()


def ensure_default_readers(cfg, store, kb: str | None = None, n_questions: int = 3000,
                           extractive_seconds: float = 300, fid_seconds: float = 360, force: bool = False,
                           kinds: tuple[str, ...] = ("extractive", "fid"),
                           log: Callable[[str], None] | None = print) -> dict[str, Any]:
    """Paths of the workspace's default readers, training the missing ones first."""
    from kira.pipeline import default_reader_dir

    dirs = {kind: default_reader_dir(cfg, kind) for kind in kinds}
    todo = [kind for kind, d in dirs.items() if force or not _ready(d)]
    info: dict[str, Any] = {"paths": {k: str(d) for k, d in dirs.items()}, "trained": todo}
    if not todo:
        return info
    from kira.reader.questions import questions_from_kb, write_questions
    from kira.reader.train import TrainOptions, train_reader
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
    plans = {
        "extractive": TrainOptions(kind="extractive", base="minilm-l6", n_passages=3, max_length=128, batch_size=4,
                                   lr=5e-5, max_questions=n_questions, max_seconds=extractive_seconds,
                                   retrieve_k=10, device=cfg.device, bf16=cfg.bf16,
                                   calibrate_seconds=extractive_seconds / 5, log=log),
        "fid": TrainOptions(kind="fid", base="bert2bert:minilm-l6", n_passages=5, max_length=96, batch_size=4,
                            lr=1e-4, max_questions=n_questions, max_seconds=fid_seconds, device=cfg.device,
                            bf16=cfg.bf16, calibrate_seconds=fid_seconds / 5, log=log),
    }
    info["summaries"] = {}
    for kind in todo:
        final = dirs[kind]
        tmp = final.with_name(final.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        if log:
            log(f"training default {kind} reader on {len(records)} synthetic {kb} questions (budget "
                f"{plans[kind].max_seconds:.0f}s) …")
        res = train_reader(records, plans[kind], retriever=retriever, out=tmp,
                           extra={"default_reader": True, "kb": kb, "index_version": version.name,
                                  "synthetic_training_data": True})
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        info["summaries"][kind] = res.summary() | {"path": str(final)}
        if log:
            log(f"{kind} reader: {res.steps} steps in {res.seconds:.0f}s → {final}")
    return info
