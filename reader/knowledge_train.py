"""Training the knowledge-injected reader's pieces: fine-tuning with fusion, WKLM pretraining, and a
K-Adapter per KB (base frozen).

* ``finetune``: ``extractive_loss`` over ``ReaderExample`` batches; the new knowledge modules learn
  at a higher rate than the pretrained encoder (their gates start at zero).
* WKLM (Xiong et al. 2020): linked mentions in the workspace's text are replaced, half of the time,
  by another entity *of the same type* (type = the entity's hypernym/class in its KB,
  ``entity_types``); the encoder learns to detect replaced mentions (a span head) plus MLM on the
  other tokens (a head tied to the word embeddings, since kira's MiniLM ships without one).
* ``train_adapter``: a ``KAdapter`` for one KB learns relation classification of questions about
  that KB's facts (``kira.reader.questions.questions_from_kb``) with the reader frozen, and the
  entity-answer head's temperature from the same questions' gold tails.
"""

from __future__ import annotations

import random
import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from kira.kb.answer_types import TYPE_RELATIONS
from kira.reader.extractive import ExtractiveReader, ReaderExample, _hidden_size, extractive_loss
from kira.reader.knowledge import EntityAnswerHead, KAdapter
from kira.reader.knowledge_reader import KBAnswerer, KnowledgeReader
from kira.reader.train import make_batches, set_seed


def _schedule(opt: torch.optim.Optimizer, steps: int):
    warm = max(1, steps // 10)
    return torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (steps - s) / max(1, steps - warm))))


def _run(params: list[dict], steps: int, loss_at, log=None) -> dict[str, Any]:
    """``steps`` AdamW steps of ``loss_at(step)`` over parameter groups; losses and seconds."""
    opt = torch.optim.AdamW(params, weight_decay=0.01)
    sched = _schedule(opt, steps)
    losses, t0 = [], time.perf_counter()
    for step in range(steps):
        loss = loss_at(step)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for g in params for p in g["params"]], 1.0)
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        if log and (step + 1) % 10 == 0:
            log(f"step {step + 1}/{steps} loss {sum(losses[-10:]) / 10:.3f} ({time.perf_counter() - t0:.0f}s)")
    return {"steps": steps, "loss_first": losses[0] if losses else None,
            "loss_last": sum(losses[-10:]) / max(1, len(losses[-10:])), "seconds": round(time.perf_counter() - t0, 1)}


def _groups(model: nn.Module, lr: float, new_lr: float, new: Sequence[nn.Module]) -> list[dict]:
    new_ids = {id(p) for m in new for p in m.parameters()}
    old = [p for p in model.parameters() if p.requires_grad and id(p) not in new_ids]
    fresh = [p for m in new for p in m.parameters() if p.requires_grad]
    return [g for g in ({"params": old, "lr": lr}, {"params": fresh, "lr": new_lr}) if g["params"]]


def finetune(reader, examples: list[ReaderExample], steps: int, batch_size: int = 8, lr: float = 5e-5,
             new_lr: float = 1e-3, seed: int = 0, log=None) -> dict[str, Any]:
    """Fine-tune a reader (plain or knowledge) on ``examples`` for ``steps`` steps, same seed for all."""
    set_seed(seed)
    batches = make_batches(examples, batch_size, seed)
    new = [reader.injector.fusion] if isinstance(reader, KnowledgeReader) and reader.injector.fusion else []
    reader.model.train()
    res = _run(_groups(reader.model, lr, new_lr, new), steps,
               lambda s: extractive_loss(reader, batches[s % len(batches)]), log)
    reader.model.eval()
    return res


# ---- WKLM ---------------------------------------------------------------------------------------
def entity_types(store, kb: str) -> dict[str, str]:
    """Entity id -> its type: the first hypernym/class (``TYPE_RELATIONS``) of the entity in ``kb``."""
    rels = {r.id for r in store.list_relations(kb) if r.name.lower() in TYPE_RELATIONS or r.id.lower() in TYPE_RELATIONS}
    out: dict[str, str] = {}
    for t in store.iter_triples(kb):
        if t.relation in rels and t.head not in out:
            out[t.head] = t.tail
    return out


def replace_mentions(text: str, mentions: Sequence, types: dict[tuple[str, str], str],
                     by_type: dict[str, list[tuple[str, str]]], names: dict[tuple[str, str], str],
                     rng: random.Random, p: float = 0.5) -> tuple[str, list[tuple[int, int, int]]]:
    """WKLM's corruption: each typed mention is replaced, with probability ``p``, by the name of
    another entity of the same type. Returns the new text and ``(start, end, replaced)`` per mention."""
    out, labels, pos, shift = [], [], 0, 0
    for m in mentions:
        key = m.candidates[0]
        typ = types.get(key)
        if typ is None:
            continue
        pool = [e for e in by_type.get(typ, []) if e != key and names.get(e)]
        new = names[rng.choice(pool)] if pool and rng.random() < p else None
        out.append(text[pos:m.start])
        surface = new if new is not None else text[m.start:m.end]
        labels.append((m.start + shift, m.start + shift + len(surface), int(new is not None)))
        out.append(surface)
        shift += len(surface) - (m.end - m.start)
        pos = m.end
    out.append(text[pos:])
    return "".join(out), labels


class WKLMHeads(nn.Module):
    """Replacement detection on mention spans and an MLM head tied to the word embeddings."""

    def __init__(self, hidden: int, word_embeddings: nn.Embedding):
        super().__init__()
        self.detect = nn.Linear(hidden, 1)
        self.transform = nn.Sequential(nn.Linear(hidden, hidden), nn.GELU(), nn.LayerNorm(hidden))
        self.words = word_embeddings
        self.bias = nn.Parameter(torch.zeros(word_embeddings.num_embeddings))

    def mlm_logits(self, h: torch.Tensor) -> torch.Tensor:
        return self.transform(h) @ self.words.weight.T + self.bias


def wklm_pretrain(reader: ExtractiveReader, store, kbs: Sequence[str], texts: Sequence[str], linker,
                  steps: int, batch_size: int = 8, lr: float = 5e-5, max_length: int = 128,
                  mlm_prob: float = 0.15, seed: int = 0, log=None) -> dict[str, Any]:
    """WKLM on ``texts`` (the workspace's passages): replaced-entity detection + MLM, in place."""
    set_seed(seed)
    rng = random.Random(seed)
    types: dict[tuple[str, str], str] = {}
    names: dict[tuple[str, str], str] = {}
    for kb in kbs:
        for eid, typ in entity_types(store, kb).items():
            types[(kb, eid)] = typ
        ids = sorted({*types_ids(types, kb)})
        for i in range(0, len(ids), 20_000):
            names.update({(kb, e.id): e.name for e in store.get_entities(kb, ids[i:i + 20_000])})
    by_type: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for key, typ in types.items():
        by_type[typ].append(key)
    encoder = reader.model.qa.base_model
    tok = reader.tokenizer
    heads = WKLMHeads(_width(encoder), encoder.get_input_embeddings()).to(reader.device)
    texts = list(texts)
    gen = torch.Generator().manual_seed(seed)

    def loss_at(step: int) -> torch.Tensor:
        batch = [texts[(step * batch_size + i) % len(texts)] for i in range(batch_size)]
        corrupted = [replace_mentions(t, linker.candidate_mentions(t, 1), types, by_type, names, rng) for t in batch]
        enc = tok([c[0] for c in corrupted], truncation=True, max_length=max_length, padding=True,
                  return_offsets_mapping=True, return_tensors="pt")
        offsets = enc.pop("offset_mapping")
        ids = enc["input_ids"]
        in_mention = torch.zeros_like(ids, dtype=torch.bool)
        span_rows, span_labels = [], []
        for b, (_, labels) in enumerate(corrupted):
            for a, z, lab in labels:
                tokmask = (offsets[b, :, 0] < z) & (offsets[b, :, 1] > a) & (offsets[b, :, 1] > offsets[b, :, 0])
                if bool(tokmask.any()):
                    in_mention[b] |= tokmask
                    span_rows.append((b, tokmask))
                    span_labels.append(float(lab))
        special = (ids == tok.cls_token_id) | (ids == tok.sep_token_id) | (ids == tok.pad_token_id)
        mask = (torch.rand(ids.shape, generator=gen) < mlm_prob) & ~special & ~in_mention
        inputs = {k: v.to(reader.device) for k, v in enc.items()}
        inputs["input_ids"] = torch.where(mask, torch.full_like(ids, tok.mask_token_id), ids).to(reader.device)
        h = encoder(**inputs).last_hidden_state
        loss = h.sum() * 0.0
        if span_rows:
            pooled = torch.stack([h[b][m.to(h.device)].mean(0) for b, m in span_rows])
            loss = loss + nn.functional.binary_cross_entropy_with_logits(
                heads.detect(pooled).squeeze(-1), torch.tensor(span_labels, device=h.device))
        if bool(mask.any()):
            loss = loss + nn.functional.cross_entropy(heads.mlm_logits(h[mask.to(h.device)]).float(),
                                                      ids[mask].to(h.device))
        return loss

    encoder.train()
    res = _run(_groups(encoder, lr, 1e-3, [heads]), steps, loss_at, log)
    encoder.eval()
    res["n_typed_entities"] = len(types)
    return res


def types_ids(types: dict[tuple[str, str], str], kb: str) -> set[str]:
    """Entity ids of ``kb`` that occur in ``types`` as typed entities or as types."""
    return {k[1] for k in types if k[0] == kb} | {v for k, v in types.items() if k[0] == kb}


def _width(encoder: nn.Module) -> int:
    return int(encoder.config.hidden_size)


# ---- K-Adapter ----------------------------------------------------------------------------------
def train_adapter(reader: KnowledgeReader, store, kb: str, embedder, records: Sequence[dict], steps: int,
                  batch_size: int = 16, lr: float = 1e-3, bottleneck: int = 64, seed: int = 0,
                  log=None) -> tuple[KAdapter, EntityAnswerHead, list[str], dict[str, Any]]:
    """A K-Adapter for ``kb`` trained with the reader frozen: relation classification of questions
    about the KB's facts (``records`` from ``questions_from_kb``: ``question``, ``relation``,
    ``subject``, ``answers``) + the entity head's likelihood of the gold tail."""
    set_seed(seed)
    rel_ids = {r.name: r.id for r in store.list_relations(kb)}
    relations = list(embedder.vocab.relations)
    r2i = {r: i for i, r in enumerate(relations)}
    usable = [r for r in records if rel_ids.get(r["relation"], r["relation"]) in r2i]
    if not usable:
        raise ValueError(f"no questions about KB {kb!r} with relations the embedder knows")
    hidden = _hidden_size(reader.model.qa.config)
    adapter = KAdapter(hidden, len(relations), bottleneck)
    torch.manual_seed(seed)
    head = EntityAnswerHead()
    reader.model.requires_grad_(False)
    reader.add_adapter(kb, adapter)
    adapter.requires_grad_(True)
    names = {}
    for e in store.iter_entities(kb):
        names[e.name.lower()] = e.id
        for a in e.aliases:
            names.setdefault(a.lower(), e.id)
    answerer = KBAnswerer(kb, embedder, adapter, head, relations, store)
    rng = random.Random(seed)

    def loss_at(step: int) -> torch.Tensor:
        batch = [usable[rng.randrange(len(usable))] for _ in range(batch_size)]
        with torch.enable_grad():
            states = reader.question_states([r["question"] for r in batch], grad=True)
            gold = torch.tensor([r2i[rel_ids.get(r["relation"], r["relation"])] for r in batch], device=states.device)
            loss = nn.functional.cross_entropy(adapter.relation_logits(states), gold)
            ent_terms = []
            for r, s in zip(batch, states, strict=True):
                got = reader.entity_answer_probs(answerer, r["question"], s.detach())
                tails = {names.get(a.lower()) for a in r["answers"]}
                if got is None:
                    continue
                cands, probs, _ = got
                hit = [j for j, c in enumerate(cands) if c in tails]
                if hit:
                    ent_terms.append(-torch.log(probs[hit].sum().clamp_min(1e-9)))
            if ent_terms:
                loss = loss + torch.stack(ent_terms).mean()
        return loss

    reader.model.eval()  # the frozen base runs without dropout; the adapter has none
    res = _run([{"params": [*adapter.parameters(), *head.parameters()], "lr": lr}], steps, loss_at, log)
    res["n_questions"] = len(usable)
    return adapter, head, relations, res




# ---- a KB plugged in: its adapter -----------------------------------------------------------------
def kb_embedder_dir(models_dir, kb: str):
    """The KB's newest embedding artifact (TransE/H/D or KEPLER), or None."""
    from kira.artifacts import kb_artifact_dirs, read_config

    found = [d for d in kb_artifact_dirs(models_dir, kb) if read_config(d).get("type") in ("kge", "kepler")]
    return max(found, key=lambda d: (d / "kira.json").stat().st_mtime) if found else None


def build_kb_adapter(models_dir, store, kb: str, reader_spec: str, steps: int = 200, seed: int = 0,
                     log=None) -> dict[str, Any]:
    """Train and save ``models/<kb>-adapter`` for the reader ``reader_spec`` (``kira kb add --adapter``):
    the KB's embedder is its newest embedding artifact, or a TransE trained now (and saved with the KB)."""
    from pathlib import Path

    from kira.artifacts import kb_artifact_dir
    from kira.kb.embeddings import KGEmbedder, load_embedder
    from kira.kb.linking import EntityLinker
    from kira.reader.knowledge import EntityTable
    from kira.reader.knowledge_reader import save_adapter
    from kira.reader.questions import questions_from_kb

    t0 = time.perf_counter()
    sources = [s for s in store.list_sources() if s["name"] == kb]
    emb_dir = kb_embedder_dir(models_dir, kb)
    embedder_seconds = 0.0
    if emb_dir is None:
        emb = KGEmbedder("transe", device="cpu", seed=seed)
        emb.fit(list(store.iter_triples(kb)))
        emb_dir = emb.save(kb_artifact_dir(models_dir, kb, "transe"), sources=sources)
        embedder_seconds = round(time.perf_counter() - t0, 1)
    emb = load_embedder(emb_dir, device="cpu")
    reader = ExtractiveReader.load(reader_spec, device="cpu")
    table = EntityTable.empty(int(emb.module.ent.shape[1]) if getattr(emb, "module", None) is not None
                              else int(emb._need().shape[1]))
    table.add_embedder(kb, emb)
    know = KnowledgeReader.wrap(reader, table, EntityLinker(store, kbs=[kb]))
    records = questions_from_kb(store, kb, heldout=0.0, seed=seed + 1, limit=3000)
    adapter, head, relations, info = train_adapter(know, store, kb, emb, records, steps, seed=seed, log=log)
    d = save_adapter(models_dir, kb, adapter, head, relations, emb_dir,
                     {"reader": str(Path(reader_spec).resolve()), "train": info}, sources)
    return {"path": str(d), "embedder": str(emb_dir), "embedder_seconds": embedder_seconds,
            "adapter_seconds": info["seconds"], "steps": steps, "n_questions": info["n_questions"],
            "loss_first": info["loss_first"], "loss_last": info["loss_last"]}
