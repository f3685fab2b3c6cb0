"""Entity linking and KB facts as evidence.

``EntityLinker`` finds mentions by looking question n-grams up in an alias dictionary built from
the store's entity names and aliases (normalised: lower case, punctuation dropped, plural
endings stripped), longest match first and non-overlapping. When a mention has several candidate
entities they are ranked by embedding similarity between the question and each candidate's
``"<name>: <description>"`` (any ``Encoder``; loaded lazily, only when a mention is ambiguous),
with a prior from the surface match and the entity's degree in the KB as tie-breaker.

``KBFactRetriever`` (a ``Retriever`` named ``kb``) links a question's entities and returns their
facts as ``Evidence(kind="kb_fact")`` — verbalized with entity names, scored by link confidence
and by how much of the question the fact's other words cover, with provenance
(``kb``, ``triples``, ``entity``) in metadata.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from kira.schema import BaseRetriever, Entity, Evidence, Triple

_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?", re.UNICODE)
_STOP_TEXT = (
    "a an the of in on at to for from by with and or is are was were be been being what which who whom whose "
    "where when why how does do did has have had it its this that these those as into about than then there "
    "their they them he she his her we you your i me my not no yes can could would should will shall may might "
    "name tell give list many much kind type sort")
STOPWORDS = frozenset(_STOP_TEXT.split())


def _singular(w: str) -> str:
    """Cheap plural stripping (cities → city, boxes → box, dogs → dog; glass, bus, is kept)."""
    if len(w) > 4 and w.endswith("ies"):
        return w[:-3] + "y"
    if len(w) > 4 and w.endswith(("ches", "shes", "sses", "xes", "zes")):
        return w[:-2]
    if len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is")):
        return w[:-1]
    return w


def tokens(text: str) -> list[str]:
    return [t.lower() for t in _WORD.findall(text)]


def normalize(text: str) -> str:
    """The dictionary key of a surface form: lower case, no punctuation, singular words."""
    return " ".join(_singular(t) for t in tokens(text))


@dataclass
class LinkedEntity:
    kb: str
    entity_id: str
    name: str
    mention: str
    score: float
    span: tuple[int, int] = (0, 0)  # word positions [start, end) in the question
    entity: Entity | None = field(default=None, repr=False)


@dataclass
class Mention:
    """A mention in a text by character offsets, its candidate entities and their priors (sum 1)."""

    start: int
    end: int
    surface: str
    candidates: list[tuple[str, str]]  # (kb, entity id)
    priors: list[float]


class EntityLinker:
    """Alias-dictionary mention detection + embedding disambiguation over the store's KBs."""

    def __init__(self, store, encoder=None, kbs: Sequence[str] | None = None, max_ngram: int = 6,
                 top_per_mention: int = 1, encoder_spec: str | None = None):
        self.store = store
        self.kbs = list(kbs) if kbs else None
        self.max_ngram = max_ngram
        self.top_per_mention = top_per_mention
        self._encoder = encoder
        self._encoder_spec = encoder_spec
        self._aliases: dict[str, list[tuple[str, str]]] | None = None
        self._names: dict[tuple[str, str], str] = {}
        self._texts: dict[tuple[str, str], str] = {}  # "<name>: <description>", what candidates are ranked by
        self._degree: dict[tuple[str, str], int] = {}
        self._vec_cache: dict[tuple[str, str], np.ndarray] = {}
        # where candidate vectors come from before the encoder: the dense index's own vectors of the
        # entities' verbalized passages (``use_passage_vectors``), so linking encodes only questions
        self._passage_vectors: Callable[[list[str]], dict[str, np.ndarray]] | None = None

    # ---- dictionary ---------------------------------------------------------------------------
    def _build(self) -> dict[str, list[tuple[str, str]]]:
        if self._aliases is not None:
            return self._aliases
        aliases: dict[str, list[tuple[str, str]]] = defaultdict(list)
        kbs = self.kbs or self.store.list_kbs()
        for kb in kbs:
            for e in self.store.iter_entities(kb):
                key = (kb, e.id)
                self._names[key] = e.name
                if e.description:
                    self._texts[key] = f"{e.name}: {e.description}"
                for surface in dict.fromkeys([e.name, *e.aliases]):
                    n = normalize(surface)
                    if n and (len(n) > 1 or n.isdigit()) and key not in aliases[n]:
                        aliases[n].append(key)
            for eid, deg in self.store.entity_degrees(kb).items():
                self._degree[(kb, eid)] = deg
        self._aliases = dict(aliases)
        return self._aliases

    def refresh(self) -> None:
        """Forget the dictionary (after KBs were added or removed)."""
        self._aliases = None
        self._names.clear()
        self._texts.clear()
        self._degree.clear()
        self._vec_cache.clear()

    def names(self, kb: str, ids) -> dict[str, str]:
        """Entity id → name for ``ids`` of ``kb`` (from the dictionary in memory; no store query)."""
        self._build()
        return {i: self._names.get((kb, i), i) for i in ids}

    # ---- encoder ------------------------------------------------------------------------------
    @property
    def encoder(self):
        if self._encoder is None and self._encoder_spec:
            from kira.plm.encoder import TextEncoder

            self._encoder = TextEncoder(self._encoder_spec, max_length=64)
        return self._encoder

    @property
    def encoder_spec(self) -> str | None:
        return self._encoder_spec

    def use_passage_vectors(self, fetch: Callable[[list[str]], dict[str, np.ndarray]]) -> None:
        """Rank candidates by stored unit vectors of their verbalized passages (``fetch(passage ids)
        -> {id: vector}``, e.g. read back from a dense index built with this linker's encoder)
        instead of encoding "name: description" per candidate: the same disambiguation (measured on
        held-out KB questions: subject linked 0.990 -> 0.993) without ~20 encoder inputs a question."""
        self._passage_vectors = fetch

    MAX_CACHED_VECTORS = 200_000  # ~300 MB at 384-d; cleared when full (a server runs for days)

    def _encode(self, questions: list[str], keys: list[tuple[str, str]]) -> np.ndarray:
        """Unit vectors of ``questions``, and of the candidate ``keys`` not cached yet, in ONE encoder
        call (a forward pass per question and per mention cost ~20 ms each on CPU)."""
        if len(self._vec_cache) + len(keys) > self.MAX_CACHED_VECTORS:
            self._vec_cache.clear()  # before choosing what to encode: every key of this call stays cached
        missing = list(dict.fromkeys(k for k in keys if k not in self._vec_cache))
        if missing and self._passage_vectors is not None:
            from kira.kb.verbalize import entity_passage_id

            pids = {entity_passage_id(*k): k for k in missing}
            for pid, v in self._passage_vectors(list(pids)).items():
                self._vec_cache[pids[pid]] = v
            missing = [k for k in missing if k not in self._vec_cache]
        texts = questions + [self._texts.get(k) or self._names.get(k, k[1]) for k in missing]
        if not texts:
            return np.zeros((0, 0), np.float32)
        vecs = np.asarray(self.encoder.encode(texts), dtype=np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True).clip(1e-9)
        for k, v in zip(missing, vecs[len(questions):], strict=True):
            self._vec_cache[k] = v
        return vecs[:len(questions)]

    # ---- linking ------------------------------------------------------------------------------
    def mentions(self, text: str) -> list[tuple[int, int, str, list[tuple[str, str]]]]:
        """(start, end, surface, candidates) for each detected mention, longest first, no overlaps."""
        aliases = self._build()
        words = _WORD.findall(text)
        norm = [_singular(w.lower()) for w in words]
        used = [False] * len(words)
        out = []
        for n in range(min(self.max_ngram, len(words)), 0, -1):
            for i in range(len(words) - n + 1):
                if any(used[i:i + n]):
                    continue
                if n == 1 and words[i].lower() in STOPWORDS:
                    continue
                cands = aliases.get(" ".join(norm[i:i + n]))
                if cands:
                    out.append((i, i + n, " ".join(words[i:i + n]), cands))
                    used[i:i + n] = [True] * n
        return sorted(out)

    def _priors(self, cands: list[tuple[str, str]], surface: str) -> np.ndarray:
        """Surface prior of each candidate: exact name match over alias match, plus KB degree."""
        return np.asarray([(1.0 if normalize(self._names.get(k, "")) == normalize(surface) else 0.8)
                           + 0.05 * math.log1p(self._degree.get(k, 0)) for k in cands], dtype=np.float32)

    def candidate_mentions(self, text: str, max_candidates: int = 4) -> list[Mention]:
        """Mentions of ``text`` with character offsets and up to ``max_candidates`` candidates each,
        priors from the surface match and KB degree (softmax; no encoder, so cheap on every passage):
        what a knowledge-injected reader attends over."""
        spans = [(m.start(), m.end()) for m in _WORD.finditer(text)]
        out = []
        for start, end, surface, cands in self.mentions(text):
            prior = self._priors(cands, surface)
            order = np.argsort(-prior, kind="stable")[:max_candidates]
            p = np.exp((prior[order] - prior[order].max()) / 0.1)
            out.append(Mention(spans[start][0], spans[end - 1][1], surface, [cands[int(j)] for j in order],
                               (p / p.sum()).tolist()))
        return out

    def link(self, text: str) -> list[LinkedEntity]:
        """Linked entities of ``text``, best candidate(s) per mention, by score."""
        return self.link_batch([text])[0]

    def link_batch(self, texts: list[str]) -> list[list[LinkedEntity]]:
        """``link`` for many texts; every text with an ambiguous mention and every uncached
        candidate are encoded together, once."""
        found = [self.mentions(t) for t in texts]
        ambiguous = [i for i, f in enumerate(found) if any(len(c) > 1 for *_, c in f)]
        qvecs: dict[int, np.ndarray] = {}
        if ambiguous and self.encoder is not None:
            keys = [k for i in ambiguous for *_, cands in found[i] if len(cands) > 1 for k in cands]
            qvecs = dict(zip(ambiguous, self._encode([texts[i] for i in ambiguous], keys), strict=True))
        return [self._rank(f, qvecs.get(i)) for i, f in enumerate(found)]

    def _rank(self, found, qvec: np.ndarray | None) -> list[LinkedEntity]:
        out: list[LinkedEntity] = []
        for start, end, surface, cands in found:
            scores = prior = self._priors(cands, surface)
            if len(cands) > 1 and qvec is not None:
                sims = np.stack([self._vec_cache[k] for k in cands]) @ qvec + 0.01 * prior
                probs = np.exp((sims - sims.max()) / 0.05)
                probs /= probs.sum()
                # order by similarity; confidence = surface prior scaled by how clearly it won
                scores = prior[np.argmax(sims)] * (0.5 + 0.5 * probs)
            # longer mentions are more reliable evidence of an entity than single words
            length_bonus = min(1.0, 0.6 + 0.2 * (end - start))
            for j in np.argsort(-scores, kind="stable")[: self.top_per_mention]:
                kb, eid = cands[int(j)]
                out.append(LinkedEntity(kb, eid, self._names.get((kb, eid), eid), surface,
                                        float(scores[j]) * length_bonus, (start, end)))
        return sorted(out, key=lambda x: -x.score)


class KBFactRetriever(BaseRetriever):
    """Retriever ``kb``: the linked entities' facts as scored ``kb_fact`` evidence."""

    name = "kb"

    def __init__(self, store, linker: EntityLinker | None = None, kbs: Sequence[str] | None = None,
                 max_facts_per_entity: int = 50, encoder=None, encoder_spec: str | None = None):
        self.store = store
        self.linker = linker or EntityLinker(store, encoder=encoder, kbs=kbs, encoder_spec=encoder_spec)
        self.max_facts_per_entity = max_facts_per_entity
        self._templates: dict[str, dict[str, str]] = {}
        self._rel_names: dict[str, dict[str, str]] = {}

    @classmethod
    def from_config(cls, cfg, store) -> KBFactRetriever:
        """Over ``store`` (for answering: the index version's snapshot, ``kira.workspace``)."""
        return cls(store, encoder_spec=cfg.index.encoder)

    def _kb_templates(self, kb: str) -> dict[str, str]:
        if kb not in self._templates:
            src = self.store.get_source(kb) or {}
            self._templates[kb] = dict((src.get("metadata") or {}).get("templates") or {})
        return self._templates[kb]

    def verbalize(self, kb: str, t: Triple, names: dict[str, str], rel_names: dict[str, str]) -> str:
        from kira.kb.verbalize import FALLBACK, sentence

        tpl = self._kb_templates(kb)
        rname = rel_names.get(t.relation, t.relation)
        template = tpl.get(t.relation) or tpl.get(rname) or FALLBACK
        return sentence(template, names.get(t.head, t.head), rname, names.get(t.tail, t.tail))

    def search(self, query: str, k: int = 10) -> list[Evidence]:
        return self.batch_search([query], k)[0]

    def batch_search(self, queries: Sequence[str], k: int = 10, threads: int | None = None) -> list[list[Evidence]]:
        """One list per query; the questions are linked together (one encoder call)."""
        links = self.linker.link_batch(list(queries))
        wanted: dict[str, set[str]] = defaultdict(set)
        for ls in links:
            for link in ls:
                wanted[link.kb].add(link.entity_id)
        facts = {kb: self.store.triples_about_many(kb, sorted(ids)) for kb, ids in wanted.items()}
        return [self._facts(q, ls, k, facts) for q, ls in zip(queries, links, strict=True)]

    def _relation_names(self, kb: str) -> dict[str, str]:
        if kb not in self._rel_names:
            self._rel_names[kb] = {r.id: r.name for r in self.store.list_relations(kb)}
        return self._rel_names[kb]

    def _facts(self, query: str, links: list[LinkedEntity], k: int,
               facts_of: dict[str, dict[str, list[Triple]]]) -> list[Evidence]:
        if not links or k <= 0:
            return []
        qwords = {_singular(w) for w in tokens(query) if w not in STOPWORDS}
        linked_ids = {(link.kb, link.entity_id) for link in links}
        out: dict[str, Evidence] = {}
        for link in links:
            facts = facts_of[link.kb][link.entity_id][: self.max_facts_per_entity * 4]
            names = self.linker.names(link.kb, {x for t in facts for x in (t.head, t.tail)})
            rel_names = self._relation_names(link.kb)
            mention_words = {_singular(w) for w in tokens(link.mention)}
            scored = []
            for t in facts:
                text = self.verbalize(link.kb, t, names, rel_names)
                other = {_singular(w) for w in tokens(text) + tokens(rel_names.get(t.relation, t.relation))
                         if w not in STOPWORDS} - mention_words
                overlap = len(other & qwords) / max(1, len(qwords - mention_words))
                both_linked = (link.kb, t.tail if t.head == link.entity_id else t.head) in linked_ids
                scored.append((link.score * (1 + overlap + 0.5 * both_linked), t, text))
            scored.sort(key=lambda x: -x[0])
            seen_text = {e.text for e in out.values()}
            for score, t, text in scored[: self.max_facts_per_entity]:
                if text in seen_text:  # a fact and its inverse (hypernym/hyponym) read the same
                    continue
                seen_text.add(text)
                eid = f"kb:{t.kb}:{t.head}|{t.relation}|{t.tail}"
                if eid in out and out[eid].score >= score:
                    continue
                out[eid] = Evidence(
                    id=eid, title=link.name, text=text, score=float(score), kind="kb_fact", source=t.kb,
                    retriever=self.name,
                    metadata={"kb": t.kb, "triples": [[t.head, t.relation, t.tail]],
                              "facts": [[names.get(t.head, t.head), rel_names.get(t.relation, t.relation),
                                         names.get(t.tail, t.tail)]], "entity": link.entity_id,
                              "mention": link.mention, "link_score": link.score},
                )
        return sorted(out.values(), key=lambda e: (-e.score, e.id))[:k]

