"""Retrieval evaluation: DPR's top-k answer accuracy for several retrievers side by side.

A question counts as answered at k when any of its answers (SQuAD-normalised) occurs in the
normalised text of one of the top-k retrieved passages (Karpukhin et al. 2020, Table 2).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from kira.errors import IngestError, KiraError
from kira.jsonl import iter_jsonl
from kira.retriever.text import has_answer, normalize_answer
from kira.schema import Evidence


def load_questions(path: str | os.PathLike, require_answers: bool = True) -> list[dict[str, Any]]:
    """Rows ``{"question": str, "answers": [str, …], …}`` of a JSONL file; other keys are kept.

    A malformed row raises ``IngestError`` naming file, line and field.
    """
    p = Path(path)
    rows = []
    for lineno, row in iter_jsonl(p):
        q = row.get("question")
        if not isinstance(q, str) or not q.strip():
            raise IngestError(str(p), lineno, "question", "must be a non-empty string")
        answers = row.get("answers")
        if answers is None and not require_answers:
            answers = []
        if isinstance(answers, str):
            answers = [answers]
        if not isinstance(answers, list) or not all(isinstance(a, str) for a in answers):
            raise IngestError(str(p), lineno, "answers", "must be a list of strings")
        if require_answers and not any(normalize_answer(a) for a in answers):
            raise IngestError(str(p), lineno, "answers", "needs at least one non-empty answer")
        row["answers"] = answers
        row["_line"] = lineno
        rows.append(row)
    if not rows:
        raise IngestError(str(p), None, None, "no questions in file")
    return rows


def first_hit_rank(hits: Sequence[Evidence], answers: Sequence[str]) -> int | None:
    """1-based rank of the first passage containing an answer, None if none does."""
    for r, h in enumerate(hits, start=1):
        if has_answer(answers, h.text):
            return r
    return None


def top_k_accuracy(results: Iterable[Sequence[Evidence]], answers: Sequence[Sequence[str]],
                   ks: Sequence[int]) -> dict[str, float]:
    """``{"top1": …, "top5": …}``: fraction of questions with an answer-bearing passage in the top k."""
    ranks = [first_hit_rank(hits, ans) for hits, ans in zip(results, answers, strict=True)]
    n = len(ranks)
    return {f"top{k}": (sum(1 for r in ranks if r is not None and r <= k) / n if n else 0.0) for k in ks}


def parse_ks(spec: str | Sequence[int]) -> list[int]:
    """``"1,5,20,100"`` → [1, 5, 20, 100] (sorted, unique, positive)."""
    vals = [int(x) for x in spec.split(",") if x.strip()] if isinstance(spec, str) else [int(x) for x in spec]
    if not vals or any(v <= 0 for v in vals):
        raise KiraError(f"--k must be positive integers like 1,5,20,100, got {spec!r}")
    return sorted(set(vals))


def evaluate_retrieval(retrievers: dict[str, Any], questions: Sequence[dict[str, Any]],
                       ks: Sequence[int] = (1, 5, 20, 100), chunk: int = 256) -> dict[str, Any]:
    """``{"n": N, name: {"top1": …}, …}`` for each retriever, searched to max(ks) in batches."""
    kmax = max(ks)
    texts = [q["question"] for q in questions]
    answers = [q["answers"] for q in questions]
    out: dict[str, Any] = {"n": len(questions)}
    for name, retriever in retrievers.items():
        ranks: list[int | None] = []
        for start in range(0, len(texts), chunk):
            qs = texts[start:start + chunk]
            res = retriever.batch_search(qs, kmax)
            ranks.extend(first_hit_rank(h, a) for h, a in zip(res, answers[start:start + chunk], strict=True))
        n = len(ranks)
        out[name] = {f"top{k}": sum(1 for r in ranks if r is not None and r <= k) / n for k in ks}
    return out
