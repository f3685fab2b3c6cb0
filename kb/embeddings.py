"""Translational KB embeddings: TransE, TransH, TransD, trained fast and saved as artifacts.

* TransE (Bordes et al. 2013): ``score = -||h + r - t||_p``; entities renormalised to unit L2 after
  every step (the paper normalises before each minibatch — the same constraint).
* TransH (Wang et al. 2014): entities projected onto a relation hyperplane with unit normal ``w_r``,
  ``h⊥ = h - (w_r·h) w_r``, then translated by ``d_r``; entity norms kept ≤ 1.
* TransD (Ji et al. 2015): dynamic projection ``h⊥ = h + (h_p·h) r_p`` (``M_rh = r_p h_pᵀ + I``
  with equal entity and relation widths); entity and relation norms kept ≤ 1.

Training is margin ranking (``relu(margin - s(pos) + s(neg))``) against head- or tail-corrupted
triples, half of each batch corrupted on each side as in PyKEEN's basic sampler, with fully
vectorised negative sampling and dense Adam on whichever device ``pick_device`` gives. Scoring all
entities at once (for ranking) uses the expansion ``|x - q|² = |x|² - 2x·q + |q|²`` extended with
the projection terms, i.e. matrix products instead of a [batch, entities, dim] tensor; L1 falls
back to entity chunks.

An artifact is a directory: ``weights.safetensors``, ``kira.json`` (model config),
``entities.json`` and ``relations.json`` (the id vocabularies, position = index).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from kira.artifacts import write_config
from kira.errors import KiraError, ModelNotFoundError
from kira.plm.device import pick_device, set_threads
from kira.schema import Triple

MODELS = ("transe", "transh", "transd")


# ---- scoring modules ----------------------------------------------------------------------------
def _uniform(n: int, d: int, gen: torch.Generator) -> torch.Tensor:
    bound = 6 / math.sqrt(d)
    return (torch.rand(n, d, generator=gen) * 2 - 1) * bound


def _dist(x: torch.Tensor, p: int) -> torch.Tensor:
    return x.abs().sum(-1) if p == 1 else x.pow(2).sum(-1).clamp_min(1e-12).sqrt()


def _sq_to_dist(sq: torch.Tensor, p: int) -> torch.Tensor:
    return sq.clamp_min(1e-12).sqrt()


class TransE(nn.Module):
    def __init__(self, num_entities: int, num_relations: int, dim: int, p_norm: int = 1, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.p = p_norm
        self.ent = nn.Parameter(nn.functional.normalize(_uniform(num_entities, dim, g), dim=-1))
        self.rel = nn.Parameter(nn.functional.normalize(_uniform(num_relations, dim, g), dim=-1))

    def score_hrt(self, h: torch.Tensor, r: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return -_dist(self.ent[h] + self.rel[r] - self.ent[t], self.p)

    def score_t(self, h: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        return -torch.cdist(self.ent[h] + self.rel[r], self.ent, p=self.p)

    def score_h(self, r: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return -torch.cdist(self.ent[t] - self.rel[r], self.ent, p=self.p)

    @torch.no_grad()
    def post_step(self) -> None:
        self.ent.data = nn.functional.normalize(self.ent.data, dim=-1)


def _renorm_(w: torch.Tensor, max_norm: float = 1.0) -> None:
    n = w.norm(dim=-1, keepdim=True)
    w.mul_(torch.where(n > max_norm, max_norm / n, torch.ones_like(n)))


def _chunked_l1(x_all: torch.Tensor, proj, q: torch.Tensor, chunk_elems: int = 1 << 24) -> torch.Tensor:
    """-L1 distance of every projected candidate to each query: proj(x_chunk) → [B, C, d]."""
    b, d = q.shape
    c = max(1, chunk_elems // max(1, b * d))
    out = [-(proj(x_all[s:s + c]) - q[:, None]).abs().sum(-1) for s in range(0, x_all.shape[0], c)]
    return torch.cat(out, dim=1)


class TransH(nn.Module):
    def __init__(self, num_entities: int, num_relations: int, dim: int, p_norm: int = 2, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.p = p_norm
        self.ent = nn.Parameter(nn.functional.normalize(_uniform(num_entities, dim, g), dim=-1))
        self.rel = nn.Parameter(_uniform(num_relations, dim, g))
        self.normal = nn.Parameter(_uniform(num_relations, dim, g))

    def _w(self, r: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.normal[r], dim=-1)

    @staticmethod
    def _proj(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return x - (x * w).sum(-1, keepdim=True) * w

    def score_hrt(self, h, r, t):
        w = self._w(r)
        return -_dist(self._proj(self.ent[h], w) + self.rel[r] - self._proj(self.ent[t], w), self.p)

    def _all(self, q: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """-dist(x⊥, q) for every entity x, with x⊥ = x - (w·x)w and |w| = 1."""
        x = self.ent
        if self.p == 1:
            return _chunked_l1(x, lambda xc: xc[None] - (xc @ w.T).T[..., None] * w[:, None], q)
        wx = w @ x.T  # [B, E]
        sq = (x * x).sum(-1)[None] - wx * wx - 2 * q @ x.T + 2 * wx * (w * q).sum(-1, keepdim=True) \
            + (q * q).sum(-1, keepdim=True)
        return -_sq_to_dist(sq, self.p)

    def score_t(self, h, r):
        w = self._w(r)
        return self._all(self._proj(self.ent[h], w) + self.rel[r], w)

    def score_h(self, r, t):
        w = self._w(r)
        return self._all(self._proj(self.ent[t], w) - self.rel[r], w)

    @torch.no_grad()
    def post_step(self) -> None:
        _renorm_(self.ent.data)


class TransD(nn.Module):
    def __init__(self, num_entities: int, num_relations: int, dim: int, p_norm: int = 2, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.p = p_norm
        self.ent = nn.Parameter(nn.functional.normalize(_uniform(num_entities, dim, g), dim=-1))
        self.rel = nn.Parameter(nn.functional.normalize(_uniform(num_relations, dim, g), dim=-1))
        self.ent_p = nn.Parameter(_uniform(num_entities, dim, g) * 0.1)
        self.rel_p = nn.Parameter(_uniform(num_relations, dim, g) * 0.1)

    def _proj(self, e: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        x = self.ent[e]
        return x + (self.ent_p[e] * x).sum(-1, keepdim=True) * self.rel_p[r]

    def score_hrt(self, h, r, t):
        return -_dist(self._proj(h, r) + self.rel[r] - self._proj(t, r), self.p)

    def _all(self, q: torch.Tensor, rp: torch.Tensor) -> torch.Tensor:
        """-dist(x⊥, q) for every entity x, with x⊥ = x + a_x r_p and a_x = x_p·x."""
        x = self.ent
        a = (self.ent_p * x).sum(-1)  # [E]
        if self.p == 1:
            return _chunked_l1(torch.arange(x.shape[0], device=x.device),
                               lambda idx: x[idx][None] + a[idx][None, :, None] * rp[:, None], q)
        xr = rp @ x.T  # [B, E]
        sq = (x * x).sum(-1)[None] + (a * a)[None] * (rp * rp).sum(-1, keepdim=True) + (q * q).sum(-1, keepdim=True) \
            + 2 * a[None] * xr - 2 * q @ x.T - 2 * a[None] * (rp * q).sum(-1, keepdim=True)
        return -_sq_to_dist(sq, self.p)

    def score_t(self, h, r):
        return self._all(self._proj(h, r) + self.rel[r], self.rel_p[r])

    def score_h(self, r, t):
        return self._all(self._proj(t, r) - self.rel[r], self.rel_p[r])

    @torch.no_grad()
    def post_step(self) -> None:
        _renorm_(self.ent.data)
        _renorm_(self.rel.data)


MODEL_CLASSES = {"transe": TransE, "transh": TransH, "transd": TransD}


# ---- training -----------------------------------------------------------------------------------
def corrupt(pos: torch.Tensor, num_negs: int, num_entities: int, gen: torch.Generator | None = None) -> torch.Tensor:
    """Negatives [B*num_negs, 3]: first half of the rows get a new head, the rest a new tail; the
    replacement never equals the original (draw from E-1 and skip it), as in PyKEEN."""
    neg = pos.repeat_interleave(num_negs, dim=0)
    n = neg.shape[0]
    half = (n + 1) // 2
    col = torch.full((n,), 2, dtype=torch.long, device=pos.device)
    col[:half] = 0
    orig = neg.gather(1, col[:, None]).squeeze(1)
    rnd = torch.randint(0, num_entities - 1, (n,), device=pos.device, generator=gen)
    rnd = rnd + (rnd >= orig).long()
    neg.scatter_(1, col[:, None], rnd[:, None])
    return neg


@dataclass
class TrainConfig:
    model: str = "transe"
    dim: int = 50
    p_norm: int | None = None  # None: 1 for TransE, 2 for TransH/TransD
    margin: float = 1.0
    lr: float = 0.01
    epochs: int = 100
    batch_size: int = 256
    num_negs: int = 1
    seed: int = 0
    device: str = "auto"
    threads: int | None = None  # None: leave torch's setting (small KBs train fastest on 1 thread)

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise KiraError(f"unknown KB embedding model {self.model!r}; choose from {', '.join(MODELS)}")
        if self.p_norm is None:
            self.p_norm = 1 if self.model == "transe" else 2
        if self.p_norm not in (1, 2):
            raise KiraError("p_norm must be 1 or 2")


def train_ids(model: nn.Module, train: torch.Tensor, cfg: TrainConfig, num_entities: int,
              log_every: int = 0) -> dict[str, Any]:
    """Train ``model`` on id triples [N, 3] in place; returns losses, seconds and triples/s."""
    device = next(model.parameters()).device
    threads_before = torch.get_num_threads()
    if cfg.threads:
        set_threads(cfg.threads)
    elif device.type == "cpu" and num_entities * cfg.dim * cfg.batch_size < (1 << 27):
        # tiny per-step tensors: thread hand-offs cost more than they save (and hurt on busy hosts)
        torch.set_num_threads(1)
    try:
        return _train_loop(model, train, cfg, num_entities, log_every, device)
    finally:
        torch.set_num_threads(threads_before)


def _train_loop(model: nn.Module, train: torch.Tensor, cfg: TrainConfig, num_entities: int, log_every: int,
                device: torch.device) -> dict[str, Any]:
    train = train.to(device)
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    n = train.shape[0]
    losses = []
    start = time.perf_counter()
    model.train()
    for epoch in range(cfg.epochs):
        perm = torch.randperm(n, device=device, generator=gen)
        total = torch.zeros((), device=device)
        for s in range(0, n, cfg.batch_size):
            pos = train[perm[s:s + cfg.batch_size]]
            neg = corrupt(pos, cfg.num_negs, num_entities, gen)
            ps = model.score_hrt(pos[:, 0], pos[:, 1], pos[:, 2])
            ns = model.score_hrt(neg[:, 0], neg[:, 1], neg[:, 2]).view(pos.shape[0], cfg.num_negs)
            loss = torch.relu(cfg.margin - ps[:, None] + ns).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            model.post_step()
            total += loss.detach() * pos.shape[0]
        losses.append(float(total) / n)
        if log_every and (epoch + 1) % log_every == 0:
            print(f"epoch {epoch + 1}/{cfg.epochs} loss {losses[-1]:.4f}")
    if device.type == "cuda":
        torch.cuda.synchronize()
    secs = time.perf_counter() - start
    model.eval()
    return {"losses": losses, "seconds": secs, "triples_per_s": n * cfg.epochs / max(secs, 1e-9)}


# ---- the embedder (kira.schema.KBEmbedder) ------------------------------------------------------
@dataclass
class Vocab:
    entities: list[str] = field(default_factory=list)
    relations: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.e2i = {e: i for i, e in enumerate(self.entities)}
        self.r2i = {r: i for i, r in enumerate(self.relations)}

    @classmethod
    def from_triples(cls, triples: Iterable[Triple], entities: Iterable[str] = (),
                     relations: Iterable[str] = ()) -> Vocab:
        es, rs = set(entities), set(relations)
        for t in triples:
            es.update((t.head, t.tail))
            rs.add(t.relation)
        return cls(sorted(es), sorted(rs))

    def ids(self, triples: Iterable[Triple]) -> torch.Tensor:
        try:
            rows = [(self.e2i[t.head], self.r2i[t.relation], self.e2i[t.tail]) for t in triples]
        except KeyError as e:
            raise KiraError(f"id {e.args[0]!r} is not in the embedding vocabulary") from e
        return torch.tensor(rows, dtype=torch.long).view(-1, 3)

    def entity_index(self, ids: Sequence | np.ndarray) -> torch.Tensor:
        return self._index(ids, self.e2i, "entity")

    def relation_index(self, ids: Sequence | np.ndarray) -> torch.Tensor:
        return self._index(ids, self.r2i, "relation")

    @staticmethod
    def _index(ids, table: dict[str, int], what: str) -> torch.Tensor:
        arr = np.asarray(ids)
        if arr.dtype.kind in "iu":
            return torch.as_tensor(arr, dtype=torch.long)
        try:
            return torch.tensor([table[str(x)] for x in arr.ravel()], dtype=torch.long)
        except KeyError as e:
            raise KiraError(f"unknown {what} {e.args[0]!r}") from e


class KGEmbedder:
    """TransE/TransH/TransD behind the ``KBEmbedder`` protocol (``fit``, ``score``, ``rank_tails``)."""

    def __init__(self, model: str = "transe", **cfg: Any):
        self.cfg = TrainConfig(model=model, **cfg)
        self.device = pick_device(self.cfg.device)
        self.vocab: Vocab | None = None
        self.module: nn.Module | None = None
        self.meta: dict[str, Any] = {}

    def _build(self, vocab: Vocab) -> nn.Module:
        cls = MODEL_CLASSES[self.cfg.model]
        return cls(len(vocab.entities), len(vocab.relations), self.cfg.dim, self.cfg.p_norm, self.cfg.seed).to(self.device)

    def fit(self, triples: Iterable[Triple], entities: Iterable[str] = (), relations: Iterable[str] = (),
            log_every: int = 0) -> dict[str, Any]:
        """Train on ``triples`` (all of them: pass the train split). ``entities``/``relations`` widen
        the vocabulary so valid/test ids that never occur in training still get a (random) vector."""
        triples = list(triples)
        if not triples:
            raise KiraError("no training triples")
        self.vocab = Vocab.from_triples(triples, entities, relations)
        self.module = self._build(self.vocab)
        report = train_ids(self.module, self.vocab.ids(triples), self.cfg, len(self.vocab.entities), log_every)
        self.meta.update({"n_train": len(triples), "seconds": report["seconds"],
                          "triples_per_s": report["triples_per_s"], "final_loss": report["losses"][-1]})
        return report

    def _need(self) -> nn.Module:
        if self.module is None or self.vocab is None:
            raise KiraError("the embedder is not trained; call fit() or load an artifact")
        return self.module

    @torch.inference_mode()
    def score(self, heads: np.ndarray, relations: np.ndarray, tails: np.ndarray) -> np.ndarray:
        """Plausibility (higher is better) of each (head, relation, tail); ids or vocab indices."""
        m = self._need()
        h, r, t = (self.vocab.entity_index(heads), self.vocab.relation_index(relations),
                   self.vocab.entity_index(tails))
        return m.score_hrt(h.to(self.device), r.to(self.device), t.to(self.device)).float().cpu().numpy()

    @torch.inference_mode()
    def score_tails(self, h: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        return self._need().score_t(h.to(self.device), r.to(self.device))

    @torch.inference_mode()
    def score_heads(self, r: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self._need().score_h(r.to(self.device), t.to(self.device))

    def rank_tails(self, head: str, relation: str, k: int = 10) -> list[tuple[str, float]]:
        """The ``k`` most plausible tails for (head, relation), best first."""
        self._need()
        s = self.score_tails(self.vocab.entity_index([head]), self.vocab.relation_index([relation]))[0]
        top = torch.topk(s, min(k, s.shape[0]))
        return [(self.vocab.entities[i], float(v)) for v, i in zip(top.values.tolist(), top.indices.tolist(), strict=True)]

    def rank_heads(self, relation: str, tail: str, k: int = 10) -> list[tuple[str, float]]:
        self._need()
        s = self.score_heads(self.vocab.relation_index([relation]), self.vocab.entity_index([tail]))[0]
        top = torch.topk(s, min(k, s.shape[0]))
        return [(self.vocab.entities[i], float(v)) for v, i in zip(top.values.tolist(), top.indices.tolist(), strict=True)]

    # ---- artifacts ------------------------------------------------------------------------------
    def save(self, directory: str | os.PathLike, extra: dict[str, Any] | None = None,
             sources: list[dict[str, Any]] | None = None) -> Path:
        """Weights, vocabularies and ``kira.json`` (with the KB sources it learned from, so
        ``kira models list`` can say when it went stale)."""
        from safetensors.torch import save_file

        m = self._need()
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        save_file({k: v.detach().cpu().contiguous() for k, v in m.state_dict().items()}, str(d / "weights.safetensors"))
        (d / "entities.json").write_text(json.dumps(self.vocab.entities))
        (d / "relations.json").write_text(json.dumps(self.vocab.relations))
        cfg = {"type": "kge", **asdict(self.cfg), **self.meta, **(extra or {})}
        write_config(d, cfg, sources)
        return d

    @classmethod
    def load(cls, directory: str | os.PathLike, device: str = "auto") -> KGEmbedder:
        from safetensors.torch import load_file

        d = Path(directory)
        if not (d / "kira.json").exists():
            raise ModelNotFoundError(f"{d}: not a KB embedding artifact (no kira.json)")
        cfg = json.loads((d / "kira.json").read_text())
        if cfg.get("type") != "kge":
            raise ModelNotFoundError(f"{d}: artifact type {cfg.get('type')!r} is not 'kge'")
        fields = {k: cfg[k] for k in TrainConfig.__dataclass_fields__ if k in cfg and k != "model"}
        fields["device"] = device
        emb = cls(cfg["model"], **fields)
        emb.meta = {k: v for k, v in cfg.items() if k not in TrainConfig.__dataclass_fields__ and k != "type"}
        emb.vocab = Vocab(json.loads((d / "entities.json").read_text()), json.loads((d / "relations.json").read_text()))
        emb.module = emb._build(emb.vocab)
        emb.module.load_state_dict(load_file(str(d / "weights.safetensors")))
        emb.module.to(emb.device).eval()
        return emb


def load_embedder(directory: str | os.PathLike, device: str = "auto"):
    """Load any KB embedding artifact: TransE/H/D (``type: kge``) or KEPLER (``type: kepler``)."""
    from kira.artifacts import read_config

    kind = read_config(directory).get("type") if (Path(directory) / "kira.json").exists() else None
    if kind == "kepler":
        from kira.kb.kepler import Kepler

        return Kepler.load(directory, device=device)
    return KGEmbedder.load(directory, device=device)


load = load_embedder
