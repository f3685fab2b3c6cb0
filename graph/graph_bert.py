"""Graph-BERT (Zhang et al. 2020): a transformer over linkless subgraphs.

For a target node the model sees a *context*: the target plus its top-k nodes by personalised
PageRank, with no edges. Each node's input is the sum of
  * a feature embedding: its text encoded once by a zoo encoder (``kira.plm.TextEncoder``) and
    projected, or a learned id embedding when the graph has no text;
  * a Weisfeiler-Lehman role embedding (WL colour of the node in the whole graph);
  * a PPR-rank embedding (position of the node in the context, 0 = target);
  * a hop-distance embedding (undirected hops from the target),
the three positional codes being sinusoidal as in the paper so unseen WL colours still embed.
A small transformer encodes the context; the target representation is the mean over the context.

Pretraining: masked-node feature reconstruction (mask context nodes' features, rebuild them) and
graph structure recovery (cosine of node-pair representations regressed onto their PPR intimacy).
Fine-tuning: node classification (linear head) and link prediction (DistMult over node
representations, in-batch negatives). ``GraphBertLinkPredictor`` exposes it as a ``KBEmbedder``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn
from torch.nn import functional as F

from kira.artifacts import write_config
from kira.errors import KiraError
from kira.graph.linkpred import NodeVectorPredictor
from kira.graph.view import GraphView
from kira.plm.device import pick_device
from kira.schema import Triple


@dataclass
class GraphBertConfig:
    n_nodes: int
    k: int = 7  # context size besides the target
    hidden: int = 64
    layers: int = 2
    heads: int = 2
    ffn: int = 128
    dropout: float = 0.1
    feature_dim: int = 0  # 0 = learned id embeddings instead of text features
    n_relations: int = 0
    n_classes: int = 0
    alpha: float = 0.15
    max_hops: int = 6
    mask_prob: float = 0.15
    encoder: str | None = None  # zoo spec the node features came from (provenance)


@dataclass
class GraphBertInputs:
    """Per-node precomputed context: who is in it, and the three positional codes."""

    context: np.ndarray  # [n, k+1] node ids, target first, -1 = padding
    hops: np.ndarray  # [n, k+1]
    wl: np.ndarray  # [n] WL colour per node
    features: np.ndarray | None  # [n, feature_dim] or None
    ppr_scores: np.ndarray  # [n, k+1] PPR score of each context node (target = 1)


def node_features(view: GraphView, spec: str = "minilm-l6", batch_size: int = 64) -> np.ndarray:
    """Encode every node's text once (name + gloss) with a zoo encoder."""
    from kira.plm import TextEncoder

    return TextEncoder(spec).encode(view.texts(), batch_size=batch_size)


def prepare_inputs(view: GraphView, k: int = 7, features: np.ndarray | None = None, alpha: float = 0.15,
                   max_hops: int = 6, batch_size: int = 256) -> GraphBertInputs:
    """PPR contexts, hop distances and WL colours for all nodes (batched sparse kernels)."""
    n = view.n_nodes
    ctx, scores = view.ppr_context(np.arange(n), k, alpha=alpha, batch_size=batch_size)
    context = np.concatenate([np.arange(n)[:, None], ctx], axis=1)
    ppr = np.concatenate([np.ones((n, 1), dtype=np.float32), scores], axis=1)
    hops = np.full(context.shape, max_hops + 1, dtype=np.int64)
    hops[:, 0] = 0
    adj = view.adjacency
    for s in range(0, n, batch_size):
        idx = np.arange(s, min(n, s + batch_size))
        d = sp.csgraph.dijkstra(adj, indices=idx, unweighted=True, limit=max_hops)
        for row, i in enumerate(idx):
            valid = context[i] >= 0
            dd = d[row, context[i][valid]]
            hops[i, valid] = np.where(np.isinf(dd), max_hops + 1, dd).astype(np.int64)
    if features is not None and len(features) != n:
        raise ValueError(f"features have {len(features)} rows for a graph of {n} nodes")
    return GraphBertInputs(context=context, hops=hops, wl=view.wl_colors(), features=features,
                           ppr_scores=ppr)


def sinusoid(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Transformer sinusoidal code of integer ids ``x`` (any shape) → ``[..., dim]``."""
    half = dim // 2
    freq = torch.exp(-math.log(10000.0) * torch.arange(half, device=x.device, dtype=torch.float32) / half)
    ang = x.float().unsqueeze(-1) * freq
    out = torch.cat([torch.sin(ang), torch.cos(ang)], dim=-1)
    return F.pad(out, (0, dim - 2 * half))


class GraphBert(nn.Module):
    def __init__(self, cfg: GraphBertConfig):
        super().__init__()
        self.cfg = cfg
        h = cfg.hidden
        if cfg.feature_dim:
            self.feature_proj = nn.Linear(cfg.feature_dim, h)
            self.reconstruct = nn.Linear(h, cfg.feature_dim)
        else:
            self.id_embedding = nn.Embedding(cfg.n_nodes, h)
        self.mask_embedding = nn.Parameter(torch.zeros(h))
        self.role_proj = nn.Linear(h, h)  # lets the model weigh the three fixed sinusoidal codes
        self.norm = nn.LayerNorm(h)
        self.drop = nn.Dropout(cfg.dropout)
        layer = nn.TransformerEncoderLayer(h, cfg.heads, cfg.ffn, cfg.dropout, batch_first=True,
                                           activation="gelu")
        self.encoder = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False)
        self.classifier = nn.Linear(h, cfg.n_classes) if cfg.n_classes else None
        self.relations = nn.Embedding(max(cfg.n_relations, 1), h)
        nn.init.ones_(self.relations.weight)
        nn.init.normal_(self.mask_embedding, std=0.02)
        self._inputs: dict[str, torch.Tensor] = {}

    # ---- inputs ---------------------------------------------------------------------------------
    def attach(self, inputs: GraphBertInputs) -> GraphBert:
        """Hold the precomputed contexts as (non-trainable) tensors on the model's device."""
        dev = self.device
        self._inputs = {
            "context": torch.as_tensor(inputs.context, device=dev),
            "hops": torch.as_tensor(inputs.hops, device=dev),
            "wl": torch.as_tensor(inputs.wl, device=dev),
        }
        if inputs.features is not None:
            self._inputs["features"] = torch.as_tensor(inputs.features, dtype=torch.float32, device=dev)
        self.inputs = inputs
        return self

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def raw_features(self, nodes: torch.Tensor) -> torch.Tensor:
        if self.cfg.feature_dim:
            return self._inputs["features"][nodes]
        return self.id_embedding.weight[nodes]

    def node_embedding(self, nodes: torch.Tensor) -> torch.Tensor:
        if self.cfg.feature_dim:
            return self.feature_proj(self._inputs["features"][nodes])
        return self.id_embedding(nodes)

    # ---- forward --------------------------------------------------------------------------------
    def forward(self, targets: torch.Tensor, mask: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(H [B, k+1, h], z [B, h], valid [B, k+1])`` for target node ids ``[B]``.

        ``mask`` ([B, k+1] bool) replaces those positions' feature embedding by the mask vector.
        """
        ctx = self._inputs["context"][targets]
        valid = ctx >= 0
        safe = ctx.clamp(min=0)
        x = self.node_embedding(safe)
        if mask is not None:
            x = torch.where(mask.unsqueeze(-1), self.mask_embedding.expand_as(x), x)
        h = self.cfg.hidden
        rank = torch.arange(ctx.shape[1], device=ctx.device).expand_as(ctx)
        pos = sinusoid(self._inputs["wl"][safe], h) + sinusoid(rank, h) + \
            sinusoid(self._inputs["hops"][targets], h)
        x = self.drop(self.norm(x + self.role_proj(pos)))
        out = self.encoder(x, src_key_padding_mask=~valid)
        out = out.masked_fill(~valid.unsqueeze(-1), 0.0)
        z = out.sum(1) / valid.sum(1, keepdim=True).clamp(min=1)
        return out, z, valid

    def embed(self, nodes: Sequence[int] | np.ndarray, batch_size: int = 512) -> torch.Tensor:
        """Target representations for many nodes (eval mode, no grad)."""
        was = self.training
        self.eval()
        outs = []
        with torch.inference_mode():
            t = torch.as_tensor(np.asarray(nodes), device=self.device)
            for s in range(0, len(t), batch_size):
                outs.append(self(t[s:s + batch_size])[1])
        self.train(was)
        return torch.cat(outs) if outs else torch.zeros(0, self.cfg.hidden, device=self.device)

    # ---- losses ---------------------------------------------------------------------------------
    def reconstruction_loss(self, targets: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
        """Masked-node feature reconstruction over the context."""
        ctx = self._inputs["context"][targets]
        valid = ctx >= 0
        mask = (torch.rand(ctx.shape, generator=gen, device="cpu").to(ctx.device) < self.cfg.mask_prob) & valid
        mask[:, 0] |= ~mask.any(1)  # at least one masked node per context (the target)
        out, _, _ = self(targets, mask=mask)
        picked = out[mask]
        nodes = ctx[mask]
        if self.cfg.feature_dim:
            target = self._inputs["features"][nodes]
            return 1 - F.cosine_similarity(self.reconstruct(picked), target, dim=-1).mean()
        logits = picked @ self.id_embedding.weight.t()
        return F.cross_entropy(logits, nodes)

    def structure_loss(self, targets: torch.Tensor, intimacy: torch.Tensor) -> torch.Tensor:
        """Structure recovery: cosine of every batch pair's representations vs their intimacy."""
        _, z, _ = self(targets)
        zn = F.normalize(z, dim=-1)
        return F.mse_loss(zn @ zn.t(), intimacy)

    def link_logits(self, heads: torch.Tensor, rels: torch.Tensor, tails: torch.Tensor) -> torch.Tensor:
        """``[B, B]`` DistMult scores of each (head, rel) against every tail of the batch."""
        zh = self(heads)[1]
        zt = self(tails)[1]
        return (zh * self.relations(rels)) @ zt.t() / math.sqrt(self.cfg.hidden)


# ---- training loops -----------------------------------------------------------------------------
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


# ---- KBEmbedder wrapper -------------------------------------------------------------------------
class GraphBertLinkPredictor(NodeVectorPredictor):
    """Graph-BERT as a ``kira.schema.KBEmbedder`` over a graph view (string ids in, scores out)."""

    def __init__(self, view: GraphView, model: GraphBert):
        super().__init__(view)
        self.model = model

    @classmethod
    def create(cls, view: GraphView, features: np.ndarray | None = None, device: str = "auto",
               **cfg_kw) -> GraphBertLinkPredictor:
        cfg = GraphBertConfig(n_nodes=view.n_nodes, n_relations=len(view.relation_ids),
                              feature_dim=0 if features is None else int(features.shape[1]), **cfg_kw)
        torch.manual_seed(0)
        model = GraphBert(cfg).to(pick_device(device))
        model.attach(prepare_inputs(view, cfg.k, features, cfg.alpha, cfg.max_hops))
        return cls(view, model)

    def fit(self, triples: Iterable[Triple], steps: int = 200, pretrain_steps: int = 0,
            batch_size: int = 64, lr: float = 1e-3) -> dict:
        """Optional Graph-BERT pretraining, then link-prediction fine-tuning on ``triples``."""
        if pretrain_steps:
            pretrain(self.model, self.view, steps=pretrain_steps, batch_size=min(batch_size, 64), lr=lr)
        ids = self._ids(triples)
        losses = train_link_prediction(self.model, ids[:, 0], ids[:, 1], ids[:, 2], steps=steps,
                                       batch_size=batch_size, lr=lr)
        self._z = None
        return {"first_loss": losses[0], "last_loss": float(np.mean(losses[-5:])), "steps": steps}

    def node_vectors(self) -> torch.Tensor:
        if self._z is None:
            self._z = self.model.embed(np.arange(self.view.n_nodes))
        return self._z

    def pair_scores(self, zh: torch.Tensor, r: torch.Tensor, zt: torch.Tensor) -> torch.Tensor:
        return (zh * self.model.relations(r)) @ zt.t() / math.sqrt(self.model.cfg.hidden)


# ---- artifact -----------------------------------------------------------------------------------
def save(model: GraphBert, directory: str | os.PathLike, node_ids: Sequence[str] | None = None,
         extra: dict | None = None) -> Path:
    """Weights (safetensors) + precomputed inputs (npz) + ``kira.json``; reload with ``load``."""
    from safetensors.torch import save_file

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
              str(d / "model.safetensors"))
    inp = model.inputs
    arrays = {"context": inp.context, "hops": inp.hops, "wl": inp.wl, "ppr_scores": inp.ppr_scores}
    if inp.features is not None:
        arrays["features"] = inp.features
    np.savez_compressed(d / "inputs.npz", **arrays)
    meta = {"type": "graph-bert", "config": asdict(model.cfg), **(extra or {})}
    if node_ids is not None:
        meta["node_ids"] = list(node_ids)
    write_config(d, meta)
    return d


def load(directory: str | os.PathLike, device: str = "auto") -> tuple[GraphBert, dict]:
    """``(model with inputs attached, kira.json)`` from a ``save`` directory."""
    from safetensors.torch import load_file

    d = Path(directory)
    meta = json.loads((d / "kira.json").read_text())
    if meta.get("type") != "graph-bert":
        raise KiraError(f"{d} is not a graph-bert artifact (type {meta.get('type')!r})")
    model = GraphBert(GraphBertConfig(**meta["config"]))
    model.load_state_dict(load_file(str(d / "model.safetensors")))
    model.to(pick_device(device))
    z = np.load(d / "inputs.npz")
    model.attach(GraphBertInputs(context=z["context"], hops=z["hops"], wl=z["wl"],
                                 features=z["features"] if "features" in z.files else None,
                                 ppr_scores=z["ppr_scores"]))
    model.eval()
    return model, meta
