"""Fine-tuning the table QA model on generated questions (strongly supervised TAPAS).

WHY a separate file: the model file says what TAPAS is; this one says how kira teaches it —
examples become (view, question, answer cells, aggregation), new parameters (table embeddings,
heads) learn 10x faster than the pretrained BERT body, bf16 autocast where the CPU/GPU has it,
and a fixed step budget so a run costs the same everywhere.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pandas as pd
import torch

from kira.plm.device import autocast, set_threads
from kira.tables.generate import TableQuestion, view_frame
from kira.tables.tapas import TableQAModel
from kira.tables.values import AGGREGATIONS

NEW_PARAM_MARKERS = ("token_type_embeddings", "output_weights", "output_bias", "column_output",
                     "aggregation_classifier")


@dataclass
class TrainStats:
    examples: int
    skipped: int
    steps: int
    seconds: float
    first_loss: float
    final_loss: float


def question_frame(tables: dict[str, pd.DataFrame], q: TableQuestion | dict) -> pd.DataFrame:
    """The view a generated question is about (whole table when it names no view)."""
    d = q if isinstance(q, dict) else q.__dict__
    view = d.get("view") or {}
    return view_frame(tables[d["table"]], view.get("rows"), view.get("columns"))


def encode_examples(model: TableQAModel, questions: Sequence[TableQuestion],
                    tables: dict[str, pd.DataFrame]) -> tuple[list[dict], int]:
    """Tokenized training items; questions whose answer cells were cut off by truncation are skipped."""
    items, skipped = [], 0
    for q in questions:
        try:
            enc = model.encode_one(question_frame(tables, q), q.question, q.coordinates, q.answers)
        except ValueError:  # TAPAS's tokenizer: answer cells fell in rows dropped to fit max_length
            skipped += 1
            continue
        if q.coordinates and int(enc["labels"].sum()) == 0:
            skipped += 1
            continue
        enc["aggregation_labels"] = torch.tensor(AGGREGATIONS.index(q.aggregation))
        fa = q.float_answer
        enc["float_answer"] = torch.tensor(float("nan") if fa is None else float(fa))
        items.append(enc)
    return items, skipped


def train_table_qa(model: TableQAModel, questions: Sequence[TableQuestion], tables: dict[str, pd.DataFrame],
                   steps: int = 300, batch_size: int = 16, lr: float = 1e-4, head_lr: float = 1e-3,
                   warmup: float = 0.1, seed: int = 0, bf16: bool = True, max_seconds: float | None = None,
                   log: Callable[[str], None] | None = print) -> TrainStats:
    """Train ``model`` in place for ``steps`` optimizer steps over shuffled epochs of the questions
    (or until ``max_seconds`` of training have passed; ``TrainStats.steps`` says how many ran)."""
    set_threads()
    torch.manual_seed(seed)
    rng = random.Random(seed)
    t0 = time.perf_counter()
    items, skipped = encode_examples(model, questions, tables)
    if not items:
        raise ValueError("no trainable examples (all were empty or truncated away)")
    if log:
        log(f"encoded {len(items)} examples ({skipped} skipped) in {time.perf_counter() - t0:.0f}s")
    new = [p for n, p in model.model.named_parameters() if any(m in n for m in NEW_PARAM_MARKERS)]
    new_ids = {id(p) for p in new}
    body = [p for p in model.model.parameters() if id(p) not in new_ids]
    opt = torch.optim.AdamW([{"params": body, "lr": lr}, {"params": new, "lr": head_lr}], weight_decay=0.01)
    n_warm = max(1, int(steps * warmup))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / n_warm) * max(0.0, (steps - s) / max(1, steps - n_warm)) if s >= n_warm
        else (s + 1) / n_warm)
    model.model.train()
    order: list[int] = []
    loss_ema = first = math.nan
    t_train = time.perf_counter()
    done = 0
    for step in range(steps):
        set_threads()  # per step: the cores other jobs leave free
        if max_seconds is not None and time.perf_counter() - t_train > max_seconds:
            if log:
                log(f"time budget of {max_seconds:.0f}s reached after {step} steps")
            break
        if len(order) < batch_size:
            more = list(range(len(items)))
            rng.shuffle(more)
            order += more
        idx, order = order[:batch_size], order[batch_size:]
        batch = model.collate([items[i] for i in idx])
        batch = {k: v.to(model.device) for k, v in batch.items()}
        with autocast(model.device, bf16):
            out = model.model(**batch)
        loss = out.loss.float()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        done = step + 1
        val = float(loss.detach())
        first = val if math.isnan(first) else first
        loss_ema = val if math.isnan(loss_ema) else 0.9 * loss_ema + 0.1 * val
        if log and (step % 10 == 0 or step == steps - 1):
            log(f"step {step + 1}/{steps} loss {loss_ema:.3f} ({time.perf_counter() - t0:.0f}s)")
    model.model.eval()
    return TrainStats(len(items), skipped, done, time.perf_counter() - t0, first, loss_ema)
