"""Training the translational models: margin ranking against head- or tail-corrupted triples.

``relu(margin - s(pos) + s(neg))``, half of each batch corrupted on each side as in PyKEEN's basic
sampler, fully vectorised negative sampling, dense Adam on whichever device ``pick_device`` gives.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from kira.errors import KiraError
from kira.kb.kge_models import MODELS
from kira.plm.device import set_threads


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


