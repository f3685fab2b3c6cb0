"""Knowledge injected into the reader's encoder: ERNIE fusion, a KnowBERT KAR layer, K-Adapters,
and an entity-answer head (the modules; linking and training live in ``knowledge_reader`` /
``knowledge_train``).

All of them sit between two encoder layers (a forward hook on layer ``layer``) and add to the
hidden states through a **gate initialised to zero**, so a reader with knowledge but untrained
gates computes exactly what the base reader computes: knowledge can only help once it has been
learned, and a KB plugged in or removed never breaks a reader that did not learn to use it.

* ``ErnieFusion`` (Zhang et al. 2019): each token of a linked mention is fused with the
  prior-weighted embedding of its candidate entities, ``h + g * W_o gelu(W_t h + W_e e)``.
* ``KARLayer`` (KnowBERT, Peters et al. 2019): a mention's pooled span state is projected to the
  entity space, attends over its candidates (scores + log prior), the attended entity embedding is
  added back, and every token re-attends over these knowledge-enhanced span states
  (recontextualisation), projected to the model width and gated.
* ``KAdapter`` (Wang et al. 2021): one bottleneck adapter per KB, trained with the base frozen on that
  KB's verbalized facts (relation classification); it carries the relation head the entity-answer
  head uses.
* ``EntityAnswerHead``: scores KB entities as answers, ``Σ_r p(r | question) · KGE(h, r, e)`` over the
  linked question entities ``h`` and candidate answers ``e`` (the linked entities' neighbours or a
  small KB's entities): relation from the adapter's classifier, plausibility from the KB embedder.

Entity embeddings come from a trained KB embedder (TransE/TransH/TransD or KEPLER, whose text
encoder also gives vectors for entities it never saw) and stay frozen (``EntityTable``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn


# ---- entity vectors -----------------------------------------------------------------------------
@dataclass
class EntityTable:
    """Frozen entity vectors of one or more KBs: row 0 is padding, ``rows[(kb, id)]`` the rest."""

    vectors: torch.Tensor  # [N + 1, d]
    rows: dict[tuple[str, str], int] = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    @classmethod
    def empty(cls, dim: int) -> EntityTable:
        return cls(torch.zeros(1, dim))

    def add(self, kb: str, ids: Sequence[str], vectors: torch.Tensor) -> None:
        """Add (or overwrite) ``ids`` of ``kb`` with ``vectors`` (rows of the table's width)."""
        vectors = vectors.detach().float().cpu()
        if vectors.shape[1] != self.dim:
            raise ValueError(f"KB {kb!r}: entity vectors of width {vectors.shape[1]}, the table holds {self.dim}")
        new = [i for i in ids if (kb, i) not in self.rows]
        base = self.vectors.shape[0]
        self.vectors = torch.cat([self.vectors, torch.zeros(len(new), self.dim)])
        for j, i in enumerate(new):
            self.rows[(kb, i)] = base + j
        idx = torch.tensor([self.rows[(kb, i)] for i in ids], dtype=torch.long)
        self.vectors[idx] = vectors

    def add_embedder(self, kb: str, embedder) -> None:
        """Vectors of a ``KGEmbedder`` (``module.ent``) or ``Kepler`` (``_table``) for KB ``kb``."""
        vocab = embedder.vocab
        vecs = embedder.module.ent if getattr(embedder, "module", None) is not None else embedder._need()
        self.add(kb, vocab.entities, vecs)

    def remove_kb(self, kb: str) -> None:
        """Forget KB ``kb``'s rows (their vectors become padding; row numbers of others are kept)."""
        for key in [k for k in self.rows if k[0] == kb]:
            self.vectors[self.rows.pop(key)] = 0.0

    def lookup(self, keys: Sequence[tuple[str, str]]) -> list[int]:
        """Rows of ``keys`` (0 for an entity without a vector)."""
        return [self.rows.get(tuple(k), 0) for k in keys]


@dataclass
class KnowledgeBatch:
    """The linked mentions of one forward batch, as token spans and candidate table rows.

    ``spans[b, m] = (start, end)`` inclusive token positions; ``cands[b, m, c]`` table rows (0 = none);
    ``priors`` their link priors; ``mask[b, m]`` which mention slots are real."""

    spans: torch.Tensor  # [B, M, 2] long
    cands: torch.Tensor  # [B, M, C] long
    priors: torch.Tensor  # [B, M, C] float
    mask: torch.Tensor  # [B, M] bool

    @classmethod
    def build(cls, mentions: Sequence[Sequence[tuple[int, int, Sequence[int], Sequence[float]]]],
              device: torch.device | str = "cpu") -> KnowledgeBatch:
        """From per-row lists of ``(start, end, rows, priors)``."""
        b = len(mentions)
        m = max([len(x) for x in mentions] + [1])
        c = max([len(r) for x in mentions for _, _, r, _ in x] + [1])
        spans = torch.zeros(b, m, 2, dtype=torch.long)
        cands = torch.zeros(b, m, c, dtype=torch.long)
        priors = torch.zeros(b, m, c)
        mask = torch.zeros(b, m, dtype=torch.bool)
        for i, row in enumerate(mentions):
            for j, (s, e, rows, ps) in enumerate(row):
                spans[i, j] = torch.tensor([s, e])
                cands[i, j, :len(rows)] = torch.tensor(list(rows), dtype=torch.long)
                priors[i, j, :len(ps)] = torch.tensor(list(ps), dtype=torch.float)
                mask[i, j] = any(r > 0 for r in rows)
        return cls(spans.to(device), cands.to(device), priors.to(device), mask.to(device))

    def token_mask(self, length: int) -> torch.Tensor:
        """[B, M, L]: token ``l`` lies in mention ``m``."""
        pos = torch.arange(length, device=self.spans.device)
        inside = (pos[None, None] >= self.spans[..., :1]) & (pos[None, None] <= self.spans[..., 1:])
        return inside & self.mask[..., None]


def _entity_vectors(table: torch.Tensor, kb: KnowledgeBatch) -> torch.Tensor:
    """[B, M, C, d] candidate vectors (padding rows are zero)."""
    return table[kb.cands]


def _span_mean(h: torch.Tensor, inside: torch.Tensor) -> torch.Tensor:
    """[B, M, H] mean hidden state of each mention's tokens."""
    w = inside.to(h.dtype)
    return torch.einsum("bml,blh->bmh", w, h) / w.sum(-1, keepdim=True).clamp_min(1.0)


# ---- the injected modules -----------------------------------------------------------------------
class ErnieFusion(nn.Module):
    """Token-entity fusion on mention tokens, gated (gate 0 = the base model)."""

    def __init__(self, hidden: int, ent_dim: int, inner: int = 128):
        super().__init__()
        self.tok = nn.Linear(hidden, inner)
        self.ent = nn.Linear(ent_dim, inner, bias=False)
        self.out = nn.Linear(inner, hidden)
        self.gate = nn.Parameter(torch.zeros(hidden))

    def forward(self, h: torch.Tensor, table: torch.Tensor, kb: KnowledgeBatch) -> torch.Tensor:
        inside = kb.token_mask(h.shape[1]).to(h.dtype)  # [B, M, L]
        e = (_entity_vectors(table, kb) * kb.priors[..., None]).sum(2).to(h.dtype)  # [B, M, d]
        tok_e = torch.einsum("bml,bmd->bld", inside, e)  # each token: its mention's entity
        on = inside.sum(1).clamp(max=1.0)[..., None]  # tokens outside mentions are left alone
        fused = self.out(nn.functional.gelu(self.tok(h) + self.ent(tok_e))) * on
        return h + self.gate * fused


class KARLayer(nn.Module):
    """KnowBERT's knowledge attention and recontextualisation, gated (gate 0 = the base model)."""

    def __init__(self, hidden: int, ent_dim: int, heads: int = 4):
        super().__init__()
        self.to_ent = nn.Linear(hidden, ent_dim)
        self.from_ent = nn.Linear(ent_dim, hidden)
        self.norm = nn.LayerNorm(hidden)
        self.attn = nn.MultiheadAttention(hidden, heads, batch_first=True)
        self.gate = nn.Parameter(torch.zeros(hidden))
        self.last_link_logits: torch.Tensor | None = None  # [B, M, C], for an entity-linking loss

    def forward(self, h: torch.Tensor, table: torch.Tensor, kb: KnowledgeBatch) -> torch.Tensor:
        inside = kb.token_mask(h.shape[1])
        span = self.to_ent(_span_mean(h, inside))  # [B, M, d]
        ents = _entity_vectors(table, kb).to(span.dtype)  # [B, M, C, d]
        valid = kb.cands > 0
        logits = torch.einsum("bmd,bmcd->bmc", span, ents) / math.sqrt(span.shape[-1])
        logits = logits + torch.log(kb.priors.clamp_min(1e-6)).to(logits.dtype)
        logits = logits.masked_fill(~valid, -1e4)
        self.last_link_logits = logits
        att = torch.softmax(logits, -1) * valid.to(logits.dtype)
        enhanced = self.norm(self.from_ent(span + torch.einsum("bmc,bmcd->bmd", att, ents)))  # [B, M, H]
        no_mention = ~kb.mask.any(1)  # rows without mentions attend to slot 0 (no NaN), then are zeroed
        key_pad = ~kb.mask
        key_pad[:, 0] &= ~no_mention
        ctx, _ = self.attn(h, enhanced, enhanced, key_padding_mask=key_pad, need_weights=False)
        ctx = ctx.masked_fill(no_mention[:, None, None], 0.0)
        return h + self.gate * ctx


class KAdapter(nn.Module):
    """A bottleneck adapter for one KB, gated, with the relation classifier trained with it."""

    def __init__(self, hidden: int, n_relations: int, bottleneck: int = 64):
        super().__init__()
        self.down = nn.Linear(hidden, bottleneck)
        self.up = nn.Linear(bottleneck, hidden)
        self.gate = nn.Parameter(torch.zeros(hidden))
        self.relation = nn.Linear(hidden, n_relations)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.gate * self.up(nn.functional.gelu(self.down(h)))

    def relation_logits(self, cls_state: torch.Tensor) -> torch.Tensor:
        return self.relation(cls_state)


class KnowledgeInjector(nn.Module):
    """What runs between encoder layers ``layer`` and ``layer + 1``: fusion, then each KB's adapter.

    ``install(encoder_layers)`` hooks it in; ``context`` is the current batch's ``KnowledgeBatch``
    (set by the reader before each forward; None = no linked mentions = fusion is skipped).
    Adapters run only while ``adapters_on`` (the entity head's question pass): as in K-Adapter they
    sit beside the base model, so the span reader reads exactly as without them (measured: adapters
    in the span path, trained on questions alone, cost span EM)."""

    def __init__(self, hidden: int, table: EntityTable, fusion: str | None = None, layer: int = 3):
        super().__init__()
        if fusion not in (None, "ernie", "kar"):
            raise ValueError(f"unknown fusion {fusion!r} (ernie | kar)")
        self.hidden, self.layer, self.kind = hidden, layer, fusion
        self.table = table
        self.fusion: nn.Module | None = (ErnieFusion(hidden, table.dim) if fusion == "ernie"
                                         else KARLayer(hidden, table.dim) if fusion == "kar" else None)
        self.adapters = nn.ModuleDict()
        self.context: KnowledgeBatch | None = None
        self.adapters_on = False
        self._handle = None

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if self.fusion is not None and self.context is not None:
            h = self.fusion(h, self.table.vectors.to(h.device), self.context)
        if self.adapters_on:
            for adapter in self.adapters.values():
                h = adapter(h)
        return h

    def install(self, layers: nn.ModuleList) -> None:
        """Apply after ``layers[self.layer]`` (a forward hook replacing its hidden-state output)."""
        if self._handle is not None:
            self._handle.remove()

        def hook(_module, _inputs, output):
            if isinstance(output, tuple):
                return (self(output[0]), *output[1:])
            return self(output)

        self._handle = layers[self.layer].register_forward_hook(hook)

    def uninstall(self) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None


class EntityAnswerHead(nn.Module):
    """Scores KB entities as the answer: relation from an adapter's classifier, plausibility from
    the KB embedder, ``score(e) = Σ_r p(r|q) · kge(h, r, e)`` with ``h`` the linked question entity.

    ``temperature`` turns KGE scores into a distribution over candidates (learned with the adapter)."""

    def __init__(self, temperature: float = 1.0):
        super().__init__()
        self.log_temperature = nn.Parameter(torch.tensor(math.log(temperature)))

    def forward(self, rel_probs: torch.Tensor, kge_scores: torch.Tensor) -> torch.Tensor:
        """``rel_probs`` [R], ``kge_scores`` [R, E] (score of each candidate under each relation) ->
        [E] probabilities over the candidates."""
        per_rel = torch.softmax(kge_scores / self.log_temperature.exp(), -1)
        return (rel_probs[:, None] * per_rel).sum(0)
