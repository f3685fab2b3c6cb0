"""The translational scoring modules: TransE, TransH, TransD (one model, one readable file).

* TransE (Bordes et al. 2013): ``score = -||h + r - t||_p``; entities renormalised to unit L2 after
  every step (the paper normalises before each minibatch — the same constraint).
* TransH (Wang et al. 2014): entities projected onto a relation hyperplane with unit normal ``w_r``,
  ``h⊥ = h - (w_r·h) w_r``, then translated by ``d_r``; entity norms kept ≤ 1.
* TransD (Ji et al. 2015): dynamic projection ``h⊥ = h + (h_p·h) r_p`` (``M_rh = r_p h_pᵀ + I``
  with equal entity and relation widths); entity and relation norms kept ≤ 1.

Scoring all entities at once (for ranking) uses the expansion ``|x - q|² = |x|² - 2x·q + |q|²``
extended with the projection terms, i.e. matrix products instead of a [batch, entities, dim]
tensor; L1 falls back to entity chunks. Training lives in ``kge_train``; the artifact API in
``embeddings``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

MODELS = ("transe", "transh", "transd")


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


