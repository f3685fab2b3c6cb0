"""DPR training (Karpukhin et al. 2020): question and passage encoders from (question, answers) pairs.

Data: JSONL rows ``{"question", "answers", "positive_ctxs"?}``. Without ``positive_ctxs`` the positive
is the highest-ranked BM25 passage containing an answer (SQuAD-normalised match); the hard negative
is the highest-ranked BM25 passage that does *not* contain one, as in the paper.

Loss: for a batch of B questions, the B positives and B hard negatives form 2B candidates; each
question's NLL of its own positive against all of them (in-batch negatives + hard negatives).
A candidate that is the same passage as the question's positive (two questions sharing a passage)
is masked, so it is never pushed away as a false negative.

Encoders start from any zoo spec (default: the packaged MiniLM). With normalised encoders (MiniLM)
scores are cosines, scaled by ``scale`` (20, as sentence-transformers' MultipleNegativesRankingLoss)
so the softmax is not flat; unnormalised encoders (DPR's CLS pooling) use the raw dot product.

Output: ``--shared`` → one encoder directory; ``--separate`` → ``passage/`` and ``question/``, the
passage encoder's ``kira.json`` naming its question encoder, so an index rebuilt with
``kira index build --index WS --encoder OUT/passage`` makes dense search use ``OUT/question``.
"""

from __future__ import annotations

import json
import math
import os
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from kira.errors import KiraError
from kira.retriever.text import has_answer


def passage_input(title: str, text: str) -> str:
    """What the passage encoder sees; must match what index build encodes."""
    try:
        from kira.index_build.shards import passage_contents
    except ImportError:  # index build not installed: same format (pyserini's wikipedia-dpr)
        return f"{title}\n{text}" if title else text
    return passage_contents(title, text)


@dataclass
class Ctx:
    id: str
    title: str
    text: str


@dataclass
class DPRExample:
    question: str
    answers: list[str]
    positive: Ctx
    hard_negative: Ctx | None = None


@dataclass
class MiningReport:
    n_rows: int = 0
    n_examples: int = 0
    given_positive: int = 0
    mined_positive: int = 0
    no_positive: int = 0
    no_hard_negative: int = 0


def _given_id(text: str) -> str:
    import hashlib

    return "given:" + hashlib.sha1(text.encode()).hexdigest()[:16]


def _ctx_from_row(c: Any) -> Ctx:
    """A ``positive_ctxs`` entry: DPR's ``{"title", "text", "passage_id"?}`` or a bare string."""
    if isinstance(c, str):
        return Ctx(id=_given_id(c), title="", text=c)
    cid = c.get("passage_id") or c.get("id") or _given_id(c.get("title", "") + "\n" + (c.get("text") or ""))
    return Ctx(id=str(cid), title=c.get("title", "") or "", text=c.get("text") or c.get("contents") or "")


def mine_examples(rows: Sequence[dict[str, Any]], bm25, k: int = 100,
                  batch: int = 256) -> tuple[list[DPRExample], MiningReport]:
    """Positives (given or mined) and one BM25 hard negative per question."""
    rep = MiningReport(n_rows=len(rows))
    out: list[DPRExample] = []
    for start in range(0, len(rows), batch):
        chunk = rows[start:start + batch]
        hits = bm25.batch_search([r["question"] for r in chunk], k) if bm25 is not None else [[] for _ in chunk]
        for row, h in zip(chunk, hits, strict=True):
            answers = list(row.get("answers") or [])
            given = [c for c in (row.get("positive_ctxs") or []) if c]
            if given:
                pos = _ctx_from_row(given[0])
                rep.given_positive += 1
            else:
                first = next((e for e in h if has_answer(answers, e.text)), None)
                if first is None:
                    rep.no_positive += 1
                    continue
                pos = Ctx(first.id, first.title, first.text)
                rep.mined_positive += 1
            neg = next((Ctx(e.id, e.title, e.text) for e in h
                        if e.id != pos.id and not has_answer(answers, e.text)), None)
            if neg is None:
                rep.no_hard_negative += 1
            out.append(DPRExample(row["question"], answers, pos, neg))
    rep.n_examples = len(out)
    return out, rep


def dpr_loss(q: torch.Tensor, p: torch.Tensor, scale: float = 1.0,
             mask: torch.Tensor | None = None) -> torch.Tensor:
    """NLL of question i's positive (column i) against all candidates ``p`` ([B, d] × [C, d], C ≥ B).

    ``mask[i, j]`` True hides candidate j from question i (a duplicate of its own positive).
    """
    scores = scale * q @ p.T
    if mask is not None:
        scores = scores.masked_fill(mask, float("-inf"))
    labels = torch.arange(q.shape[0], device=q.device)
    return torch.nn.functional.cross_entropy(scores, labels)


def _batch_tensors(batch: Sequence[DPRExample]) -> tuple[list[str], list[str], list[str], list[str]]:
    """(questions, candidate texts, candidate ids, positive ids): positives first, then hard negatives."""
    qs = [ex.question for ex in batch]
    cands = [ex.positive for ex in batch] + [ex.hard_negative for ex in batch if ex.hard_negative is not None]
    return qs, [passage_input(c.title, c.text) for c in cands], [c.id for c in cands], [ex.positive.id for ex in batch]


def _mask(cand_ids: list[str], pos_ids: list[str], device) -> torch.Tensor:
    m = torch.zeros(len(pos_ids), len(cand_ids), dtype=torch.bool)
    for i, pid in enumerate(pos_ids):
        for j, cid in enumerate(cand_ids):
            if j != i and cid == pid:
                m[i, j] = True
    return m.to(device)


@dataclass
class TrainResult:
    out: Path
    question_dir: Path
    passage_dir: Path
    shared: bool
    losses: list[float] = field(default_factory=list)
    epoch_losses: list[float] = field(default_factory=list)
    n_examples: int = 0
    loss_before: float = float("nan")  # eval-mode loss on a fixed probe set, before and after training
    loss_after: float = float("nan")


class DPRModel(torch.nn.Module):
    """Question and passage encoders (the same module when shared)."""

    def __init__(self, base: str = "minilm-l6", shared: bool = False, device: str = "auto",
                 max_length: int = 256, pooling: str | None = None):
        super().__init__()
        from kira.plm.encoder import TextEncoder

        self.base, self.shared = base, shared
        kw = {"device": device, "max_length": max_length, "pooling": pooling}
        self.question = TextEncoder(base, **kw)
        self.passage = self.question if shared else TextEncoder(base, **kw)

    @property
    def device(self) -> torch.device:
        return self.question.device

    def loss(self, batch: Sequence[DPRExample], scale: float) -> torch.Tensor:
        qs, ctexts, cids, pids = _batch_tensors(batch)
        q = self.question.embed(qs)
        p = self.passage.embed(ctexts)
        return dpr_loss(q, p, scale, _mask(cids, pids, q.device))

    @torch.no_grad()
    def eval_loss(self, examples: Sequence[DPRExample], batch_size: int, scale: float) -> float:
        """Mean batch loss over ``examples`` in a fixed order (what the training test compares)."""
        self.eval()
        losses = [float(self.loss(examples[i:i + batch_size], scale))
                  for i in range(0, len(examples), batch_size)]
        return sum(losses) / max(1, len(losses))

    def save(self, out: str | os.PathLike, extra: dict[str, Any] | None = None) -> tuple[Path, Path]:
        from kira.plm import zoo

        out = Path(out)
        meta = {"pooling": self.question.pooling, "normalize": self.question.normalize,
                "max_length": self.question.max_length, "base": self.base, **(extra or {})}
        if self.shared:
            zoo.save_artifact(out, self.question.model, self.question.tokenizer,
                              {**meta, "type": "dpr-encoder", "role": "shared"})
            return out, out
        qdir, pdir = out / "question", out / "passage"
        zoo.save_artifact(qdir, self.question.model, self.question.tokenizer,
                          {**meta, "type": "dpr-question-encoder", "role": "question"})
        zoo.save_artifact(pdir, self.passage.model, self.passage.tokenizer,
                          {**meta, "type": "dpr-passage-encoder", "role": "passage",
                           "query_encoder": "../question"})
        return qdir, pdir


def _warmup_then_decay(opt: torch.optim.Optimizer, steps: int, n_warm: int):
    """Linear warm-up over ``n_warm`` steps, then linear decay to 0 at ``steps``."""
    return torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / max(1, n_warm) if s < n_warm else max(0.0, (steps - s) / max(1, steps - n_warm)))


def train_dpr(examples: Sequence[DPRExample], out: str | os.PathLike, base: str = "minilm-l6",
              shared: bool = False, epochs: int = 1, batch_size: int = 16, lr: float = 2e-5,
              warmup: float = 0.1, scale: float | None = None, seed: int = 0, device: str = "auto",
              max_length: int = 256, pooling: str | None = None,
              log: Callable[[str], None] | None = None) -> TrainResult:
    """Train DPR encoders on mined examples and save them to ``out``.

    ``pooling`` overrides the base encoder's (cls for DPR checkpoints, mean for MiniLM); the choice
    is saved in ``kira.json`` so index build and search pool the same way.
    """
    if not examples:
        raise KiraError("no training examples: no question had a positive passage")
    random.seed(seed)
    torch.manual_seed(seed)
    model = DPRModel(base, shared, device, max_length, pooling)
    if scale is None:
        scale = 20.0 if model.question.normalize else 1.0
    params = list({id(p): p for p in model.parameters()}.values())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    steps = epochs * math.ceil(len(examples) / batch_size)
    sched = _warmup_then_decay(opt, steps, int(warmup * steps))
    res = TrainResult(Path(out), Path(out), Path(out), shared, n_examples=len(examples))
    probe = list(examples[:256])
    res.loss_before = model.eval_loss(probe, batch_size, scale)
    order = list(examples)
    step = 0
    for epoch in range(epochs):
        random.shuffle(order)
        model.train()
        ep = []
        for i in range(0, len(order), batch_size):
            batch = order[i:i + batch_size]
            if len(batch) < 2 and len(order) >= 2:
                continue  # a lone question has no in-batch negatives
            loss = model.loss(batch, scale)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 2.0)
            opt.step()
            sched.step()
            step += 1
            res.losses.append(float(loss.detach()))
            ep.append(res.losses[-1])
        res.epoch_losses.append(sum(ep) / max(1, len(ep)))
        if log:
            log(f"epoch {epoch + 1}/{epochs}: mean loss {res.epoch_losses[-1]:.4f} ({len(ep)} steps)")
    res.loss_after = model.eval_loss(probe, batch_size, scale)
    if log:
        log(f"probe loss {res.loss_before:.4f} -> {res.loss_after:.4f} on {len(probe)} examples")
    res.question_dir, res.passage_dir = model.save(out, {"scale": scale, "epochs": epochs, "lr": lr,
                                                         "batch_size": batch_size, "n_examples": len(examples)})
    (Path(out) / "train_log.json").write_text(json.dumps(
        {"losses": res.losses, "epoch_losses": res.epoch_losses, "n_examples": len(examples),
         "loss_before": res.loss_before, "loss_after": res.loss_after, "shared": shared, "base": base},
        indent=1))
    return res


def train_question_encoder(examples: Sequence[DPRExample], passage_vectors: Callable[[list[str]], dict[str, Any]],
                           out: str | os.PathLike, base: str = "minilm-l6", steps: int = 300, batch_size: int = 32,
                           lr: float = 2e-5, scale: float | None = None, seed: int = 0, device: str = "auto",
                           pooling: str | None = None, max_length: int = 64,
                           log: Callable[[str], None] | None = None) -> TrainResult:
    """Fine-tune only the question tower against the index's own passage vectors, kept fixed.

    Why: the passages stay as they were encoded (``passage_vectors(ids)``, read back from the FAISS
    index), so no passage is encoded during training and the index needs no rebuild: the result is
    a ``dpr-question-encoder`` that ``[index] query_encoder`` puts in front of the existing index.
    Loss as ``train_dpr`` (in-batch + one hard negative; ``scale`` 20 for normalised encoders, else 1)."""
    import numpy as np

    from kira.plm import zoo
    from kira.plm.encoder import TextEncoder

    ids = list(dict.fromkeys(c.id for ex in examples for c in (ex.positive, ex.hard_negative) if c is not None))
    vecs = passage_vectors(ids)
    usable = [ex for ex in examples if ex.positive.id in vecs]
    if len(usable) < 2:
        raise KiraError(f"no training examples: {len(examples)} questions, {len(usable)} with a positive "
                        f"passage in the index")
    random.seed(seed)
    torch.manual_seed(seed)
    enc = TextEncoder(base, device=device, max_length=max_length, pooling=pooling)
    if scale is None:
        scale = 20.0 if enc.normalize else 1.0
    row = {pid: i for i, pid in enumerate(vecs)}
    table = torch.from_numpy(np.stack([np.asarray(v, dtype=np.float32) for v in vecs.values()])).to(enc.device)
    params = [p for p in enc.model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    sched = _warmup_then_decay(opt, steps, max(1, steps // 10))

    def loss_of(batch: Sequence[DPRExample]) -> torch.Tensor:
        cands = [ex.positive.id for ex in batch] + [ex.hard_negative.id for ex in batch
                                                     if ex.hard_negative is not None and ex.hard_negative.id in row]
        q = enc.embed([ex.question for ex in batch])
        return dpr_loss(q, table[[row[c] for c in cands]], scale, _mask(cands, [ex.positive.id for ex in batch], q.device))

    probe = usable[:256]

    @torch.no_grad()
    def probe_loss() -> float:
        enc.model.eval()
        return sum(float(loss_of(probe[i:i + batch_size])) for i in range(0, len(probe), batch_size)) / \
            max(1, math.ceil(len(probe) / batch_size))

    res = TrainResult(Path(out), Path(out), Path(out), shared=False, n_examples=len(usable))
    res.loss_before = probe_loss()
    order: list[DPRExample] = []
    enc.model.train()
    for step in range(steps):
        if len(order) < batch_size:
            order += random.sample(usable, len(usable))
        batch, order = order[:batch_size], order[batch_size:]
        loss = loss_of(batch)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 2.0)
        opt.step()
        sched.step()
        res.losses.append(float(loss.detach()))
        if log and (step + 1) % 50 == 0:
            log(f"step {step + 1}/{steps} loss {sum(res.losses[-50:]) / 50:.4f}")
    res.loss_after = probe_loss()
    if log:
        log(f"probe loss {res.loss_before:.4f} -> {res.loss_after:.4f} on {len(probe)} examples")
    zoo.save_artifact(out, enc.model, enc.tokenizer, {
        "type": "dpr-question-encoder", "role": "question", "pooling": enc.pooling, "normalize": enc.normalize,
        "max_length": enc.max_length, "base": base, "passages": "fixed: the index's own vectors",
        "steps": steps, "batch_size": batch_size, "lr": lr, "scale": scale, "n_examples": len(usable),
        "loss_before": res.loss_before, "loss_after": res.loss_after})
    return res
