"""Filtered rank-based link prediction: MRR and Hits@1/3/10 over both sides.

For each test triple (h, r, t) every entity is scored as tail of (h, r, ?) and as head of
(?, r, t). *Filtered* (Bordes et al. 2013): other known true triples (train + valid + test) are
removed from the candidates before ranking, the test triple itself kept. Ties are *realistic*:
rank = mean of the optimistic rank (1 + #better) and the pessimistic rank (#better-or-equal),
i.e. the expected rank under random tie breaking, so a constant scorer does not look perfect.

The filter is built batch by batch with tensor ops only: known triples are sorted once by the
key ``h·R + r`` (tails side) and ``r·E + t`` (heads side); a batch of queries finds its block of
known answers with ``searchsorted`` and scatters ``-inf`` into a [batch, E] score matrix. Memory is
O(batch × E + #known triples), so 100k+ entities are fine with a modest batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

ScoreFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (ids a [B], ids b [B]) -> [B, E]
KS = (1, 3, 10)


@dataclass
class LinkPredictionResult:
    mrr: float
    hits_at_1: float
    hits_at_3: float
    hits_at_10: float
    mean_rank: float
    n: int
    sides: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _SortedIndex:
    """Known answers grouped by a query key, for vectorised filtering."""

    def __init__(self, keys: torch.Tensor, answers: torch.Tensor):
        order = torch.argsort(keys)
        self.keys = keys[order].contiguous()
        self.answers = answers[order]

    def scatter_mask(self, scores: torch.Tensor, qkeys: torch.Tensor) -> None:
        """Set ``scores[i, a] = -inf`` for every known answer a of query i (in place)."""
        lo = torch.searchsorted(self.keys, qkeys, right=False)
        hi = torch.searchsorted(self.keys, qkeys, right=True)
        counts = hi - lo
        total = int(counts.sum())
        if total == 0:
            return
        rows = torch.repeat_interleave(torch.arange(len(qkeys), device=scores.device), counts)
        starts = torch.repeat_interleave(lo, counts)
        offsets = torch.arange(total, device=scores.device) - torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)
        scores[rows, self.answers[starts + offsets]] = float("-inf")


def realistic_ranks(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Realistic ranks of ``targets`` in each row of ``scores`` (call after filtering)."""
    true = scores.gather(1, targets[:, None])
    better = (scores > true).sum(1)
    not_worse = (scores >= true).sum(1)
    return (better + 1 + not_worse).double() / 2


def _metrics(ranks: torch.Tensor) -> dict[str, float]:
    out = {"mrr": float((1 / ranks).mean()), "mean_rank": float(ranks.mean())}
    for k in KS:
        out[f"hits_at_{k}"] = float((ranks <= k).double().mean())
    return out


def side_ranks(score_fn: ScoreFn, queries: torch.Tensor, targets: torch.Tensor, index: _SortedIndex,
               qkeys: torch.Tensor, num_entities: int, batch_size: int) -> torch.Tensor:
    ranks = []
    for s in range(0, len(targets), batch_size):
        q = queries[s:s + batch_size]
        tgt = targets[s:s + batch_size]
        scores = score_fn(q[:, 0], q[:, 1]).float().clone()
        if scores.shape != (len(tgt), num_entities):
            raise ValueError(f"scorer returned {tuple(scores.shape)}, expected {(len(tgt), num_entities)}")
        dev = scores.device
        tgt = tgt.to(dev)
        true = scores.gather(1, tgt[:, None])
        index.scatter_mask(scores, qkeys[s:s + batch_size].to(dev))
        scores.scatter_(1, tgt[:, None], true)
        ranks.append(realistic_ranks(scores, tgt).cpu())
    return torch.cat(ranks) if ranks else torch.zeros(0, dtype=torch.double)


def evaluate_link_prediction(score_tails: ScoreFn, score_heads: ScoreFn, test: torch.Tensor,
                             known: torch.Tensor, num_entities: int, num_relations: int,
                             batch_size: int = 256, filtered: bool = True,
                             device: torch.device | str | None = None) -> LinkPredictionResult:
    """Filtered MRR / Hits@k over tails (``score_tails(h, r)``) and heads (``score_heads(r, t)``).

    ``test`` and ``known`` are id triples [N, 3]; ``known`` should hold train+valid+test.
    """
    test = test.long()
    known = known.long()
    dev = torch.device(device) if device is not None else torch.device("cpu")
    batch_size = max(1, min(batch_size, (1 << 26) // max(1, num_entities)))
    if not filtered:
        known = known[:0]
    kh, kr, kt = (known[:, i].to(dev) for i in range(3))
    tail_index = _SortedIndex(kh * num_relations + kr, kt)
    head_index = _SortedIndex(kr * num_entities + kt, kh)
    h, r, t = (test[:, i].to(dev) for i in range(3))
    tail_ranks = side_ranks(score_tails, torch.stack([h, r], 1), t, tail_index, h * num_relations + r,
                            num_entities, batch_size)
    head_ranks = side_ranks(score_heads, torch.stack([r, t], 1), h, head_index, r * num_entities + t,
                            num_entities, batch_size)
    both = _metrics(torch.cat([head_ranks, tail_ranks]))
    return LinkPredictionResult(
        mrr=both["mrr"], hits_at_1=both["hits_at_1"], hits_at_3=both["hits_at_3"],
        hits_at_10=both["hits_at_10"], mean_rank=both["mean_rank"], n=len(test),
        sides={"head": _metrics(head_ranks), "tail": _metrics(tail_ranks)},
    )


def evaluate_embedder(embedder, test_triples, known_triples, batch_size: int = 256,
                      filtered: bool = True) -> LinkPredictionResult:
    """Evaluate a trained ``KGEmbedder`` (or anything with ``vocab``, ``score_tails``,
    ``score_heads``) on ``Triple`` records; ``known_triples`` are all true triples for filtering."""
    vocab = embedder.vocab
    test = vocab.ids(test_triples)
    known = vocab.ids(known_triples)
    return evaluate_link_prediction(embedder.score_tails, embedder.score_heads, test, known,
                                    len(vocab.entities), len(vocab.relations), batch_size, filtered,
                                    device=getattr(embedder, "device", None))
