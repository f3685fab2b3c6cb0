"""Training kira's readers from ``{"question", "answers"}`` records.

Passages come either with the record (``"contexts": [{"title", "text"}]``) or from kira's own
retriever over an index version. With retrieved passages the supervision is *distant*, as in DPR
and FiD: a passage is positive when it contains an answer string. The extractive reader trains on
1 positive + hard negatives (the best-ranked passages without an answer); FiD trains on the top-k
passages with the answer as the decoder target.

Records marked ``"split": "heldout"`` are never trained on (they are for evaluation); a slice of
the training records is held back to calibrate the no-answer threshold, which is stored in the
artifact's ``kira.json``. ``max_seconds`` bounds wall time so the demo's first run stays on budget.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from kira.reader import fid_train
from kira.reader.calibration import NoAnswerCalibration, fit_no_answer
from kira.reader.extractive import ExtractiveReader, ReaderExample, answer_char_spans, extractive_loss
from kira.reader.fid import FiDReader
from kira.schema import Evidence

DEFAULT_BASE = {"extractive": "minilm-l6", "fid": "bert2bert:minilm-l6"}


@dataclass
class TrainOptions:
    kind: str = "extractive"  # extractive | fid
    base: str | None = None
    epochs: int = 1
    lr: float | None = None
    batch_size: int = 4
    n_passages: int = 4  # extractive: 1 positive + hard negatives; fid: passages fused per question
    max_length: int = 192
    max_questions: int | None = None
    max_seconds: float | None = None  # a safety cap: stops a far-too-slow run (with a warning)
    max_steps: int | None = None  # the budget: optimizer steps (sized for an idle 2-core box)
    title_in_passage: bool = True  # extractive: read ``title | text`` so a passage's own subject is a span
    freeze_layers: int = 0  # extractive: keep the lowest N transformer layers fixed (cheaper backward)
    bucket: bool = True  # batches of similar length (less padding)
    calibrate_fraction: float = 0.1
    max_calibrate: int = 100  # held-back training questions (when no calibration questions are given)
    # Given calibration questions are read as users' questions are: over the retriever's top
    # ``calibrate_k`` (the reader's default k), in retrieval order, with the rank prior on. Scores
    # fall as k grows (the passage softmax spreads), so a threshold fitted on a question's own
    # passage and two negatives abstained on 64% of natural questions read at k=10.
    calibrate_k: int = 10
    max_calibrate_records: int = 400
    retrieve_k: int = 20
    seed: int = 0
    device: str = "auto"
    gradient_checkpointing: bool = True
    bf16: bool = True  # autocast forward passes (AMX/AVX512-bf16 CPUs and GPUs run them much faster)
    freeze_embeddings: bool = True  # input word embeddings stay fixed: less optimizer work, less drift
    calibrate_seconds: float | None = None  # wall-time cap for fitting the no-answer threshold
    freeze_encoder: bool = False  # FiD: train the decoder only (steps ~3x cheaper; CPU budgets)
    copy_head: bool = False  # FiD: add a pointer-generator output that copies from the passages
    # extractive: the retriever's order as a prior at read time (relevance logit - rank_prior * log rank);
    # chosen on generated held-out questions read over the demo index at k=10, the default reader
    # (0.5 -> 1.0: KB-template EM 0.614 -> 0.652, text 0.834 -> 0.829; 1.25: 0.631 / 0.819)
    rank_prior: float = 1.0
    # extractive, while training: dropout on attention probabilities (None: the model's own, 0.1 for
    # MiniLM). At 0, CPU training runs eager attention: on 2 cores a step of 48 x 128 tokens took 1.40 s
    # with 0.1 (sdpa), 0.77 s with 0 (half the forward went to drawing dropout masks, and sdpa's CPU
    # backward is slow), and the 700-step pretraining 15.4 min instead of 21.9; see
    # ``speed_up_training``. Not the default: natural validation EM 0.792 vs 0.811 at 700 steps
    # (+16 / -22 questions), and 1,300 steps at 0 gave 0.808. Inference is unchanged (sdpa, no dropout).
    attention_dropout: float | None = None
    hidden_dropout: float | None = None  # extractive, while training: None keeps the model's own (0.1)
    log: Callable[[str], None] | None = None


@dataclass
class TrainResult:
    path: Path | None
    reader: Any
    losses: list[float] = field(default_factory=list)
    n_train: int = 0
    n_calibrate: int = 0
    steps: int = 0
    seconds: float = 0.0
    calibration: NoAnswerCalibration | None = None
    stopped_early: bool = False

    def summary(self) -> dict[str, Any]:
        first = sum(self.losses[:10]) / max(1, len(self.losses[:10]))
        last = sum(self.losses[-10:]) / max(1, len(self.losses[-10:]))
        return {"path": str(self.path) if self.path else None, "n_train": self.n_train,
                "n_calibrate": self.n_calibrate, "steps": self.steps, "seconds": round(self.seconds, 1),
                "loss_first10": first, "loss_last10": last, "stopped_early": self.stopped_early,
                "calibration": self.calibration.to_dict() if self.calibration else None}


def attach_passages(records: Sequence[dict], retriever=None, k: int = 20) -> list[list[Evidence]]:
    """Each record's passages: its given ``contexts``, else the retriever's top-k (batched)."""
    out: list[list[Evidence] | None] = []
    ask: list[int] = []
    for i, r in enumerate(records):
        if r.get("contexts"):
            out.append([Evidence(id=c.get("id") or f"ctx:{i}:{j}", title=c.get("title", ""), text=c["text"],
                                 score=1.0 / (j + 1), retriever="given")
                        for j, c in enumerate(r["contexts"])])
        elif retriever is not None:
            out.append(None)
            ask.append(i)
        else:
            raise ValueError(f"record {i} has no contexts and no retriever was given")
    for s in range(0, len(ask), 256):
        idx = ask[s:s + 256]
        qs = [records[i]["question"] for i in idx]
        hits = retriever.batch_search(qs, k=k)
        for i, h in zip(idx, hits, strict=True):
            out[i] = h
    return [o or [] for o in out]


def extractive_examples(records: Sequence[dict], evidences: Sequence[list[Evidence]],
                        n_passages: int) -> list[ReaderExample]:
    """Distant supervision: the best-ranked passage containing an answer + the best-ranked without."""
    out = []
    for r, evs in zip(records, evidences, strict=True):
        pos = [e for e in evs if answer_char_spans(f"{e.title} | {e.text}", r["answers"])]
        if not pos:
            continue
        neg = [e for e in evs if e not in pos][: max(0, n_passages - 1)]
        chosen = [pos[0], *neg]
        out.append(ReaderExample(question=r["question"], passages=[(e.title, e.text) for e in chosen],
                                 answers=list(r["answers"]), positives=[0]))
    return out


def _is_reader_artifact(spec: str) -> bool:
    p = Path(str(spec))
    return (p / "kira.json").exists()


def make_batches(examples: list, batch_size: int, seed: int = 0, bucket: bool = True) -> list[list]:
    """Batches in random order; with ``bucket``, each batch holds examples of similar length
    (sorted within chunks of 50 batches), so little compute goes to padding."""
    if not bucket:
        return [examples[i:i + batch_size] for i in range(0, len(examples), batch_size)]

    def size(ex) -> int:
        return len(ex.question) + sum(len(t) + len(p) for t, p in ex.passages)

    chunk = batch_size * 50
    batches = []
    for c in range(0, len(examples), chunk):
        part = sorted(examples[c:c + chunk], key=size)
        batches += [part[i:i + batch_size] for i in range(0, len(part), batch_size)]
    random.Random(seed).shuffle(batches)
    return batches


def fid_target(answers: Sequence[str], evs: Sequence[Evidence]) -> str:
    """The first gold answer the passages support (what FiD can learn to copy), else the first."""
    from kira.retriever.text import has_answer

    for a in answers:
        if any(has_answer([a], e.text) for e in evs):
            return a
    return answers[0]


def _split(records: list[dict], opts: TrainOptions) -> tuple[list[dict], list[dict]]:
    train = [r for r in records if r.get("split", "train") != "heldout"]
    rng = random.Random(opts.seed)
    rng.shuffle(train)
    n_cal = (min(opts.max_calibrate, int(len(train) * opts.calibrate_fraction))
             if len(train) >= 20 and opts.calibrate_fraction > 0 else 0)
    cal, train = train[:n_cal], train[n_cal:]
    if opts.max_questions:
        train = train[: opts.max_questions]
    return train, cal


def _optimizer(model: torch.nn.Module, lr: float, total: int):
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=0.01)
    warm = max(1, total // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(  # linear warm-up, then linear decay
        opt, lambda s: min((s + 1) / warm, max(0.0, (total - s) / max(1, total - warm))))
    return opt, sched


def _freeze_input_embeddings(model: torch.nn.Module) -> None:
    """Freeze the encoder's word embeddings unless they double as the output layer (tied T5/BART)."""
    enc = model.get_encoder() if hasattr(model, "get_encoder") else model
    emb = enc.get_input_embeddings() if hasattr(enc, "get_input_embeddings") else None
    out = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if emb is not None and (out is None or out.weight is not emb.weight):
        emb.weight.requires_grad_(False)


def _freeze_lower_layers(model: torch.nn.Module, n: int) -> None:
    """Freeze the embeddings and the lowest ``n`` transformer layers (BERT-style encoders)."""
    base = getattr(model, "base_model", model)
    layers = getattr(getattr(base, "encoder", None), "layer", None)
    if layers is None:
        return
    emb = getattr(base, "embeddings", None)
    if emb is not None:
        emb.requires_grad_(False)
    for layer in list(layers)[:n]:
        layer.requires_grad_(False)


def speed_up_training(qa_model: torch.nn.Module, attention_dropout: float | None,
                      hidden_dropout: float | None, device: torch.device) -> Callable[[], None]:
    """Set training-time dropout on an HF encoder and, on CPU without attention dropout, eager
    attention (faster forward and backward there than sdpa). Returns a function that restores the
    model's attention implementation and dropout for inference and saving."""
    config = qa_model.config
    saved_impl = getattr(config, "_attn_implementation", None)
    saved_p = {m: m.p for m in qa_model.modules() if isinstance(m, torch.nn.Dropout)}
    attn_modules = [m for name, m in qa_model.named_modules()
                    if isinstance(m, torch.nn.Dropout) and name.endswith("attention.self.dropout")]
    if hidden_dropout is not None:
        for m in saved_p:
            m.p = hidden_dropout
    if attention_dropout is not None:
        for m in attn_modules:
            m.p = attention_dropout
    if attention_dropout == 0 and device.type == "cpu" and saved_impl == "sdpa" and \
            hasattr(qa_model, "set_attn_implementation"):
        qa_model.set_attn_implementation("eager")

    def restore() -> None:
        for m, p in saved_p.items():
            m.p = p
        if saved_impl and getattr(config, "_attn_implementation", None) != saved_impl:
            qa_model.set_attn_implementation(saved_impl)

    return restore


def _loop(model: torch.nn.Module, batches: list, loss_fn: Callable[[Any], torch.Tensor], opts: TrainOptions,
          lr: float, result: TrainResult, frozen: torch.nn.Module | None = None) -> None:
    """One optimizer step per batch; a ``frozen`` sub-module runs in eval mode (no dropout: its
    outputs are the features the trained part learns from, and the pass is ~2x cheaper)."""
    from kira.plm.device import autocast, set_threads

    set_seed(opts.seed)
    device = next(model.parameters()).device
    total = len(batches) * opts.epochs
    if opts.max_steps:
        total = min(total, opts.max_steps)
    opt, sched = _optimizer(model, lr, total)
    t0 = time.perf_counter()
    model.train()
    if frozen is not None:
        frozen.eval()
    for _epoch in range(opts.epochs):
        for batch in batches:
            if device.type == "cpu":
                set_threads()  # per step: the cores other jobs leave free (plm.device.ThreadGovernor)
            with autocast(device, opts.bf16):
                loss = loss_fn(batch).float()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            result.losses.append(float(loss.detach()))
            result.steps += 1
            if opts.log and result.steps % 20 == 0:
                el = time.perf_counter() - t0
                eta = el / result.steps * (total - result.steps)
                opts.log(f"step {result.steps}/{total} loss {sum(result.losses[-20:]) / 20:.3f} "
                         f"({el:.0f}s, ~{eta / 60:.1f} min left)")
            if result.steps >= total:
                break
            if opts.max_seconds and time.perf_counter() - t0 > opts.max_seconds:
                result.stopped_early = True
                if opts.log:
                    opts.log(f"warning: stopped at step {result.steps}/{total} by the {opts.max_seconds:.0f}s "
                             "wall-clock cap (machine much slower than planned); the reader is under-trained")
                break
        if result.steps >= total:
            break
        if result.stopped_early:
            break
    model.eval()


def _cache_encoder_states(reader: FiDReader, examples: list[tuple], opts: TrainOptions) -> list[tuple]:
    """``(question, compact encoder states, target)`` for every example, encoded once in eval mode."""
    t0 = time.perf_counter()
    reader.model.get_encoder().eval()
    out = []
    for s in range(0, len(examples), 16):
        chunk = examples[s:s + 16]
        states = fid_train.encode_compact(reader, [q for q, _, _ in chunk], [e for _, e, _ in chunk], bf16=opts.bf16)
        out += [(q, st, a) for (q, _, a), st in zip(chunk, states, strict=True)]
    if opts.log:
        opts.log(f"cached frozen-encoder states of {len(out)} questions in {time.perf_counter() - t0:.0f}s")
    return out


def set_seed(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def calibrate(reader, records: Sequence[dict], evidences: Sequence[list[Evidence]], batch: int = 8,
              max_seconds: float | None = None) -> NoAnswerCalibration | None:
    """Fit the no-answer threshold on held-back questions (score vs. exact match)."""
    from kira.retriever.text import exact_match

    scores, correct = [], []
    t0 = time.perf_counter()
    for s in range(0, len(records), batch):
        if max_seconds and time.perf_counter() - t0 > max_seconds:
            break
        rs = records[s:s + batch]
        answers = reader.read_batch([r["question"] for r in rs], list(evidences[s:s + batch]), top_n=1,
                                    allow_no_answer=False)
        for r, ans in zip(rs, answers, strict=True):
            scores.append(ans[0].score if ans else 0.0)
            correct.append(bool(ans) and exact_match(ans[0].text, r["answers"]))
    if len(scores) < 10 or all(correct) or not any(correct):
        return None  # nothing to separate: leave the reader always answering
    return fit_no_answer(scores, correct)


def calibrate_in_use(reader, records: Sequence[dict], retriever, k: int = 10,
                     max_seconds: float | None = None) -> NoAnswerCalibration | None:
    """Fit abstention in the conditions of use: each question read over the retriever's top ``k``
    (not its given contexts), in retrieval order, as ``kira ask`` reads it."""
    questions = [{f: v for f, v in r.items() if f != "contexts"} for r in records]
    return calibrate(reader, questions, attach_passages(questions, retriever, k), max_seconds=max_seconds)


def train_reader(records: list[dict], opts: TrainOptions, retriever=None, out: str | Path | None = None,
                 extra: dict | None = None, calibrate_records: list[dict] | None = None,
                 calibrate_retriever=None) -> TrainResult:
    """Train an extractive or FiD reader; save it (with calibration) to ``out`` when given.

    ``calibrate_records`` (held-out generated questions) fit the no-answer threshold instead of a
    slice of the training records: read over ``calibrate_retriever``'s top ``calibrate_k`` when one
    is given (the conditions of use, ``calibrate_in_use``), else over their own contexts."""
    if opts.kind not in DEFAULT_BASE:
        raise ValueError(f"kind must be extractive or fid, got {opts.kind!r}")
    t0 = time.perf_counter()
    base = opts.base or DEFAULT_BASE[opts.kind]
    if calibrate_records is not None:
        opts.calibrate_fraction = 0.0
    train, cal = _split(records, opts)
    in_use = calibrate_records is not None and calibrate_retriever is not None
    if calibrate_records is not None:
        cal = list(calibrate_records)
        random.Random(opts.seed).shuffle(cal)
        cal = cal[:opts.max_calibrate_records]
    k = opts.retrieve_k if opts.kind == "extractive" else opts.n_passages
    train_evs = attach_passages(train, retriever, k)
    cal_evs = [] if in_use else attach_passages(cal, retriever, opts.n_passages)
    set_seed(opts.seed)
    if opts.kind == "extractive":
        kw = {} if _is_reader_artifact(base) else {"title_in_passage": opts.title_in_passage}
        reader = ExtractiveReader.from_base(base, device=opts.device, max_length=opts.max_length, **kw)
        if opts.freeze_embeddings:
            _freeze_input_embeddings(reader.model.qa)
        if opts.freeze_layers:
            _freeze_lower_layers(reader.model.qa, opts.freeze_layers)
        examples = extractive_examples(train, train_evs, opts.n_passages)
        batches = make_batches(examples, opts.batch_size, opts.seed, opts.bucket)
        result = TrainResult(path=None, reader=reader, n_train=len(examples), n_calibrate=len(cal))
        restore = speed_up_training(reader.model.qa, opts.attention_dropout, opts.hidden_dropout, reader.device)
        try:
            _loop(reader.model, batches, lambda b: extractive_loss(reader, b), opts, opts.lr or 5e-5, result)
        finally:
            restore()
    else:
        reader = FiDReader.load(base, device=opts.device, max_length=opts.max_length)
        if opts.gradient_checkpointing and not opts.freeze_encoder:  # a decoder alone has few activations
            fid_train.enable_gradient_checkpointing(reader)
        if opts.freeze_embeddings:
            _freeze_input_embeddings(reader.model)
        if opts.freeze_encoder:
            reader.model.get_encoder().requires_grad_(False)
        if opts.copy_head and reader.copy is None:
            reader.add_copy_head()
        examples = [(r["question"], evs[: opts.n_passages], fid_target(r["answers"], evs))
                    for r, evs in zip(train, train_evs, strict=True)]
        result = TrainResult(path=None, reader=reader, n_train=len(examples), n_calibrate=len(cal))
        if opts.freeze_encoder:
            # A frozen encoder gives the same states every epoch: encode once, train the decoder on them.
            examples = _cache_encoder_states(reader, examples, opts)

            def fid_loss(b):
                return fid_train.loss_on_states(reader, fid_train.pad_states(reader, [s for _, s, _ in b]), [a for _, _, a in b])
        else:
            def fid_loss(b):
                return fid_train.fid_loss(reader, [q for q, _, _ in b], [e for _, e, _ in b], [a for _, _, a in b])

        batches = [examples[i:i + opts.batch_size] for i in range(0, len(examples), opts.batch_size)]
        _loop(reader.trainable(), batches, fid_loss, opts, opts.lr or 2e-4, result,
              frozen=reader.model.get_encoder() if opts.freeze_encoder else None)
    if opts.kind == "extractive" and in_use:  # calibration reads retrieved passages, in order
        reader.rank_prior = opts.rank_prior
    if cal:
        reader.bf16 = opts.bf16
        result.calibration = (calibrate_in_use(reader, cal, calibrate_retriever, opts.calibrate_k, opts.calibrate_seconds)
                              if in_use else calibrate(reader, cal, cal_evs, max_seconds=opts.calibrate_seconds))
        reader.bf16 = False
        reader.calibration = result.calibration
    result.seconds = time.perf_counter() - t0
    if opts.kind == "extractive":  # after calibration on given contexts: those are not in retrieval order
        reader.rank_prior = opts.rank_prior
    if out is not None:
        info = {"trained_on": {"n_train": result.n_train, "n_calibrate": result.n_calibrate,
                               "steps": result.steps, "seconds": round(result.seconds, 1),
                               "options": {k: v for k, v in asdict(opts).items() if k != "log"},
                               "loss_first": result.losses[0] if result.losses else None,
                               "loss_last": result.losses[-1] if result.losses else None},
                **(extra or {})}
        result.path = Path(reader.save(out, extra=info))
    if result.losses and not all(math.isfinite(x) for x in result.losses):
        raise RuntimeError("training diverged (non-finite loss)")
    return result
