"""Graph-BERT training loops: self-supervised pretraining (feature reconstruction + structure
recovery), node classification and link prediction. The model is in ``graph_bert``."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from kira.graph.graph_bert import GraphBert
from kira.graph.view import GraphView


def intimacy_targets(view: GraphView, nodes: np.ndarray, alpha: float = 0.15) -> np.ndarray:
    """Symmetric PPR intimacy among ``nodes``, scaled to [0, 1] per row, diagonal 1."""
    p = view.ppr(nodes, alpha=alpha)[nodes]  # p[i, j]: PPR mass of node i from target j
    s = (p + p.T) / 2
    np.fill_diagonal(s, 0.0)
    s = s / np.maximum(s.max(axis=1, keepdims=True), 1e-12)
    np.fill_diagonal(s, 1.0)
    return s.astype(np.float32)


def _optimizer(model: nn.Module, lr: float) -> torch.optim.Optimizer:
    return torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=0.01)


def pretrain(model: GraphBert, view: GraphView, steps: int = 200, batch_size: int = 32, lr: float = 1e-3,
             structure_weight: float = 1.0, seed: int = 0) -> list[float]:
    """Joint masked-node reconstruction + structure recovery; returns per-step losses."""
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    opt = _optimizer(model, lr)
    model.train()
    losses = []
    for _ in range(steps):
        nodes = rng.choice(view.n_nodes, size=min(batch_size, view.n_nodes), replace=False)
        t = torch.as_tensor(nodes, device=model.device)
        target = torch.as_tensor(intimacy_targets(view, nodes, model.cfg.alpha), device=model.device)
        loss = model.reconstruction_loss(t, gen) + structure_weight * model.structure_loss(t, target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def train_node_classification(model: GraphBert, nodes: Sequence[int], labels: Sequence[int],
                              steps: int = 100, batch_size: int = 32, lr: float = 1e-3,
                              seed: int = 0) -> list[float]:
    """Fine-tune with a linear head on the target representation."""
    if model.classifier is None:
        raise ValueError("model was built with n_classes=0; set GraphBertConfig.n_classes")
    rng = np.random.default_rng(seed)
    nodes_a, labels_a = np.asarray(nodes), np.asarray(labels)
    opt = _optimizer(model, lr)
    model.train()
    losses = []
    for _ in range(steps):
        pick = rng.choice(len(nodes_a), size=min(batch_size, len(nodes_a)), replace=False)
        t = torch.as_tensor(nodes_a[pick], device=model.device)
        y = torch.as_tensor(labels_a[pick], device=model.device)
        loss = F.cross_entropy(model.classifier(model(t)[1]), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def predict_classes(model: GraphBert, nodes: Sequence[int]) -> np.ndarray:
    z = model.embed(nodes)
    with torch.inference_mode():
        return model.classifier(z).argmax(-1).cpu().numpy()


def train_link_prediction(model: GraphBert, heads: np.ndarray, rels: np.ndarray, tails: np.ndarray,
                          steps: int = 200, batch_size: int = 64, lr: float = 1e-3, seed: int = 0) -> list[float]:
    """In-batch-negative cross-entropy over tails (and over heads, for symmetry)."""
    rng = np.random.default_rng(seed)
    opt = _optimizer(model, lr)
    model.train()
    losses = []
    m = len(heads)
    for _ in range(steps):
        pick = rng.choice(m, size=min(batch_size, m), replace=False)
        dev = model.device
        h, r, t = (torch.as_tensor(a[pick], device=dev) for a in (heads, rels, tails))
        logits = model.link_logits(h, r, t)
        same = t.unsqueeze(0) == t.unsqueeze(1)  # duplicate tails in the batch are not negatives
        eye = torch.eye(len(pick), dtype=torch.bool, device=dev)
        logits = logits.masked_fill(same & ~eye, -1e4)
        y = torch.arange(len(pick), device=dev)
        loss = (F.cross_entropy(logits, y) + F.cross_entropy(logits.t(), y)) / 2
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


