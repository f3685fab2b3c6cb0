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
representations, in-batch negatives).

This file is the model only: training loops are in ``graph_bert_train``, the ``KBEmbedder`` wrapper
and the artifact (save / load) in ``graph_bert_predictor``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn
from torch.nn import functional as F

from kira.graph.view import GraphView


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
