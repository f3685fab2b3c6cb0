"""GraphFormers (Yang et al. 2021): transformer layers nested with graph aggregation.

A *node set* is a centre node plus sampled neighbours, each with its own text. Every layer
  1. takes each node's first-token ([CLS]) state,
  2. mixes those node states by a small multi-head attention over the node set (padding nodes
     masked out) — the graph-aggregation step,
  3. prepends each node's mixed vector as an extra token position and runs the transformer layer
     over every node's tokens, then drops that extra position again,
so text and neighbourhood shape each other layer by layer. Layer 0 runs without the graph token
(its [CLS] is the same embedding for every node, carrying no information yet). The centre node's
final [CLS] is its embedding. The transformer layers start from a zoo encoder (``minilm-l6`` or
``tiny-bert``); training is link prediction with in-batch negatives (DistMult-style relation
vectors on normalised embeddings, so one model serves a multi-relational KB).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from kira.errors import KiraError
from kira.graph.linkpred import NodeVectorPredictor
from kira.graph.view import GraphView
from kira.plm import zoo
from kira.plm.device import autocast, pick_device
from kira.schema import Triple


@dataclass
class GraphFormersConfig:
    base: str = "tiny-bert"  # zoo spec of the encoder whose layers are reused
    max_length: int = 32  # tokens per node text
    neighbours: int = 3  # sampled neighbours per centre node
    gat_heads: int = 2
    n_relations: int = 0
    temperature: float = 0.05


class GraphFormers(nn.Module):
    def __init__(self, cfg: GraphFormersConfig, bert=None, tokenizer=None):
        super().__init__()
        self.cfg = cfg
        self.bert = bert if bert is not None else zoo.load_model(cfg.base, "encoder")
        self.tokenizer = tokenizer if tokenizer is not None else zoo.load_tokenizer(cfg.base)
        d = int(self.bert.config.hidden_size)
        n_layers = len(self.bert.encoder.layer)
        heads = cfg.gat_heads if d % cfg.gat_heads == 0 else 1
        self.graph_attn = nn.ModuleList(
            [nn.MultiheadAttention(d, heads, batch_first=True) for _ in range(n_layers - 1)])
        self.graph_norm = nn.ModuleList([nn.LayerNorm(d) for _ in range(n_layers - 1)])
        self.role = nn.Embedding(2, d)  # centre vs neighbour, so the aggregation can tell them apart
        nn.init.normal_(self.role.weight, std=0.02)
        self.relations = nn.Embedding(max(cfg.n_relations, 1), d)
        nn.init.ones_(self.relations.weight)

    @property
    def dim(self) -> int:
        return int(self.bert.config.hidden_size)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    # ---- inputs ---------------------------------------------------------------------------------
    def tokenize(self, node_sets: Sequence[Sequence[str]]) -> dict[str, torch.Tensor]:
        """Texts of each node set (centre first) → ``input_ids``/``attention_mask`` [B, N, L] and
        ``node_mask`` [B, N]; shorter sets are padded with empty nodes."""
        n = max(len(s) for s in node_sets)
        flat = [t for s in node_sets for t in list(s) + [""] * (n - len(s))]
        enc = self.tokenizer(flat, padding=True, truncation=True, max_length=self.cfg.max_length,
                             return_tensors="pt")
        b = len(node_sets)
        node_mask = torch.tensor([[j < len(s) for j in range(n)] for s in node_sets])
        ids = enc["input_ids"].view(b, n, -1)
        am = enc["attention_mask"].view(b, n, -1) * node_mask.unsqueeze(-1)
        dev = self.device
        return {"input_ids": ids.to(dev), "attention_mask": am.to(dev), "node_mask": node_mask.to(dev)}

    def _mask(self, am: torch.Tensor, h: torch.Tensor):
        from transformers.masking_utils import create_bidirectional_mask

        return create_bidirectional_mask(config=self.bert.config, inputs_embeds=h, attention_mask=am)

    # ---- forward --------------------------------------------------------------------------------
    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, node_mask: torch.Tensor
                ) -> torch.Tensor:
        """Node embeddings ``[B, N, d]`` (first-token states after the last layer)."""
        b, n, L = input_ids.shape
        d = self.dim
        am = attention_mask.reshape(b * n, L).clone()
        am[:, 0] = 1  # a padding node still sees its own first slot (no all-masked softmax rows)
        h = self.bert.embeddings(input_ids=input_ids.reshape(b * n, L))
        role = self.role(torch.arange(n, device=h.device).clamp(max=1)).unsqueeze(0)
        for li, layer in enumerate(self.bert.encoder.layer):
            if li == 0:
                h = layer(h, self._mask(am, h))
                continue
            cls = h[:, 0].reshape(b, n, d)
            q = self.graph_norm[li - 1](cls + role)
            z, _ = self.graph_attn[li - 1](q, q, q, key_padding_mask=~node_mask.bool(), need_weights=False)
            z = (z + cls).reshape(b * n, 1, d)
            h_aug = torch.cat([z, h], dim=1)
            am_aug = torch.cat([torch.ones_like(am[:, :1]), am], dim=1)
            h = layer(h_aug, self._mask(am_aug, h_aug))[:, 1:]
        return h[:, 0].reshape(b, n, d)

    def centre(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self(**batch)[:, 0]

    def link_logits(self, q: torch.Tensor, rels: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """``[B, B']`` scores of query centres (with relations) against candidate centres."""
        q = F.normalize(q, dim=-1) * self.relations(rels)
        return q @ F.normalize(k, dim=-1).t() / self.cfg.temperature

    # ---- artifact -------------------------------------------------------------------------------
    def save(self, directory: str | os.PathLike, extra: dict | None = None) -> Path:
        """Encoder weights + tokenizer + ``kira.json`` via the zoo, graph parts in ``graph.safetensors``."""
        from safetensors.torch import save_file

        d = zoo.save_artifact(directory, self.bert, self.tokenizer,
                              {"type": "graphformers", "config": asdict(self.cfg), **(extra or {})})
        own = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items() if not k.startswith("bert.")}
        save_file(own, str(d / "graph.safetensors"))
        return d

    @classmethod
    def load(cls, directory: str | os.PathLike, device: str = "auto") -> tuple[GraphFormers, dict]:
        from safetensors.torch import load_file

        d = Path(directory)
        meta = zoo.artifact_config(d)
        if meta.get("type") != "graphformers":
            raise KiraError(f"{d} is not a graphformers artifact (type {meta.get('type')!r})")
        cfg = GraphFormersConfig(**meta["config"])
        model = cls(cfg, bert=zoo.load_model(str(d), "encoder"), tokenizer=zoo.load_tokenizer(str(d)))
        missing = model.load_state_dict(load_file(str(d / "graph.safetensors")), strict=False)
        bad = [k for k in missing.missing_keys if not k.startswith("bert.")]
        if bad or missing.unexpected_keys:
            raise KiraError(f"{d}: graph.safetensors does not match the model ({bad or missing.unexpected_keys})")
        model.to(pick_device(device)).eval()
        return model, meta


# ---- neighbourhoods -----------------------------------------------------------------------------
def sample_neighbours(view: GraphView, node: int, m: int, rng: np.random.Generator | None = None,
                      exclude: Iterable[int] = ()) -> list[int]:
    """Up to ``m`` 1-hop neighbours; random when ``rng`` is given, else the highest-degree ones
    (deterministic for evaluation). ``exclude`` hides e.g. the other end of a training edge."""
    nb = [int(x) for x in view.neighbors(node) if int(x) not in set(exclude) and int(x) != node]
    if len(nb) <= m:
        return nb
    if rng is not None:
        return [int(x) for x in rng.choice(nb, size=m, replace=False)]
    deg = view.degree()
    return sorted(nb, key=lambda x: (-deg[x], x))[:m]


def node_set_texts(view: GraphView, centres: Sequence[int], m: int, rng: np.random.Generator | None = None,
                   exclude: Sequence[Iterable[int]] | None = None) -> list[list[str]]:
    out = []
    for i, c in enumerate(centres):
        nb = sample_neighbours(view, c, m, rng, exclude[i] if exclude is not None else ())
        out.append([view.text(c)] + [view.text(x) for x in nb])
    return out


# ---- training and use ---------------------------------------------------------------------------
class GraphFormersLinkPredictor(NodeVectorPredictor):
    """GraphFormers as a ``kira.schema.KBEmbedder`` over a graph view."""

    def __init__(self, view: GraphView, model: GraphFormers):
        super().__init__(view)
        self.model = model

    @classmethod
    def create(cls, view: GraphView, base: str = "tiny-bert", device: str = "auto", **cfg_kw
               ) -> GraphFormersLinkPredictor:
        torch.manual_seed(0)
        cfg = GraphFormersConfig(base=base, n_relations=len(view.relation_ids), **cfg_kw)
        return cls(view, GraphFormers(cfg).to(pick_device(device)))

    def fit(self, triples: Iterable[Triple], steps: int = 100, batch_size: int = 16, lr: float = 5e-5,
            graph_lr: float = 1e-3, seed: int = 0) -> dict:
        """Link prediction with in-batch negatives; neighbour sets exclude the edge being predicted."""
        trip = self._ids(triples)
        rng = np.random.default_rng(seed)
        m = self.model
        bert_params = list(m.bert.parameters())
        bert_ids = {id(p) for p in bert_params}
        opt = torch.optim.AdamW([{"params": bert_params, "lr": lr},
                                 {"params": [p for p in m.parameters() if id(p) not in bert_ids], "lr": graph_lr}])
        m.train()
        losses = []
        k = self.model.cfg.neighbours
        for _ in range(steps):
            pick = trip[rng.choice(len(trip), size=min(batch_size, len(trip)), replace=False)]
            h, r, t = pick[:, 0], pick[:, 1], pick[:, 2]
            qb = m.tokenize(node_set_texts(self.view, h, k, rng, exclude=[[x] for x in t]))
            kb = m.tokenize(node_set_texts(self.view, t, k, rng, exclude=[[x] for x in h]))
            logits = m.link_logits(m.centre(qb), torch.as_tensor(r, device=m.device), m.centre(kb))
            dev = logits.device
            tt = torch.as_tensor(t, device=dev)
            eye = torch.eye(len(pick), dtype=torch.bool, device=dev)
            logits = logits.masked_fill((tt.unsqueeze(0) == tt.unsqueeze(1)) & ~eye, -1e4)
            loss = F.cross_entropy(logits, torch.arange(len(pick), device=dev))
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        m.eval()
        self._z = None
        return {"first_loss": losses[0], "last_loss": float(np.mean(losses[-5:])), "steps": steps}

    @torch.inference_mode()
    def embed_nodes(self, nodes: Sequence[int], batch_size: int = 32) -> torch.Tensor:
        """Centre embeddings with deterministic (highest-degree) neighbour sets."""
        m = self.model
        m.eval()
        out = []
        for s in range(0, len(nodes), batch_size):
            batch = m.tokenize(node_set_texts(self.view, nodes[s:s + batch_size], m.cfg.neighbours))
            with autocast(m.device, m.device.type == "cuda"):
                out.append(m.centre(batch).float())
        return torch.cat(out) if out else torch.zeros(0, m.dim)

    def node_vectors(self) -> torch.Tensor:
        if self._z is None:
            self._z = self.embed_nodes(list(range(self.view.n_nodes)))
        return self._z

    def pair_scores(self, zh: torch.Tensor, r: torch.Tensor, zt: torch.Tensor) -> torch.Tensor:
        return self.model.link_logits(zh, r, zt)

    @torch.inference_mode()
    def score(self, heads: np.ndarray, relations: np.ndarray, tails: np.ndarray) -> np.ndarray:
        """Plausibility of given triples, embedding only the nodes involved (no full-graph pass),
        which is what graph expansion needs for a question's neighbourhood."""
        h, r, t = (self.vocab.entity_index(heads), self.vocab.relation_index(relations),
                   self.vocab.entity_index(tails))
        if self._z is not None:
            return super().score(heads, relations, tails)
        uniq = torch.unique(torch.cat([h, t]))
        z = self.embed_nodes(uniq.tolist())
        pos = {int(n): i for i, n in enumerate(uniq.tolist())}
        dev = z.device
        zh = z[torch.as_tensor([pos[int(x)] for x in h], device=dev)]
        zt = z[torch.as_tensor([pos[int(x)] for x in t], device=dev)]
        q = F.normalize(zh, dim=-1) * self.model.relations(r.to(dev))
        return ((q * F.normalize(zt, dim=-1)).sum(-1) / self.model.cfg.temperature).float().cpu().numpy()
