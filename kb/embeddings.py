"""KB embeddings as artifacts: ``KGEmbedder`` fits TransE/TransH/TransD (``kge_models``) with
``kge_train`` and saves, loads and ranks with them (``kira.schema.KBEmbedder``).

An artifact is a directory: ``weights.safetensors``, ``kira.json`` (model config, via
``kira.artifacts``), ``entities.json`` and ``relations.json`` (the id vocabularies, position = index).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from kira.artifacts import write_config
from kira.errors import KiraError, ModelNotFoundError
from kira.kb.kge_models import MODEL_CLASSES, MODELS
from kira.kb.kge_train import TrainConfig, train_ids
from kira.plm.device import pick_device
from kira.schema import Triple

__all__ = ["MODELS", "KGEmbedder", "Vocab", "load_embedder"]


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
        kbs = {t.kb for t in triples}
        if len(kbs) == 1:  # the artifact says which KB it belongs to (removed with it)
            self.meta["kb"] = kbs.pop()
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
