"""The table QA model: transformers' TAPAS (Herzig et al. 2020) with kira's loading and saving.

TAPAS is BERT plus table embeddings (segment, column id, row id, previous-answer, column rank,
inverse rank, numeric relation) and two heads: cell selection (a per-token logit averaged per cell,
one column at a time) and aggregation over NONE / SUM / AVERAGE / COUNT. transformers 5's
``TapasForQuestionAnswering`` computes both heads and their losses correctly (checked in
tests/tables/test_model.py), so kira uses it rather than a copy: a user's TAPAS checkpoint loads
through the zoo unchanged, and ``minilm-l6`` gives TAPAS whose BERT body starts from the packaged
MiniLM (table embeddings and heads start random, cell-selection weights at zero as in TAPAS).

Training here is *strongly supervised* on aggregation (our generator knows each question's SQL
operator) with cell labels, like TAPAS's WikiSQL-supervised setting; float answers are recorded
too, so ``supervision="weak"`` (answer-only, TAPAS's WTQ setting) is available for user data.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from kira.plm import zoo
from kira.plm.device import pick_device
from kira.tables.values import AGGREGATIONS, cell_text

ARTIFACT_TYPE = "table-qa"


def head_config(supervision: str = "strong") -> dict[str, Any]:
    """TAPAS config for the aggregation + cell-selection heads (WTQ-style hyper-parameters)."""
    weak = supervision == "weak"
    return dict(
        num_aggregation_labels=len(AGGREGATIONS),
        aggregation_labels=dict(enumerate(AGGREGATIONS)),
        no_aggregation_label_index=0,
        use_answer_as_supervision=weak,
        cell_selection_preference=0.207951,
        huber_loss_delta=0.121194,
        answer_loss_cutoff=0.664694 if weak else None,
        answer_loss_importance=1.0,
        select_one_column=True,
        allow_empty_column_selection=False,
        init_cell_selection_weights_to_zero=True,
        positive_label_weight=10.0,
        temperature=0.0352513,
        aggregation_loss_weight=1.0,
    )


def _is_full_tapas(resolved: zoo.ResolvedSpec) -> bool:
    """True for a TAPAS checkpoint that already has the 4-way aggregation head."""
    if resolved.path is None or not (resolved.path / "config.json").exists():
        return False
    import json

    cfg = json.loads((resolved.path / "config.json").read_text())
    return cfg.get("model_type") == "tapas" and cfg.get("num_aggregation_labels") == len(AGGREGATIONS)


def string_table(df: pd.DataFrame) -> pd.DataFrame:
    """The table as TAPAS reads it: every cell text (numbers formatted like the answers)."""
    out = pd.DataFrame({str(c): [cell_text(v) for v in df[c].tolist()] for c in df.columns})
    return out


@dataclass
class Prediction:
    cells: list[tuple[int, int]]
    aggregation: str
    aggregation_probs: list[float]
    cell_probs: dict[tuple[int, int], float]  # mean token probability of each selected cell

    @property
    def score(self) -> float:
        """Confidence: aggregation probability times the mean probability of the selected cells."""
        agg = max(self.aggregation_probs)
        cells = sum(self.cell_probs.values()) / len(self.cell_probs) if self.cell_probs else 0.0
        return float(agg * cells)


class TableQAModel:
    """Tokenizer + TAPAS model + the few settings that travel with the artifact."""

    def __init__(self, tokenizer, model, max_length: int = 256, snapshot_rows: int = 12,
                 base: str = "", device: str = "auto", snapshot_columns: int | None = None):
        self.tokenizer, self.model = tokenizer, model
        self.max_length, self.snapshot_rows, self.base = max_length, snapshot_rows, base
        self.snapshot_columns = snapshot_columns  # wide tables are read as this many question columns
        self.device = pick_device(device)
        self.model.to(self.device)

    @classmethod
    def load(cls, spec: str | os.PathLike = "minilm-l6", supervision: str = "strong",
             device: str = "auto", layers: int | None = None, **settings) -> TableQAModel:
        """A kira table-QA artifact, a user's TAPAS checkpoint, or a BERT spec to start from.

        ``layers`` keeps only the first N transformer layers of a BERT start (cheaper training on CPU)."""
        r = zoo.resolve(spec)
        saved = zoo.artifact_config(r.path) if r.path else {}
        tok = zoo.load_tokenizer(spec, "tapas")
        if saved.get("type") == ARTIFACT_TYPE or _is_full_tapas(r):
            model = zoo.load_model(spec, "tapas")
        else:
            extra = {"num_hidden_layers": layers} if layers else {}
            model = zoo.load_model(spec, "tapas", **head_config(supervision), **extra)
        opts = {k: saved[k] for k in ("max_length", "snapshot_rows", "snapshot_columns") if k in saved}
        opts.update(settings)
        return cls(tok, model, base=saved.get("base", str(spec)), device=device, **opts)

    def save(self, directory: str | os.PathLike, extra: dict[str, Any] | None = None) -> Path:
        return zoo.save_artifact(directory, self.model, self.tokenizer, {
            "type": ARTIFACT_TYPE, "base": self.base, "max_length": self.max_length,
            "snapshot_rows": self.snapshot_rows, "snapshot_columns": self.snapshot_columns, "aggregations": list(AGGREGATIONS), **(extra or {}),
        })

    # ---- encoding -------------------------------------------------------------------------------
    def encode_one(self, table: pd.DataFrame, question: str,
                   coords: Sequence[tuple[int, int]] | None = None,
                   answer_text: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        """Tokenize one (string) table + question, padded to ``max_length`` (rows dropped to fit)."""
        kw: dict[str, Any] = {}
        if coords is not None:
            kw = dict(answer_coordinates=[list(coords)], answer_text=[list(answer_text or [""])])
        enc = self.tokenizer(table=string_table(table), queries=[question], padding="max_length", truncation=True,
                             max_length=self.max_length, return_tensors="pt", **kw)
        return {k: v[0] for k, v in enc.items()}

    @staticmethod
    def collate(items: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        """Stack and trim the padding shared by the whole batch (sequences are right-padded)."""
        batch = {k: torch.stack([it[k] for it in items]) for k in items[0]}
        n = int(batch["attention_mask"].sum(1).max())
        for k, v in batch.items():
            if v.dim() >= 2 and v.shape[1] == batch["attention_mask"].shape[1] and k != "attention_mask":
                batch[k] = v[:, :n]
        batch["attention_mask"] = batch["attention_mask"][:, :n]
        return batch

    # ---- inference ------------------------------------------------------------------------------
    @torch.inference_mode()
    def predict(self, tables: Sequence[pd.DataFrame], questions: Sequence[str],
                batch_size: int = 16, threshold: float = 0.5) -> list[Prediction]:
        """Selected cells (row, column of the given table) and aggregation for each question."""
        self.model.eval()
        out: list[Prediction] = []
        for s in range(0, len(questions), batch_size):
            items = [self.encode_one(t, q) for t, q in
                     zip(tables[s:s + batch_size], questions[s:s + batch_size], strict=True)]
            batch = self.collate(items)
            inputs = {k: batch[k].to(self.device) for k in ("input_ids", "attention_mask", "token_type_ids")}
            res = self.model(**inputs)
            logits, agg_logits = res.logits.float().cpu(), res.logits_aggregation.float().cpu()
            coords, agg_idx = self.tokenizer.convert_logits_to_predictions(
                {k: v for k, v in batch.items()}, logits, agg_logits, cell_classification_threshold=threshold)
            agg_probs = torch.softmax(agg_logits, -1)
            token_probs = torch.sigmoid(logits)
            col_ids, row_ids = batch["token_type_ids"][:, :, 1], batch["token_type_ids"][:, :, 2]
            for i, (c, a) in enumerate(zip(coords, agg_idx, strict=True)):
                cells = sorted((int(r), int(col)) for r, col in c)
                probs = {}
                for r, col in cells:  # token ids are 1-based; 0 marks question/header tokens
                    mask = (col_ids[i] == col + 1) & (row_ids[i] == r + 1)
                    probs[(r, col)] = float(token_probs[i][mask].mean()) if mask.any() else 0.0
                out.append(Prediction(cells=cells, aggregation=AGGREGATIONS[int(a)],
                                      aggregation_probs=agg_probs[i].tolist(), cell_probs=probs))
        return out
