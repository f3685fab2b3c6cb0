"""Text encoder: any zoo encoder to normalised (or not) sentence vectors, fast.

The kernels: length bucketing (sort by length, pad each batch only to its longest member),
``torch.inference_mode``, bf16 autocast on CPU and GPU, all cores for intra-op threads.
Pooling and normalisation follow the checkpoint's sentence-transformers config when it has one
(``modules.json`` + ``1_Pooling/config.json``), else CLS pooling without normalisation (DPR).

A ``TextEncoder`` saves to a directory (HF weights + tokenizer + ``kira.json``) and reloads from it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from kira.plm import zoo
from kira.plm.device import autocast, pick_device, set_threads


def sentence_transformers_pooling(model_dir: Path | None) -> tuple[str, bool] | None:
    """``(pooling, normalize)`` from a sentence-transformers layout, or None if it has none."""
    if model_dir is None or not (model_dir / "modules.json").exists():
        return None
    modules = json.loads((model_dir / "modules.json").read_text())
    pooling, normalize = "cls", False
    for m in modules:
        t = m.get("type", "")
        if t.endswith("Pooling"):
            cfg = json.loads((model_dir / m["path"] / "config.json").read_text())
            if cfg.get("pooling_mode_mean_tokens"):
                pooling = "mean"
            elif cfg.get("pooling_mode_cls_token"):
                pooling = "cls"
            elif cfg.get("pooling_mode_max_tokens"):
                pooling = "max"
        if t.endswith("Normalize"):
            normalize = True
    return pooling, normalize


def pool(hidden: torch.Tensor, mask: torch.Tensor, pooling: str) -> torch.Tensor:
    if pooling == "cls":
        return hidden[:, 0]
    m = mask.unsqueeze(-1).to(hidden.dtype)
    if pooling == "mean":
        return (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
    if pooling == "max":
        return hidden.masked_fill(m == 0, -1e4).max(1).values
    raise ValueError(f"unknown pooling {pooling!r} (cls, mean, max)")


class TextEncoder(torch.nn.Module):
    """``encode(texts) -> float32 ndarray [n, dim]``; ``embed(texts)`` keeps gradients for training."""

    def __init__(self, spec: str | os.PathLike | None = None, pooling: str | None = None,
                 normalize: bool | None = None, max_length: int = 256, device: str = "auto",
                 bf16: bool = True):
        super().__init__()
        self.spec = str(spec or zoo.DEFAULT_SPEC)
        resolved = zoo.resolve(self.spec)
        saved = zoo.artifact_config(resolved.path) if resolved.path else {}
        st = sentence_transformers_pooling(resolved.path)
        default_pooling, default_norm = st or ("cls", False)
        self.pooling = pooling or saved.get("pooling") or default_pooling
        self.normalize = normalize if normalize is not None else saved.get("normalize", default_norm)
        self.max_length = int(saved.get("max_length", max_length))
        self.tokenizer = zoo.load_tokenizer(self.spec)
        self.model = zoo.load_model(self.spec, "encoder")
        self.device = pick_device(device)
        self.bf16 = bf16
        self.model.to(self.device)
        self.model.eval()

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    def _tokenize(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        batch = self.tokenizer(list(texts), padding=True, truncation=True, max_length=self.max_length,
                               return_tensors="pt")
        return {k: v.to(self.device) for k, v in batch.items()}

    def embed(self, texts: Sequence[str]) -> torch.Tensor:
        """Differentiable forward (fp32) for training: [n, dim]."""
        batch = self._tokenize(texts)
        out = self.model(**batch).last_hidden_state
        vecs = pool(out, batch["attention_mask"], self.pooling)
        return torch.nn.functional.normalize(vecs, dim=-1) if self.normalize else vecs

    @torch.inference_mode()
    def encode(self, texts: Sequence[str], batch_size: int = 64, show_progress: bool = False) -> np.ndarray:
        """Encode with length bucketing and bf16 autocast; output order matches input order."""
        self.model.eval()
        n = len(texts)
        out = np.zeros((n, self.dim), dtype=np.float32)
        if n == 0:
            return out
        order = np.argsort([-len(t) for t in texts], kind="stable")
        bar = None
        if show_progress:
            from tqdm import tqdm

            bar = tqdm(total=n, unit="psg", desc="encode")
        for start in range(0, n, batch_size):
            if self.device.type == "cpu":
                set_threads()  # per batch: follows other jobs' load during a long index build
            idx = order[start:start + batch_size]
            batch = self._tokenize([texts[i] for i in idx])
            with autocast(self.device, self.bf16):
                hidden = self.model(**batch).last_hidden_state
            vecs = pool(hidden.float(), batch["attention_mask"], self.pooling)
            if self.normalize:
                vecs = torch.nn.functional.normalize(vecs, dim=-1)
            out[idx] = vecs.cpu().numpy()
            if bar:
                bar.update(len(idx))
        if bar:
            bar.close()
        return out

    def save(self, directory: str | os.PathLike) -> Path:
        return zoo.save_artifact(directory, self.model, self.tokenizer, {
            "type": "text-encoder", "pooling": self.pooling, "normalize": self.normalize,
            "max_length": self.max_length, "base": self.spec,
        })

    @classmethod
    def load(cls, directory: str | os.PathLike, **kw) -> TextEncoder:
        return cls(str(directory), **kw)
