"""Two-relation questions built from a KB, and the text-vs-text+graph comparison on them.

A relation-path template turns a 2-hop path ``x --r1--> y --r2--> z`` into a question whose
answer is ``z`` ("What is the capital of the country of birth of Mozart?"). Answers are every
``z`` reachable from ``x`` by ``r1`` then ``r2`` (names and aliases), so a question is only kept
when that set is small and well defined. Output rows follow the QA format every kira eval reads:
``{"question", "answers"}`` plus provenance (``kb``, ``path``).

``compare_retrieval`` measures answer recall@k (and EM with a reader) of a text retriever alone
against text fused with ``GraphExpansionRetriever`` — the gain 2-hop facts bring.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kira.errors import IngestError
from kira.graph.view import GraphView

DEFAULT_TEMPLATE = "What is the {r2} of the {r1} of {x}?"


def load_path_templates(spec: str | Path | dict[str, str] | None) -> dict[str, str]:
    """Templates keyed ``"r1/r2"`` (relation ids or names; ``*`` = any) → pattern using
    ``{x}`` (and optionally ``{r1}``, ``{r2}``). From a dict or a JSON/YAML file."""
    if spec is None:
        return {"*": DEFAULT_TEMPLATE}
    if isinstance(spec, dict):
        data, path = spec, "<templates>"
    else:
        path = str(spec)
        p = Path(spec)
        if not p.exists():
            raise IngestError(path, None, None, "path templates file not found")
        try:
            if p.suffix.lower() in (".yaml", ".yml"):
                import yaml

                data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
            else:
                data = json.loads(p.read_text(encoding="utf-8"))
        except Exception as e:
            raise IngestError(path, getattr(e, "lineno", None), None, f"cannot parse templates: {e}") from e
    if not isinstance(data, dict):
        raise IngestError(path, None, None, "templates must map 'r1/r2' to a question pattern")
    for k, v in data.items():
        if k != "*" and "/" not in str(k):
            raise IngestError(path, None, str(k), "key must be 'r1/r2' or '*'")
        if not isinstance(v, str) or "{x}" not in v:
            raise IngestError(path, None, str(k), "template must be a string using {x}")
    return {str(k): v for k, v in data.items()}


def _template_for(templates: dict[str, str], r1: tuple[str, str], r2: tuple[str, str]) -> str | None:
    for a in r1:
        for b in r2:
            if f"{a}/{b}" in templates:
                return templates[f"{a}/{b}"]
    return templates.get("*")


def _phrase(name: str) -> str:
    return name.replace("_", " ").strip()


def generate_questions(view: GraphView, templates: str | Path | dict[str, str] | None = None,
                       aliases: dict[str, list[str]] | None = None, max_answers: int = 3,
                       max_per_pair: int = 50, max_questions: int = 1000, seed: int = 0,
                       relations: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Questions over 2-relation paths of ``view`` (heads to tails, ``x != z``).

    One question per (x, r1, r2); kept when it has at most ``max_answers`` distinct answers;
    at most ``max_per_pair`` per relation pair (sampled with ``seed``) so one pair cannot flood it.
    ``relations`` restricts both hops to these relation ids/names.
    """
    tpl = load_path_templates(templates)
    aliases = aliases or {}
    allowed = set(relations) if relations else None
    out_edges: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for h, r, t in zip(view.heads.tolist(), view.rels.tolist(), view.tails.tolist(), strict=True):
        if allowed is None or view.relation_ids[r] in allowed or view.relation_names[r] in allowed:
            out_edges[h].append((r, t))
    groups: dict[tuple[int, int], list[dict[str, Any]]] = defaultdict(list)
    for x in sorted(out_edges):
        ends: dict[tuple[int, int], dict[int, int]] = defaultdict(dict)  # (r1, r2) -> z -> y
        for r1, y in out_edges[x]:
            for r2, z in out_edges.get(y, ()):
                if z != x:
                    ends[(r1, r2)].setdefault(z, y)
        for (r1, r2), zs in ends.items():
            if len(zs) > max_answers:
                continue
            pattern = _template_for(tpl, (view.relation_ids[r1], view.relation_names[r1]),
                                    (view.relation_ids[r2], view.relation_names[r2]))
            if pattern is None:
                continue
            answers: list[str] = []
            for z in sorted(zs):
                answers += [view.names[z]] + list(aliases.get(view.node_ids[z], []))
            z0 = sorted(zs)[0]
            groups[(r1, r2)].append({
                "question": pattern.format(x=view.names[x], r1=_phrase(view.relation_names[r1]),
                                           r2=_phrase(view.relation_names[r2])),
                "answers": list(dict.fromkeys(answers)),
                "kb": view.kb,
                "path": [view.node_ids[x], view.relation_ids[r1], view.node_ids[zs[z0]],
                         view.relation_ids[r2], view.node_ids[z0]],
                "answer_ids": [view.node_ids[z] for z in sorted(zs)],
            })
    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []
    for key in sorted(groups):
        g = groups[key]
        if len(g) > max_per_pair:
            g = [g[i] for i in sorted(rng.choice(len(g), size=max_per_pair, replace=False))]
        rows += g
    if len(rows) > max_questions:
        rows = [rows[i] for i in sorted(rng.choice(len(rows), size=max_questions, replace=False))]
    return rows


def questions_from_store(store, kb: str, **kw) -> list[dict[str, Any]]:
    """``generate_questions`` over a KB in the store (answers include entity aliases)."""
    from kira.graph.view import load_view

    view = load_view(store, kb)
    aliases = {e.id: list(e.aliases) for e in store.iter_entities(kb) if e.aliases}
    return generate_questions(view, aliases=aliases, **kw)


def split_by_start_entity(rows: Sequence[dict[str, Any]], heldout: float, seed: int = 0) -> list[dict[str, Any]]:
    """Mark a seeded ``heldout`` fraction of start entities ``split=heldout`` (the rest ``train``),
    so a reader trained on the train questions is evaluated on entities it never saw."""
    starts = sorted({r["path"][0] for r in rows})
    rng = np.random.default_rng(seed)
    n = round(len(starts) * heldout)
    held = {starts[i] for i in rng.choice(len(starts), size=n, replace=False)} if n else set()
    return [{**r, "split": "heldout" if r["path"][0] in held else "train"} for r in rows]



def compare_retrieval(questions: Sequence[dict[str, Any]], text_retriever, graph_retriever, k: int = 10,
                      reader=None, graph_weight: float = 1.0) -> dict[str, Any]:
    """Answer recall@k (any answer string in the top-k evidence) and, with a ``reader``, EM of its
    top answer: text alone vs graph alone vs text + graph (RRF-fused)."""
    from kira.graph.expansion import merge_evidence
    from kira.retriever.text import exact_match, has_answer

    systems = ("text", "graph", "text+graph")
    hits = dict.fromkeys(systems, 0)
    em = dict.fromkeys(systems, 0)
    for q in questions:
        text = text_retriever.search(q["question"], k) if text_retriever is not None else []
        graph = graph_retriever.search(q["question"], k)
        lists = {"text": text, "graph": graph, "text+graph": merge_evidence(text, graph, k, graph_weight=graph_weight)}
        for name, ev in lists.items():
            if any(has_answer(q["answers"], e.text) for e in ev[:k]):
                hits[name] += 1
            if reader is not None and ev:
                answers = reader.read(q["question"], ev[:k], top_n=1)
                if answers and exact_match(answers[0].text, q["answers"]):
                    em[name] += 1
    n = max(len(questions), 1)
    out: dict[str, Any] = {"n": len(questions), "k": k}
    for name in systems:
        out[name] = {f"recall@{k}": hits[name] / n}
        if reader is not None:
            out[name]["em"] = em[name] / n
    return out
