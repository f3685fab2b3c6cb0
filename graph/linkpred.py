"""The ``KBEmbedder`` face shared by the graph PLMs: node vectors in, link scores out.

Graph-BERT and GraphFormers both turn each node into a vector and score a triple from the two
node vectors and a relation vector. This base gives them the protocol (``score``, ``rank_tails``)
and the ``vocab``/``score_tails``/``score_heads`` interface ``kira.kb.evaluate.evaluate_embedder``
expects, so the graph models are measured by the same filtered MRR/Hits@k code as TransE.
"""

from __future__ import annotations

import numpy as np
import torch

from kira.graph.view import GraphView


class NodeVectorPredictor:
    """Subclasses set ``self.view`` and implement ``node_vectors()`` and ``pair_scores``."""

    view: GraphView

    def __init__(self, view: GraphView):
        from kira.kb.embeddings import Vocab

        self.view = view
        self.vocab = Vocab(list(view.node_ids), list(view.relation_ids))
        self._z: torch.Tensor | None = None

    def node_vectors(self) -> torch.Tensor:  # [n_nodes, d]
        raise NotImplementedError

    def pair_scores(self, zh: torch.Tensor, r: torch.Tensor, zt: torch.Tensor) -> torch.Tensor:
        """``[B, C]`` scores of query heads ``zh`` [B, d] with relations ``r`` [B] vs tails [C, d]."""
        raise NotImplementedError

    def head_scores(self, r: torch.Tensor, zt: torch.Tensor, z_all: torch.Tensor) -> torch.Tensor:
        """``[B, n]`` scores of every node as head of (?, r, t). Default: the bilinear form is
        symmetric in head and tail for DistMult-style scorers."""
        return self.pair_scores(zt, r, z_all)

    def _ids(self, triples) -> np.ndarray:
        idx, rel = self.view.index, self.vocab.r2i
        rows = [(idx[t.head], rel[t.relation], idx[t.tail]) for t in triples
                if t.head in idx and t.tail in idx and t.relation in rel]
        return np.asarray(rows, dtype=np.int64).reshape(-1, 3)

    @torch.inference_mode()
    def score_tails(self, h: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        z = self.node_vectors()
        return self.pair_scores(z[h.to(z.device)], r.to(z.device), z)

    @torch.inference_mode()
    def score_heads(self, r: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        z = self.node_vectors()
        return self.head_scores(r.to(z.device), z[t.to(z.device)], z)

    @torch.inference_mode()
    def score(self, heads: np.ndarray, relations: np.ndarray, tails: np.ndarray) -> np.ndarray:
        """Plausibility of each (head, relation, tail); string ids or integer indices."""
        z = self.node_vectors()
        h, r, t = (self.vocab.entity_index(heads), self.vocab.relation_index(relations),
                   self.vocab.entity_index(tails))
        dev = z.device
        s = torch.stack([self.pair_scores(z[h[i:i + 1].to(dev)], r[i:i + 1].to(dev), z[t[i:i + 1].to(dev)])[0, 0]
                         for i in range(len(h))]) if len(h) else torch.zeros(0)
        return s.float().cpu().numpy()

    def rank_tails(self, head: str, relation: str, k: int = 10) -> list[tuple[str, float]]:
        s = self.score_tails(self.vocab.entity_index([head]), self.vocab.relation_index([relation]))[0]
        top = torch.topk(s, min(k, s.shape[0]))
        return [(self.view.node_ids[i], float(v)) for v, i in zip(top.values.tolist(), top.indices.tolist(), strict=True)]
