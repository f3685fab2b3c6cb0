"""The extractive reader with knowledge injected: linked mentions in question and passages, an
``EntityTable`` of KB embeddings, a ``KnowledgeInjector`` (ERNIE fusion or a KnowBERT KAR layer,
plus one K-Adapter per KB present) hooked between two encoder layers, and an entity-answer head.

``KnowledgeReader`` is an ``ExtractiveReader`` (same windows, decoding, loss, ``read_batch``), so it
trains with ``extractive_loss`` and answers through ``schema.Reader``; what it adds is in
``windows`` (each window carries its mentions as token spans with candidate rows and priors) and
``forward_windows`` (the injector gets them as its context before each forward).

K-Adapters are artifacts of their KB (``models/<kb>-adapter``, ``kira.json`` says ``"kb"``), so
``kira kb remove`` removes them and a reader loads the adapters of exactly the KBs present.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from kira.artifacts import kb_artifact_dir, kb_artifact_dirs, read_config, write_config
from kira.reader.extractive import ExtractiveReader, Windows, _hidden_size, collate
from kira.reader.knowledge import EntityAnswerHead, EntityTable, KAdapter, KnowledgeBatch, KnowledgeInjector
from kira.schema import Answer, Evidence

ADAPTER_TYPE = "k-adapter"
ADAPTER_FILE = "adapter.safetensors"
KNOWLEDGE_FILE = "knowledge.safetensors"
SMALL_KB = 5000  # entity answers range over all of a KB this small, else over the linked entities' neighbours


@dataclass
class LinkedWindows(Windows):
    """Windows plus, per window, ``(start_token, end_token, table rows, priors)`` of its mentions."""

    mentions: list[list[tuple[int, int, list[int], list[float]]]] = field(default_factory=list)


def _token_span(offsets: Sequence[tuple[int, int]], positions: Sequence[int], a: int, b: int) -> tuple[int, int] | None:
    """First and last of ``positions`` whose character offsets overlap ``[a, b)``."""
    hit = [i for i in positions if offsets[i][0] < b and offsets[i][1] > a and offsets[i][1] > offsets[i][0]]
    return (hit[0], hit[-1]) if hit else None


@dataclass
class KBAnswerer:
    """What the entity-answer head needs of one KB: its embedder, adapter and store."""

    kb: str
    embedder: Any  # KGEmbedder or Kepler
    adapter: KAdapter
    head: EntityAnswerHead
    relations: list[str]  # adapter's relation classes = embedder relation ids, in order
    store: Any = None


@dataclass
class KnowledgeReader(ExtractiveReader):
    """An ``ExtractiveReader`` whose encoder sees linked KB entities (see the module docstring)."""

    linker: Any = None  # kira.kb.linking.EntityLinker
    max_mentions: int = 32
    max_candidates: int = 4
    answerers: dict[str, KBAnswerer] = field(default_factory=dict)
    entity_answers: bool = True
    # an entity answer replaces the spans only when the head is sure of the relation and of the entity
    # (a priori, not tuned: probabilities over a handful of neighbours are easily high)
    entity_min_prob: float = 0.5
    _link_cache: dict[str, list] = field(default_factory=dict, repr=False)

    # ---- construction -------------------------------------------------------------------------
    @classmethod
    def wrap(cls, reader: ExtractiveReader, table: EntityTable, linker, fusion: str | None = None,
             layer: int | None = None, **kw) -> KnowledgeReader:
        """A knowledge reader sharing ``reader``'s model (the injector is added to it and hooked in
        after encoder layer ``layer``; default: the middle, as KnowBERT's KAR between layers)."""
        layers = encoder_layers(reader.model.qa)
        layer = max(0, len(layers) // 2 - 1) if layer is None else layer
        injector = KnowledgeInjector(_hidden_size(reader.model.qa.config), table, fusion, layer)
        reader.model.knowledge = injector.to(reader.device)
        injector.install(layers)
        fields = {k: getattr(reader, k) for k in ExtractiveReader.__dataclass_fields__}
        return cls(**fields, linker=linker, **kw)

    @property
    def injector(self) -> KnowledgeInjector:
        return self.model.knowledge

    def save(self, directory: str | os.PathLike, extra: dict | None = None) -> Path:
        """The reader artifact plus the fusion weights (entity vectors and adapters stay with their KBs)."""
        from safetensors.torch import save_file

        inj = self.injector
        d = super().save(directory, {"knowledge": {"fusion": inj.kind, "layer": inj.layer}, **(extra or {})})
        if inj.fusion is not None:
            save_file({k: v.detach().cpu().contiguous() for k, v in inj.fusion.state_dict().items()},
                      str(Path(d) / KNOWLEDGE_FILE))
        return d

    @classmethod
    def load_knowledge(cls, directory: str | os.PathLike, table: EntityTable, linker, device: str = "auto",
                       **kw) -> KnowledgeReader:
        """A reader saved by ``save``, with ``table`` (the KBs present now) and ``linker``."""
        from safetensors.torch import load_file

        cfg = read_config(directory).get("knowledge") or {}
        reader = cls.wrap(ExtractiveReader.load(directory, device=device), table, linker,
                          cfg.get("fusion"), cfg.get("layer"), **kw)
        if reader.injector.fusion is not None:
            reader.injector.fusion.load_state_dict(load_file(str(Path(directory) / KNOWLEDGE_FILE)))
        return reader

    # ---- linking ------------------------------------------------------------------------------
    def _mentions(self, text: str) -> list:
        if text not in self._link_cache:
            self._link_cache[text] = self.linker.candidate_mentions(text, self.max_candidates) if self.linker else []
        return self._link_cache[text]

    def windows(self, pairs: Sequence[tuple[str, str, str]]) -> LinkedWindows:
        base = super().windows(pairs)
        table = self.injector.table
        sep = self.tokenizer.sep_token_id
        out = []
        for w in range(len(base)):
            q, _, passage = pairs[base.pair[w]]
            ids, offs = base.input_ids[w], base.offsets[w]
            first_sep = ids.index(sep) if sep in ids else 0
            q_pos = list(range(1, first_sep))
            p_pos = [i for i, v in enumerate(base.valid[w]) if v]
            found = []
            for text, positions in ((q.strip(), q_pos), (passage, p_pos)):
                for m in self._mentions(text):
                    span = _token_span(offs, positions, m.start, m.end)
                    rows = table.lookup(m.candidates)
                    if span is not None and any(rows):
                        found.append((span[0], span[1], rows, list(m.priors)))
            out.append(found[: self.max_mentions])
        return LinkedWindows(**vars(base), mentions=out)

    def knowledge_batch(self, windows: Windows, idx: Sequence[int]) -> KnowledgeBatch | None:
        mentions = getattr(windows, "mentions", None)
        if not mentions:
            return None
        return KnowledgeBatch.build([mentions[i] for i in idx], self.device)

    def forward_windows(self, windows: Windows, idx: Sequence[int]):
        self.injector.context = self.knowledge_batch(windows, idx)
        try:
            return super().forward_windows(windows, idx)
        finally:
            self.injector.context = None

    # ---- K-Adapters ---------------------------------------------------------------------------
    def add_adapter(self, kb: str, adapter: KAdapter) -> None:
        self.injector.adapters[kb] = adapter.to(self.device)

    def remove_kb(self, kb: str) -> None:
        """Forget everything of KB ``kb``: its adapter, entity answers and entity vectors."""
        if kb in self.injector.adapters:
            del self.injector.adapters[kb]
        self.answerers.pop(kb, None)
        self.injector.table.remove_kb(kb)
        if self.linker is not None:
            self.linker.refresh()
        self._link_cache.clear()

    def load_adapters(self, models_dir: str | os.PathLike, kbs: Sequence[str], store=None) -> list[str]:
        """Load the K-Adapter artifact of every KB in ``kbs`` that has one trained for this reader
        (an adapter learned on another reader's states would be noise); returns those KBs."""
        return [self.attach(load_adapter_artifact(d), store) for d in adapter_dirs(models_dir, kbs, self.spec)]

    def attach(self, art: dict[str, Any], store=None) -> str:
        """Plug in a loaded adapter artifact (``load_adapter_artifact``): adapter, entity vectors, head."""
        from kira.kb.embeddings import load_embedder

        kb = art["kb"]
        self.add_adapter(kb, art["adapter"])
        emb = load_embedder(art["embedder"], device="cpu")
        vectors = emb.module.ent if getattr(emb, "module", None) is not None else emb._need()
        if int(vectors.shape[1]) == self.injector.table.dim:  # fusion reads one width; adapters need none
            self.injector.table.add_embedder(kb, emb)
        self.answerers[kb] = KBAnswerer(kb, emb, art["adapter"], art["head"], art["relations"], store)
        if self.linker is not None:
            self.linker.refresh()
        self._link_cache.clear()
        return kb

    # ---- entity answers -----------------------------------------------------------------------
    def question_states(self, questions: Sequence[str], grad: bool = False) -> torch.Tensor:
        """Final ``[CLS]`` state of each question read alone (with its mentions injected)."""
        with torch.inference_mode(not grad):
            return self._question_states(questions)

    def _question_states(self, questions: Sequence[str]) -> torch.Tensor:
        enc = self.tokenizer(list(questions), truncation=True, max_length=self.max_query_tokens,
                             return_offsets_mapping=True)
        wins = LinkedWindows(input_ids=enc["input_ids"], token_type_ids=enc.get("token_type_ids"),
                             offsets=[[tuple(o) for o in offs] for offs in enc["offset_mapping"]],
                             valid=[[False] * len(x) for x in enc["input_ids"]], pair=list(range(len(questions))))
        table = self.injector.table
        for w, q in enumerate(questions):
            pos = list(range(1, len(wins.input_ids[w]) - 1))
            found = []
            for m in self._mentions(q):
                span = _token_span(wins.offsets[w], pos, m.start, m.end)
                rows = table.lookup(m.candidates)
                if span is not None and any(rows):
                    found.append((span[0], span[1], rows, list(m.priors)))
            wins.mentions.append(found[: self.max_mentions])
        idx = list(range(len(questions)))
        self.injector.context = self.knowledge_batch(wins, idx)
        self.injector.adapters_on = True  # the KBs' adapters read the question for the entity head
        try:
            batch = collate(self.tokenizer, wins, idx, self.device)
            out = self.model.qa(**batch, output_hidden_states=True)
        finally:
            self.injector.context = None
            self.injector.adapters_on = False
        return out.hidden_states[-1][:, 0].float()

    def entity_answer_probs(self, answerer: KBAnswerer, question: str, cls_state: torch.Tensor,
                            ) -> tuple[list[str], torch.Tensor, float] | None:
        """Candidate entity ids, their probabilities and the relation classifier's confidence, or
        None when the question links no entity of the KB the embedder knows."""
        vocab = answerer.embedder.vocab
        heads = [c for m in self._mentions(question) for c in m.candidates[:1]
                 if c[0] == answerer.kb and c[1] in vocab.e2i]
        if not heads:
            return None
        h = heads[0][1]
        if len(vocab.entities) <= SMALL_KB or answerer.store is None:
            cands = [e for e in vocab.entities if e != h]
        else:
            near = {x for t in answerer.store.triples_about(answerer.kb, h) for x in (t.head, t.tail)}
            cands = sorted(e for e in near if e != h and e in vocab.e2i)
        if not cands:
            return None
        if cls_state.is_inference() and not torch.is_inference_mode_enabled():
            cls_state = cls_state.clone()  # a state from question_states() used where autograd is on
        rel_probs = torch.softmax(answerer.adapter.relation_logits(cls_state.to(self.device)).float().cpu(), -1)
        n_rel = len(answerer.relations)
        h_idx = vocab.entity_index([h]).repeat(n_rel)
        r_idx = vocab.relation_index(answerer.relations)
        scores = answerer.embedder.score_tails(h_idx, r_idx).float().cpu()[:, vocab.entity_index(cands)]
        return cands, answerer.head(rel_probs, scores), float(rel_probs.max())

    def read_batch(self, questions: Sequence[str], evidences: Sequence[list[Evidence]], top_n: int = 1,
                   allow_no_answer: bool = True) -> list[list[Answer]]:
        """Span answers, and where a KB's entity head is surer than the best span, its entity."""
        results = super().read_batch(questions, evidences, top_n, allow_no_answer)
        if not (self.entity_answers and self.answerers and any(results)):
            return results
        with torch.inference_mode():
            self._entity_answers(questions, results, top_n)
        return results

    def _entity_answers(self, questions: Sequence[str], results: list[list[Answer]], top_n: int) -> None:
        states = self.question_states(questions)
        for qi, q in enumerate(questions):
            if not results[qi]:  # no evidence read, nothing to cite: no answer (ReaderContract)
                continue
            best: tuple[float, str, str] | None = None
            for ans in self.answerers.values():
                got = self.entity_answer_probs(ans, q, states[qi])
                if got is None:
                    continue
                cands, probs, rel_conf = got
                j = int(torch.argmax(probs))
                if rel_conf < self.entity_min_prob or float(probs[j]) < self.entity_min_prob:
                    continue
                if best is None or float(probs[j]) > best[0]:
                    best = (float(probs[j]), ans.kb, cands[j])
            spans = [a for a in results[qi] if not a.no_answer]
            if best is None or best[0] <= max((a.score for a in spans), default=0.0):
                continue
            thr = self.threshold
            if results[qi][0].no_answer and thr is not None and best[0] < thr:
                continue  # abstaining stays right unless the entity head clears the same threshold
            kb, eid = best[1], best[2]
            store = self.answerers[kb].store
            names = store.get_entities(kb, [eid]) if store is not None else []
            text = names[0].name if names else eid.replace("_", " ")
            # it cites the passage the span reader ranked best: the entity rests on the question's link
            # and the KB's embedding and adapter, and nothing from link prediction enters the evidence
            cite = results[qi][0].evidence[:1]
            results[qi] = [Answer(text=text, score=best[0], evidence=cite, reader=f"{self.name}:entity",
                                  retriever=cite[0].retriever if cite else ""), *spans][:max(top_n, 1)]


def adapter_dirs(models_dir: str | os.PathLike, kbs: Sequence[str], reader_spec: str) -> list[Path]:
    """The adapter artifacts of ``kbs`` trained for the reader at ``reader_spec``."""
    want = str(Path(reader_spec).resolve())
    return [d for kb in kbs for d in kb_artifact_dirs(models_dir, kb)
            if (cfg := read_config(d)).get("type") == ADAPTER_TYPE and cfg.get("reader") in (None, want)]


def with_kb_adapters(reader: ExtractiveReader, models_dir: str | os.PathLike, store) -> ExtractiveReader:
    """``reader`` with the K-Adapters of the KBs in ``store`` (the answering snapshot: a hot swap to a
    version with a new KB builds a new pipeline, so it picks the new adapter up), or ``reader``
    itself when none of them has one."""
    from kira.kb.linking import EntityLinker

    kbs = store.list_kbs() if store is not None else []
    dirs = adapter_dirs(models_dir, kbs, reader.spec)
    if not dirs:
        return reader
    first = load_adapter_artifact(dirs[0])
    from kira.kb.embeddings import load_embedder

    emb = load_embedder(first["embedder"], device="cpu")
    vectors = emb.module.ent if getattr(emb, "module", None) is not None else emb._need()
    know = KnowledgeReader.wrap(reader, EntityTable.empty(int(vectors.shape[1])), EntityLinker(store, kbs=kbs))
    know.load_adapters(models_dir, kbs, store)
    return know


def encoder_layers(qa_model) -> torch.nn.ModuleList:
    """The transformer layers of a BERT-family encoder (where the injector hooks in)."""
    base = getattr(qa_model, "base_model", qa_model)
    layers = getattr(getattr(base, "encoder", None), "layer", None)
    if layers is None:
        raise ValueError(f"{type(qa_model).__name__}: knowledge injection needs a BERT-style encoder.layer list")
    return layers


# ---- adapter artifacts --------------------------------------------------------------------------
def save_adapter(models_dir: str | os.PathLike, kb: str, adapter: KAdapter, head: EntityAnswerHead,
                 relations: list[str], embedder_dir: str | os.PathLike, meta: dict[str, Any],
                 sources: list[dict] | None = None) -> Path:
    """``models/<kb>-adapter``: adapter + head weights, its relation classes, which embedder it reads."""
    from safetensors.torch import save_file

    d = kb_artifact_dir(models_dir, kb, "adapter")
    d.mkdir(parents=True, exist_ok=True)
    state = {f"adapter.{k}": v for k, v in adapter.state_dict().items()}
    state |= {f"head.{k}": v for k, v in head.state_dict().items()}
    save_file({k: v.detach().cpu().contiguous() for k, v in state.items()}, str(d / ADAPTER_FILE))
    (d / "relations.json").write_text(json.dumps(relations))
    write_config(d, {"type": ADAPTER_TYPE, "kb": kb, "hidden": adapter.up.out_features,
                     "bottleneck": adapter.down.out_features, "embedder": str(Path(embedder_dir).resolve()),
                     **meta}, sources)
    return d


def load_adapter_artifact(directory: str | os.PathLike, **_kw) -> dict[str, Any]:
    """``{"kb", "adapter", "head", "relations", "embedder", "config"}`` of an adapter artifact."""
    from safetensors.torch import load_file

    d = Path(directory)
    cfg = read_config(d)
    relations = json.loads((d / "relations.json").read_text())
    adapter = KAdapter(int(cfg["hidden"]), len(relations), int(cfg["bottleneck"]))
    head = EntityAnswerHead()
    state = load_file(str(d / ADAPTER_FILE))
    adapter.load_state_dict({k[8:]: v for k, v in state.items() if k.startswith("adapter.")})
    head.load_state_dict({k[5:]: v for k, v in state.items() if k.startswith("head.")})
    adapter.eval()
    return {"kb": cfg["kb"], "adapter": adapter, "head": head, "relations": relations,
            "embedder": cfg["embedder"], "config": cfg}
