"""Graph-expanded retrieval: from the entities a question names to the facts around them.

For a question: link entity mentions to KB entities, walk their 1–2-hop neighbourhood in the
cached graph view, score each fact path, and return the best as ``kb_fact`` evidence
(``retriever="graph"``, metadata ``kb``, ``triples``, ``path``). Scoring is question relevance of
the verbalized path (cosine under the zoo encoder, or token overlap without one), plus, when a
trained link-prediction artifact exists for the KB (``models/<kb>-transe``, ``<kb>-kepler``,
``<kb>-graph-bert``, ``<kb>-graphformers``), the model's plausibility of the path's edges, so unlikely or noisy edges sink.

Two-relation questions ("the capital of the country where X was born") need a fact that text
retrieval rarely puts in one passage; the 2-hop path does, which is where this retriever helps.
``merge_evidence`` fuses its output with a text retriever's (reciprocal rank fusion, provenance
kept) so the pipeline can read both.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kira.artifacts import kb_artifact_dirs
from kira.graph.view import GraphView, load_view
from kira.retriever.fusion import fuse_evidence
from kira.schema import BaseRetriever, Evidence

FALLBACK_TEMPLATE = "{subject} has {relation} {object}."
_WORD = re.compile(r"[a-z0-9]+")
_STOP = {"the", "a", "an", "of", "is", "was", "what", "which", "who", "where", "in", "on", "to", "and", "for",
         "by", "does", "did", "has", "have", "that", "with", "as", "at", "from"}


@dataclass
class Link:
    """An entity mention linked to a KB entity."""

    kb: str
    entity_id: str
    score: float = 1.0
    mention: str = ""


def _tokens(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP}


def default_linker(store, kbs: Sequence[str] | None = None, encoder: Any = None):
    """The KB area's ``EntityLinker`` (alias n-grams + embedding disambiguation)."""
    from kira.kb.linking import EntityLinker

    if isinstance(encoder, str):
        return EntityLinker(store, kbs=list(kbs) if kbs else None, encoder_spec=encoder)
    return EntityLinker(store, encoder=encoder, kbs=list(kbs) if kbs else None)


def _as_links(raw) -> list[Link]:
    """Accept the KB linker's result objects, tuples or ``Link``s."""
    out = []
    for x in raw:
        if isinstance(x, Link):
            out.append(x)
        elif isinstance(x, tuple):
            out.append(Link(x[0], x[1], float(x[2]) if len(x) > 2 else 1.0))
        else:
            eid = getattr(x, "entity_id", None) or getattr(x, "id", None) or getattr(getattr(x, "entity", None), "id", None)
            kb = getattr(x, "kb", None) or getattr(getattr(x, "entity", None), "kb", None)
            if eid is not None and kb is not None:
                out.append(Link(kb, eid, float(getattr(x, "score", 1.0)), str(getattr(x, "mention", ""))))
    return out


@dataclass
class FactPath:
    """One or two edges walked from a seed: ``edges`` are edge ids, ``nodes`` the walk order."""

    kb: str
    seed: int
    edges: tuple[int, ...]
    nodes: tuple[int, ...]


def neighbourhood_paths(view: GraphView, seed: int, hops: int = 2, max_paths: int = 400,
                        prefer: Callable[[int], float] | None = None) -> list[FactPath]:
    """All 1-hop edges at ``seed`` and, for ``hops=2``, the edges one step further (no going
    back to the seed). Edges are walked in either direction; ``prefer(edge)`` orders candidates
    when the neighbourhood holds more than ``max_paths`` paths."""
    order = (lambda es: sorted(es, key=lambda e: (-prefer(e), e))) if prefer else (lambda es: list(es))
    paths: list[FactPath] = []
    first = order(view.incident_edges(seed).tolist())
    for e in first:
        other = int(view.tails[e] if view.heads[e] == seed else view.heads[e])
        paths.append(FactPath(view.kb, seed, (e,), (seed, other)))
    if hops >= 2:
        for p in list(paths):
            mid = p.nodes[1]
            if mid == seed:
                continue
            for e2 in order(view.incident_edges(mid).tolist()):
                if e2 == p.edges[0]:
                    continue
                end = int(view.tails[e2] if view.heads[e2] == mid else view.heads[e2])
                if end == seed:
                    continue
                paths.append(FactPath(view.kb, seed, (p.edges[0], e2), (seed, mid, end)))
    if len(paths) > max_paths:
        if prefer:
            paths.sort(key=lambda p: (-sum(prefer(e) for e in p.edges) / len(p.edges), len(p.edges)))
        paths = paths[:max_paths]
    return paths


def relation_mentions(question: str, relation_names: Sequence[str]) -> int:
    """How many times the question names one of the KB's relations ("the part holonym of the
    part holonym of Nepal" -> 2); longest names first, so "instance hypernym" is not also a "hypernym"."""
    text = " " + " ".join(_WORD.findall(question.lower())) + " "
    count = 0
    for name in sorted({" ".join(_WORD.findall(n.lower())) for n in relation_names} - {""}, key=len, reverse=True):
        hits = text.count(f" {name} ")
        if hits:
            count += hits
            text = text.replace(f" {name} ", " | ")
    return count


class GraphExpansionRetriever(BaseRetriever):
    """A ``kira.schema.Retriever`` (name ``graph``) returning verbalized KB fact paths."""

    name = "graph"

    def __init__(self, store, kbs: Sequence[str] | None = None, encoder: Any = "minilm-l6", hops: int = 2,
                 linker=None, models_dir: str | Path | None = None, cache_dir: str | Path | None = None,
                 max_paths: int = 400, plausibility_weight: float = 0.3, scorers: dict[str, Any] | None = None,
                 relation_weight: float = 0.5):
        self.store = store
        self.kbs = list(kbs) if kbs else None
        self.hops = hops
        self.linker = linker or default_linker(store, self.kbs, encoder)
        self.models_dir = Path(models_dir) if models_dir else None
        self.cache_dir = cache_dir
        self.max_paths = max_paths
        self.plausibility_weight = plausibility_weight
        self.relation_weight = relation_weight
        self._encoder_spec = encoder
        self._encoder = None
        self._scorers: dict[str, Any] = dict(scorers or {})
        self._templates: dict[str, dict[str, str]] = {}
        self._fact_cache: dict[str, np.ndarray] = {}

    @classmethod
    def from_config(cls, cfg, store=None, **kw) -> GraphExpansionRetriever:
        """Over a workspace: its store (default: the current index version's snapshot), its models
        (plausibility artifacts) and its graph cache."""
        from kira.graph.view import cache_dir_for

        if store is None:
            from kira.index_build.versions import current_version
            from kira.workspace import answering_store

            store = answering_store(cfg, current_version(cfg.indexes_dir))
        kw.setdefault("encoder", cfg.index.encoder)
        return cls(store, models_dir=cfg.models_dir, cache_dir=cache_dir_for(cfg), **kw)

    # ---- pieces -------------------------------------------------------------------------------
    @property
    def encoder(self):
        if self._encoder is None and self._encoder_spec:
            if isinstance(self._encoder_spec, str):
                from kira.plm import TextEncoder

                self._encoder = TextEncoder(self._encoder_spec)
            else:
                self._encoder = self._encoder_spec
        return self._encoder

    def view(self, kb: str) -> GraphView:
        return load_view(self.store, kb, cache_dir=self.cache_dir)

    def templates(self, kb: str) -> dict[str, str]:
        if kb not in self._templates:
            src = self.store.get_source(kb) if hasattr(self.store, "get_source") else None
            self._templates[kb] = dict((src or {}).get("metadata", {}).get("templates", {}) or {})
        return self._templates[kb]

    def scorer(self, kb: str):
        """A trained plausibility model for ``kb`` if the workspace has one (else None)."""
        if kb in self._scorers:
            return self._scorers[kb]
        found = None
        if self.models_dir is not None and self.models_dir.is_dir():
            for d in kb_artifact_dirs(self.models_dir, kb):
                if (d / "kira.json").exists():
                    found = _load_scorer(d, self.view(kb))
                    if found is not None:
                        break
        self._scorers[kb] = found
        return found

    def verbalize(self, view: GraphView, e: int) -> str:
        tpl = self.templates(view.kb)
        rid = view.relation_ids[view.rels[e]]
        rname = view.relation_names[view.rels[e]]
        t = tpl.get(rid) or tpl.get(rname) or FALLBACK_TEMPLATE
        s = t.format(subject=view.names[view.heads[e]], object=view.names[view.tails[e]],
                     relation=rname.replace("_", " ")).strip()
        s = s[:1].upper() + s[1:]
        return s if s.endswith((".", "!", "?")) else s + "."

    def _relevance(self, question: str, texts: list[str]) -> np.ndarray:
        enc = self.encoder
        if enc is None:
            q = _tokens(question)
            return np.asarray([len(q & _tokens(t)) / (len(q | _tokens(t)) or 1) for t in texts], dtype=np.float32)
        missing = [t for t in dict.fromkeys(texts) if t not in self._fact_cache]
        if missing:
            vecs = enc.encode(missing)
            for t, v in zip(missing, vecs, strict=True):
                self._fact_cache[t] = v / (np.linalg.norm(v) + 1e-9)
            if len(self._fact_cache) > 200_000:
                self._fact_cache.clear()
        qv = enc.encode([question])[0]
        qv = qv / (np.linalg.norm(qv) + 1e-9)
        return np.asarray([float(self._fact_cache[t] @ qv) for t in texts], dtype=np.float32)

    def _plausibility(self, kb: str, view: GraphView, edges: list[int]) -> np.ndarray | None:
        sc = self.scorer(kb)
        if sc is None or not edges:
            return None
        h = [view.node_ids[view.heads[e]] for e in edges]
        r = [view.relation_ids[view.rels[e]] for e in edges]
        t = [view.node_ids[view.tails[e]] for e in edges]
        try:
            s = np.asarray(sc.score(np.asarray(h), np.asarray(r), np.asarray(t)), dtype=np.float32)
        except Exception:  # an artifact trained on another version of the KB: ids unknown
            return None
        lo, hi = float(s.min()), float(s.max())
        return (s - lo) / (hi - lo) if hi > lo else np.ones_like(s)

    # ---- search -------------------------------------------------------------------------------
    def search(self, query: str, k: int = 10) -> list[Evidence]:
        links = [lk for lk in _as_links(self.linker.link(query)) if self.kbs is None or lk.kb in self.kbs]
        qtok = _tokens(query)
        out: list[Evidence] = []
        for kb in dict.fromkeys(lk.kb for lk in links):
            view = self.view(kb)
            rel_tokens = [_tokens(n) for n in view.relation_names]

            def prefer(e: int, view=view, rel_tokens=rel_tokens) -> float:
                return float(len(qtok & rel_tokens[view.rels[e]]))

            paths: list[FactPath] = []
            link_score: list[float] = []
            for lk in links:
                if lk.kb != kb or lk.entity_id not in view.index:
                    continue
                ps = neighbourhood_paths(view, view.index[lk.entity_id], self.hops, self.max_paths, prefer)
                paths += ps
                link_score += [lk.score] * len(ps)
            if not paths:
                continue
            texts = [" ".join(self.verbalize(view, e) for e in p.edges) for p in paths]
            score = self._relevance(query, texts)
            edges = sorted({e for p in paths for e in p.edges})
            plaus = self._plausibility(kb, view, edges)
            path_plaus: list[float | None] = [None] * len(paths)
            relevance = score.tolist()
            if plaus is not None:
                pe = dict(zip(edges, plaus.tolist(), strict=True))
                path_plaus = [min(pe[e] for e in p.edges) for p in paths]  # a path is as weak as its weakest edge
                score = score + self.plausibility_weight * np.asarray(path_plaus, dtype=np.float32)
            mentions = relation_mentions(query, view.relation_names)
            if mentions and self.relation_weight:
                score = score + self.relation_weight * np.asarray(
                    [self._relation_match(view, p, qtok, rel_tokens, mentions) for p in paths], dtype=np.float32)
            for i, (p, text, s, ls) in enumerate(zip(paths, texts, score.tolist(), link_score, strict=True)):
                triples = [list(view.triple(e)) for e in p.edges]
                out.append(Evidence(
                    id="graph:" + kb + ":" + "|".join("/".join(t) for t in triples), title=view.names[p.seed],
                    text=text, score=float(s) + 0.1 * float(ls), kind="kb_fact", source=kb, retriever="graph",
                    metadata={"kb": kb, "triples": triples, "path": [view.node_ids[n] for n in p.nodes],
                              "seed": view.node_ids[p.seed], "hops": len(p.edges),
                              "relevance": relevance[i], "plausibility": path_plaus[i]}))
        out.sort(key=lambda e: (-e.score, e.id))
        seen: set[str] = set()
        unique = []
        for e in out:  # one item per fact path *and* per wording (inverse triples verbalize alike)
            if e.id not in seen and e.text not in seen:
                seen.update((e.id, e.text))
                unique.append(e)
        return unique[:k]

    @staticmethod
    def _relation_match(view: GraphView, path: FactPath, qtok: set[str], rel_tokens: list[set[str]],
                        mentions: int) -> float:
        """How well a path's relations are the ones the question names, in [0, 1].

        WHY: a multi-hop question spells its relation path ("the capital of the country of X");
        text similarity alone ranks the 1-hop fact about X above the 2-hop path that answers it.
        An edge counts when its relation's words all occur in the question (walked head to tail;
        half when walked backwards); the path scores matched / max(path length, mentions), so a
        path as long as the named relation chain, matching all of it, scores 1."""
        matched = 0.0
        for node, e in zip(path.nodes, path.edges, strict=False):
            toks = rel_tokens[view.rels[e]]
            if toks and toks <= qtok:
                matched += 1.0 if int(view.heads[e]) == node else 0.5
        return min(matched, mentions) / max(len(path.edges), mentions)


def _load_scorer(directory: Path, view: GraphView):
    """A plausibility model artifact: TransE/H/D or KEPLER (``kira.kb.embeddings.load_embedder``),
    Graph-BERT or GraphFormers; None for other artifacts or ones trained on another graph version."""
    from kira.plm.zoo import artifact_config

    kind = artifact_config(directory).get("type")
    if kind in ("kge", "kepler"):
        from kira.kb.embeddings import load_embedder

        return load_embedder(directory, device="cpu")
    if kind == "graph-bert":
        from kira.graph.graph_bert_predictor import GraphBertLinkPredictor, load

        model, meta = load(directory, device="cpu")
        if meta.get("node_ids") != view.node_ids:
            return None
        return GraphBertLinkPredictor(view, model)
    if kind == "graphformers":
        from kira.graph.graphformers import GraphFormers, GraphFormersLinkPredictor

        model, meta = GraphFormers.load(directory, device="cpu")
        if meta.get("relation_ids") != view.relation_ids:
            return None
        return GraphFormersLinkPredictor(view, model)
    return None


def merge_evidence(text: list[Evidence], graph: list[Evidence], k: int, rrf_k: int = 60,
                   graph_weight: float = 1.0) -> list[Evidence]:
    """Text and graph evidence fused by :func:`kira.retriever.fusion.fuse_evidence` (RRF)."""
    return fuse_evidence([text, graph], k, rrf_k=rrf_k, weights=[1.0, graph_weight])


class TextPlusGraphRetriever(BaseRetriever):
    """A text retriever with graph expansion fused in (RRF) — what ``QAPipeline`` does for
    ``sources=all``, as a plain ``Retriever`` so any evaluation (``kira.reader.evaluate.evaluate_qa``,
    retrieval eval) can score text + graph against text alone."""

    def __init__(self, text, graph: GraphExpansionRetriever, graph_weight: float = 1.0):
        self.text = text
        self.graph = graph
        self.graph_weight = graph_weight
        self.name = f"{getattr(text, 'name', 'text')}+graph"

    def search(self, query: str, k: int = 100) -> list[Evidence]:
        return merge_evidence(self.text.search(query, k), self.graph.search(query, k), k,
                              graph_weight=self.graph_weight)

    def batch_search(self, queries: Sequence[str], k: int = 100, threads: int | None = None) -> list[list[Evidence]]:
        texts = self.text.batch_search(list(queries), k=k)
        return [merge_evidence(t, self.graph.search(q, k), k, graph_weight=self.graph_weight)
                for q, t in zip(queries, texts, strict=True)]
