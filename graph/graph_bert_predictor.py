"""Graph-BERT as a ``KBEmbedder`` (``GraphBertLinkPredictor``) and as an artifact directory
(``save`` / ``load``: weights, precomputed inputs and ``kira.json``)."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from kira.artifacts import write_config
from kira.errors import KiraError
from kira.graph.graph_bert import GraphBert, GraphBertConfig, GraphBertInputs, prepare_inputs
from kira.graph.graph_bert_train import pretrain, train_link_prediction
from kira.graph.linkpred import NodeVectorPredictor
from kira.graph.view import GraphView
from kira.plm.device import pick_device
from kira.schema import Triple


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
