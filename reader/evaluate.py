"""QA evaluation: SQuAD EM / token F1 (max over gold answers) for extractive and FiD side by side.

Retrieval top-k accuracy is recorded alongside (same passages the readers read), and two
answer-free baselines are measured in the same run, so a reader's number means something:
the retriever's top-1 passage *title*, and the *most frequent entity mention in the top passage*
(capitalised phrases and the objects listed in verbalized KB passages, minus what the question
already names). EM/F1/has_answer are ``kira.retriever.text``'s, shared with retrieval eval.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from kira.retriever.text import exact_match, f1_score, has_answer, normalize_answer
from kira.schema import Evidence

_CAPS = re.compile(r"\b[A-Z][\w'-]*(?:\s+(?:of\s+|de\s+)?[A-Z][\w'-]*)*")
_LISTED = re.compile(r"[a-z][a-z ]*: ([^.:]+?)(?=, [a-z][a-z ]*:|\.|$)")


def entity_mentions(text: str) -> list[str]:
    """Entity-like mentions: capitalised phrases and ``relation: object`` items of KB passages."""
    out = [m.group(0) for m in _CAPS.finditer(text)]
    for m in _LISTED.finditer(text):
        out.extend(x.strip() for x in m.group(1).split(";") if x.strip())
    return out


def most_frequent_entity(question: str, evidence: Sequence[Evidence]) -> str:
    """The answer-free baseline: the most frequent mention in the top passage not named in the question."""
    if not evidence:
        return ""
    top = evidence[0]
    q = set(normalize_answer(question).split())
    title = normalize_answer(top.title or "")
    counts: Counter[str] = Counter()
    first: dict[str, str] = {}
    for m in entity_mentions(top.text or ""):
        n = normalize_answer(m)
        if not n or n == title or set(n.split()) <= q:
            continue
        counts[n] += 1
        first.setdefault(n, m)
    if not counts:
        return ""
    best = max(counts, key=lambda n: (counts[n], -list(first).index(n)))
    return first[best]


def score(predictions: Sequence[str], golds: Sequence[Sequence[str]]) -> dict[str, float]:
    n = max(1, len(golds))
    return {"em": sum(exact_match(p, g) for p, g in zip(predictions, golds, strict=True)) / n,
            "f1": sum(f1_score(p, g) for p, g in zip(predictions, golds, strict=True)) / n}


def coverage_curve(scores: Sequence[float], correct: Sequence[bool],
                   points: Sequence[float] = (0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1.0)) -> list[dict[str, float]]:
    """Accuracy when answering only the most confident fraction of questions (selective QA)."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    out = []
    for c in points:
        n = max(1, round(c * len(order))) if order else 0
        top = order[:n]
        out.append({"coverage": c, "accuracy": (sum(correct[i] for i in top) / n) if n else 0.0,
                    "min_score": scores[top[-1]] if top else 0.0})
    return out


def score_by(records: Sequence[dict], preds: Sequence[str], golds: Sequence[Sequence[str]],
             field: str = "kind", missing: str | None = None) -> dict[str, dict]:
    """EM / F1 per value of a record ``field`` (the dev sets' ``kind`` quota, generated questions'
    ``qtype``), so a note can say which kinds of question a change helped. Records without the field
    count under ``missing``, or are left out when it is None (then no field at all gives {})."""
    groups: dict[str, list[int]] = {}
    for i, r in enumerate(records):
        key = r.get(field) or missing
        if key:
            groups.setdefault(key, []).append(i)
    return {key: {"n": len(idx), **score([preds[i] for i in idx], [golds[i] for i in idx])}
            for key, idx in sorted(groups.items())}


def evaluate_qa(records: Sequence[dict], retriever, readers: dict[str, Any], k: int = 20, batch_size: int = 8,
                topks: Sequence[int] = (1, 5, 20), progress=None,
                predictions: list[dict] | None = None) -> dict[str, Any]:
    """Retrieve top-k for each record, read with every reader, score EM/F1 and the baselines.

    ``predictions``, when given, receives one row per question and reader (question, gold, answer,
    score, correct, rank of the first passage holding a gold answer) for error analysis."""
    t0 = time.perf_counter()
    golds = [list(r["answers"]) for r in records]
    evidences: list[list[Evidence]] = []
    for s in range(0, len(records), 64):
        qs = [r["question"] for r in records[s:s + 64]]
        evidences.extend(retriever.batch_search(qs, k=k))
    t_ret = time.perf_counter() - t0
    out: dict[str, Any] = {"n": len(records), "k": k}
    times = {"retrieve_s": t_ret}
    for name, reader in readers.items():
        if reader is None:
            out[name] = None
            continue
        t = time.perf_counter()
        preds: list[str] = []
        scores: list[float] = []
        for s in range(0, len(records), batch_size):
            answers = reader.read_batch([r["question"] for r in records[s:s + batch_size]],
                                        evidences[s:s + batch_size], top_n=1, allow_no_answer=False)
            preds.extend(a[0].text if a else "" for a in answers)
            scores.extend(float(a[0].score) if a else 0.0 for a in answers)
            if progress:
                progress(name, min(s + batch_size, len(records)), len(records))
        out[name] = score(preds, golds)
        correct = [exact_match(p, g) for p, g in zip(preds, golds, strict=True)]
        kinds = score_by(records, preds, golds, "kind")
        if kinds:
            out[name]["by_kind"] = kinds
        if predictions is not None:
            for r, p, sc, c, evs in zip(records, preds, scores, correct, evidences, strict=True):
                rank = next((i + 1 for i, e in enumerate(evs) if has_answer(r["answers"], e.text)), None)
                predictions.append({"reader": name, "id": r.get("id"), "kind": r.get("kind"),
                                    "question": r["question"], "answers": list(r["answers"]), "prediction": p,
                                    "score": round(sc, 4), "correct": bool(c), "answer_rank": rank,
                                    "top1_title": evs[0].title if evs else ""})
        out[name]["coverage_accuracy"] = coverage_curve(scores, correct)
        thr = getattr(reader, "threshold", None)
        if thr is not None:
            answered = [c for sc, c in zip(scores, correct, strict=True) if sc >= thr]
            out[name]["abstention"] = {"threshold": thr, "coverage": len(answered) / max(1, len(scores)),
                                       "accuracy_answered": sum(answered) / max(1, len(answered))}
        times[f"{name}_s"] = time.perf_counter() - t
    retrieval = {}
    for t in sorted(set(topks) | {k}):
        if t <= k:
            retrieval[f"top{t}"] = sum(any(has_answer(g, e.text) for e in evs[:t])
                                       for g, evs in zip(golds, evidences, strict=True)) / max(1, len(records))
    out["retrieval"] = retrieval
    out["baselines"] = {
        "most_frequent_entity": score([most_frequent_entity(r["question"], evs)
                                       for r, evs in zip(records, evidences, strict=True)], golds),
        "top1_title": score([evs[0].title if evs else "" for evs in evidences], golds),
    }
    out["seconds"] = {k_: round(v, 2) for k_, v in times.items()}
    return out


def evaluate_generated(reader, records: Sequence[dict], batch_size: int = 8) -> dict[str, Any]:
    """EM / F1 of a reader on generated questions read over their own ``contexts`` (the passage
    that holds the answer and its hard negatives), overall and per question type."""
    from kira.reader.train import attach_passages

    evidences = attach_passages(list(records), None)
    preds: list[str] = []
    for s in range(0, len(records), batch_size):
        answers = reader.read_batch([r["question"] for r in records[s:s + batch_size]], evidences[s:s + batch_size],
                                    top_n=1, allow_no_answer=False)
        preds.extend(a[0].text if a else "" for a in answers)
    golds = [list(r["answers"]) for r in records]
    return {"n": len(records), **score(preds, golds), "by_qtype": score_by(records, preds, golds, "qtype", "?")}
