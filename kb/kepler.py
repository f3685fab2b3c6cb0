"""KEPLER (Wang et al. 2021): a text encoder that is also a KB embedding.

Each entity is embedded by the zoo encoder from ``"<name>: <description>"`` (first-token or mean
pooled as the checkpoint prescribes, L2-normalised); each relation is a learned vector; the
triple score is TransE's ``-||h + r - t||``. The knowledge-embedding loss is KEPLER's
negative-sampling loss ``-log σ(s(γ - d(h,t))) - mean log σ(s(d(h',t') - γ))`` against head- or
tail-corrupted triples (in-batch entities by default, so negatives cost no extra encoding), with
a learned sharpness ``s`` because unit-norm distances are small, trained jointly with a masked-language-model loss on the same entity
descriptions (shared encoder weights, the MLM head of the zoo's ``mlm`` family).

Because entities are embedded from text, an entity never seen in training gets a vector from
its description: :meth:`Kepler.set_entities` re-embeds any entity set, which is how inductive
link prediction (entity-disjoint test set) is evaluated.

Artifact: the MLM model + tokenizer + ``kira.json`` via ``zoo.save_artifact``, plus
``relations.safetensors``/``relations.json`` and ``entities.jsonl`` (id, name, description).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from kira.errors import KiraError, ModelNotFoundError
from kira.kb.embeddings import Vocab
from kira.plm import zoo
from kira.plm.device import autocast, pick_device
from kira.plm.encoder import pool
from kira.schema import Entity, Triple


def entity_text(e: Entity) -> str:
    return f"{e.name}: {e.description}" if e.description else e.name


class Kepler:
    """Joint KE + MLM training of a zoo encoder; implements ``KBEmbedder`` and the evaluate face."""

    def __init__(self, encoder: str = "tiny-bert", margin: float = 1.0, lr: float = 1e-3,
                 relation_lr: float = 1e-2, epochs: int = 1, batch_size: int = 32, num_negs: int = 4,
                 mlm_weight: float = 1.0, mlm_prob: float = 0.15, max_length: int = 32,
                 pooling: str | None = None, p_norm: int = 2, seed: int = 0, device: str = "auto",
                 bf16_inference: bool = True, threads: int | None = None, in_batch_negatives: bool = True):
        self.spec = encoder
        self.cfg = dict(margin=margin, lr=lr, relation_lr=relation_lr, epochs=epochs, batch_size=batch_size,
                        num_negs=num_negs, mlm_weight=mlm_weight, mlm_prob=mlm_prob, max_length=max_length,
                        pooling=pooling, p_norm=p_norm, seed=seed, in_batch_negatives=in_batch_negatives)
        self.device = pick_device(device)
        self.bf16 = bf16_inference
        torch.manual_seed(seed)
        self.tokenizer, self.mlm = zoo.load(encoder, "mlm")
        if pooling is None:  # the checkpoint's own sentence pooling (mean for MiniLM), else first token
            from kira.plm.encoder import sentence_transformers_pooling

            st = sentence_transformers_pooling(zoo.resolve(encoder).path)
            self.cfg["pooling"] = st[0] if st else "cls"
        self.log_scale = nn.Parameter(torch.tensor(math.log(8.0), device=self.device))
        # small encoders on CPU run fastest single-threaded (thread hand-offs dominate tiny matmuls)
        self.threads = threads or (1 if self.device.type == "cpu" and self.mlm.config.hidden_size <= 128 else None)
        self.mlm.to(self.device)
        self.relations: list[str] = []
        self.rel: nn.Parameter | None = None
        self.vocab: Vocab | None = None
        self.entities: dict[str, Entity] = {}
        self._table: torch.Tensor | None = None  # [E, d] entity vectors of the current vocab
        self.meta: dict[str, Any] = {}

    # ---- encoding -----------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        return int(self.mlm.config.hidden_size)

    def _tok(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        b = self.tokenizer(list(texts), padding=True, truncation=True, max_length=self.cfg["max_length"],
                           return_tensors="pt")
        return {k: v.to(self.device) for k, v in b.items()}

    def _embed_batch(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        hidden = self.mlm.base_model(**batch).last_hidden_state
        return nn.functional.normalize(pool(hidden.float(), batch["attention_mask"], self.cfg["pooling"]), dim=-1)

    def embed_texts(self, texts: Sequence[str]) -> torch.Tensor:
        return self._embed_batch(self._tok(texts))

    @torch.inference_mode()
    def encode_entities(self, entities: Sequence[Entity], batch_size: int = 128) -> torch.Tensor:
        """Entity vectors [n, d] from their text (length-sorted batches, bf16 autocast)."""
        self.mlm.eval()
        texts = [entity_text(e) for e in entities]
        out = torch.zeros(len(texts), self.dim, device=self.device)
        order = np.argsort([-len(t) for t in texts], kind="stable")
        for s in range(0, len(texts), batch_size):
            idx = order[s:s + batch_size]
            with autocast(self.device, self.bf16):
                vecs = self._embed_batch(self._tok([texts[i] for i in idx]))
            out[torch.as_tensor(idx, device=self.device)] = vecs.float()
        return out

    def set_entities(self, entities: Iterable[Entity]) -> None:
        """(Re)embed the candidate entity set — including entities never seen in training."""
        ents = sorted({e.id: e for e in entities}.values(), key=lambda e: e.id)
        self.entities = {e.id: e for e in ents}
        self.vocab = Vocab([e.id for e in ents], list(self.relations))
        before = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(self.threads)
        try:
            self._table = self.encode_entities(ents)
        finally:
            torch.set_num_threads(before)

    # ---- training -----------------------------------------------------------------------------
    def _mlm_loss(self, texts: Sequence[str], gen: torch.Generator) -> torch.Tensor:
        batch = self._tok(texts)
        ids = batch["input_ids"]
        special = torch.zeros_like(ids, dtype=torch.bool)
        for sid in {self.tokenizer.cls_token_id, self.tokenizer.sep_token_id, self.tokenizer.pad_token_id}:
            if sid is not None:
                special |= ids == sid
        probs = torch.rand(ids.shape, generator=gen, device="cpu").to(ids.device)
        mask = (probs < self.cfg["mlm_prob"]) & ~special
        if not bool(mask.any()):
            return torch.zeros((), device=self.device)
        inputs = dict(batch, input_ids=torch.where(mask, torch.full_like(ids, self.tokenizer.mask_token_id), ids))
        head = getattr(self.mlm, "cls", None) or getattr(self.mlm, "lm_head", None)
        if head is None:  # unknown architecture: the full forward with labels
            return self.mlm(**inputs, labels=torch.where(mask, ids, torch.full_like(ids, -100))).loss
        # vocabulary logits only at masked positions (the [B, L, vocab] tensor dominates otherwise)
        hidden = self.mlm.base_model(**inputs).last_hidden_state
        return nn.functional.cross_entropy(head(hidden[mask]).float(), ids[mask])

    def _dist(self, x: torch.Tensor) -> torch.Tensor:
        return x.abs().sum(-1) if self.cfg["p_norm"] == 1 else x.pow(2).sum(-1).clamp_min(1e-12).sqrt()

    def fit(self, triples: Iterable[Triple], entities: Iterable[Entity] = (), relations: Iterable[str] = (),
            log_every: int = 0) -> dict[str, Any]:
        """Train on ``triples``; ``entities`` give names/descriptions (ids without one use the id)."""
        before = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(self.threads)
        try:
            return self._fit(list(triples), entities, relations, log_every)
        finally:
            torch.set_num_threads(before)

    def _fit(self, triples: list[Triple], entities: Iterable[Entity], relations: Iterable[str],
             log_every: int) -> dict[str, Any]:
        triples = list(triples)
        if not triples:
            raise KiraError("no training triples")
        ents = {e.id: e for e in entities}
        for t in triples:
            for x in (t.head, t.tail):
                ents.setdefault(x, Entity(id=x, kb=t.kb, name=x.replace("_", " ")))
        self.relations = sorted(set(relations) | {t.relation for t in triples})
        r2i = {r: i for i, r in enumerate(self.relations)}
        train_ids = sorted({x for t in triples for x in (t.head, t.tail)})
        e2i = {e: i for i, e in enumerate(train_ids)}
        data = torch.tensor([(e2i[t.head], r2i[t.relation], e2i[t.tail]) for t in triples], dtype=torch.long)
        texts = [entity_text(ents[e]) for e in train_ids]
        c = self.cfg
        gen = torch.Generator().manual_seed(c["seed"])
        self.rel = nn.Parameter((torch.rand(len(self.relations), self.dim, generator=gen) * 2 - 1)
                                * (0.5 / math.sqrt(self.dim)))
        self.rel.data = self.rel.data.to(self.device)
        opt = torch.optim.AdamW([{"params": self.mlm.parameters(), "lr": c["lr"]},
                                 {"params": [self.rel, self.log_scale], "lr": c["relation_lr"], "weight_decay": 0.0}])
        self.mlm.train()
        losses, ke_losses, mlm_losses = [], [], []
        start = time.perf_counter()
        n, step = len(data), 0
        for _epoch in range(c["epochs"]):
            perm = torch.randperm(n, generator=gen)
            for s in range(0, n, c["batch_size"]):
                pos = data[perm[s:s + c["batch_size"]]]
                b = len(pos)
                k = c["num_negs"]
                extra = (torch.empty(0, dtype=torch.long) if c["in_batch_negatives"]
                         else torch.randint(0, len(train_ids), (b * k,), generator=gen))
                uniq, inv = torch.unique(torch.cat([pos[:, 0], pos[:, 2], extra]), return_inverse=True)
                vecs = self.embed_texts([texts[i] for i in uniq.tolist()])
                hi, ti = inv[:b], inv[b:2 * b]
                if c["in_batch_negatives"]:  # corrupt with the batch's other entities: no extra encoding
                    ni = torch.randint(0, len(uniq), (b, k), generator=gen)
                else:
                    ni = inv[2 * b:].view(b, k)
                r = self.rel[pos[:, 1].to(self.device)]
                h, t = vecs[hi.to(self.device)], vecs[ti.to(self.device)]
                neg = vecs[ni.to(self.device)]  # [b, k, d]
                side = (torch.arange(k) % 2 == 0).to(self.device)[None, :, None]  # even: corrupt head
                nh = torch.where(side, neg, h[:, None])
                nt = torch.where(side, t[:, None], neg)
                d_pos = self._dist(h + r - t)
                d_neg = self._dist(nh + r[:, None] - nt)
                scale = self.log_scale.exp()  # learned sharpness: unit-norm distances are small
                ke = -(nn.functional.logsigmoid(scale * (c["margin"] - d_pos)).mean()
                       + nn.functional.logsigmoid(scale * (d_neg - c["margin"])).mean())
                mlm = self._mlm_loss([texts[i] for i in pos[:, 0].tolist()], gen) if c["mlm_weight"] else torch.zeros(())
                loss = ke + c["mlm_weight"] * mlm
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                losses.append(float(loss.detach()))
                ke_losses.append(float(ke.detach()))
                mlm_losses.append(float(mlm.detach()))
                step += 1
                if log_every and step % log_every == 0:
                    print(f"step {step} loss {np.mean(losses[-log_every:]):.4f} ke {np.mean(ke_losses[-log_every:]):.4f} "
                          f"mlm {np.mean(mlm_losses[-log_every:]):.4f}", flush=True)
        secs = time.perf_counter() - start
        self.mlm.eval()
        self.set_entities(list(ents.values()))
        self.meta.update({"n_train": n, "seconds": secs, "final_loss": losses[-1]})
        kbs = {t.kb for t in triples}
        if len(kbs) == 1:  # the artifact says which KB it belongs to (removed with it)
            self.meta["kb"] = kbs.pop()
        return {"losses": losses, "ke_losses": ke_losses, "mlm_losses": mlm_losses, "seconds": secs,
                "triples_per_s": n * c["epochs"] / max(secs, 1e-9)}

    # ---- scoring (KBEmbedder + evaluate face) ---------------------------------------------------
    def _need(self) -> torch.Tensor:
        if self._table is None or self.rel is None or self.vocab is None:
            raise KiraError("KEPLER is not trained; call fit() or load an artifact")
        return self._table

    @torch.inference_mode()
    def score_tails(self, h: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        tab = self._need()
        q = tab[h.to(self.device)] + self.rel[r.to(self.device)]
        return -torch.cdist(q, tab, p=self.cfg["p_norm"])

    @torch.inference_mode()
    def score_heads(self, r: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        tab = self._need()
        q = tab[t.to(self.device)] - self.rel[r.to(self.device)]
        return -torch.cdist(q, tab, p=self.cfg["p_norm"])

    @torch.inference_mode()
    def score(self, heads: np.ndarray, relations: np.ndarray, tails: np.ndarray) -> np.ndarray:
        tab = self._need()
        h, r, t = (self.vocab.entity_index(heads), self.vocab.relation_index(relations), self.vocab.entity_index(tails))
        x = tab[h.to(self.device)] + self.rel[r.to(self.device)] - tab[t.to(self.device)]
        return (-self._dist(x)).float().cpu().numpy()

    def rank_tails(self, head: str, relation: str, k: int = 10) -> list[tuple[str, float]]:
        self._need()
        s = self.score_tails(self.vocab.entity_index([head]), self.vocab.relation_index([relation]))[0]
        top = torch.topk(s, min(k, s.shape[0]))
        return [(self.vocab.entities[i], float(v)) for v, i in zip(top.values.tolist(), top.indices.tolist(), strict=True)]

    # ---- artifacts ----------------------------------------------------------------------------
    def save(self, directory: str | os.PathLike, extra: dict[str, Any] | None = None) -> Path:
        from safetensors.torch import save_file

        self._need()
        d = zoo.save_artifact(directory, self.mlm, self.tokenizer,
                              {"type": "kepler", "base": self.spec, **self.cfg, **self.meta, **(extra or {})})
        save_file({"relations": self.rel.detach().cpu().contiguous(),
                   "log_scale": self.log_scale.detach().cpu().reshape(1)}, str(Path(d) / "relations.safetensors"))
        (Path(d) / "relations.json").write_text(json.dumps(self.relations))
        with open(Path(d) / "entities.jsonl", "w", encoding="utf-8") as fh:
            for e in self.entities.values():
                fh.write(json.dumps({"id": e.id, "kb": e.kb, "name": e.name, "description": e.description}) + "\n")
        return Path(d)

    @classmethod
    def load(cls, directory: str | os.PathLike, device: str = "auto") -> Kepler:
        from safetensors.torch import load_file

        d = Path(directory)
        cfg = zoo.artifact_config(d)
        if cfg.get("type") != "kepler":
            raise ModelNotFoundError(f"{d}: not a KEPLER artifact")
        keys = ("margin", "lr", "relation_lr", "epochs", "batch_size", "num_negs", "mlm_weight", "mlm_prob",
                "max_length", "pooling", "p_norm", "seed", "in_batch_negatives")
        m = cls(str(d), device=device, **{k: cfg[k] for k in keys if k in cfg})
        m.spec = cfg.get("base", str(d))
        m.meta = {k: v for k, v in cfg.items() if k not in keys and k not in ("type", "base")}
        m.relations = json.loads((d / "relations.json").read_text())
        weights = load_file(str(d / "relations.safetensors"))
        m.rel = nn.Parameter(weights["relations"].to(m.device))
        m.log_scale = nn.Parameter(weights["log_scale"].reshape(()).to(m.device))
        ents = [Entity(id=x["id"], kb=x.get("kb", ""), name=x["name"], description=x.get("description", ""))
                for x in map(json.loads, (d / "entities.jsonl").read_text(encoding="utf-8").splitlines())]
        m.set_entities(ents)
        return m
