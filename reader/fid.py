"""Fusion-in-Decoder (Izacard & Grave 2021): read k passages jointly by fusing them in the decoder.

Each passage becomes ``question: … title: … context: …`` and is encoded *independently* (cost
linear in k); the k encoder outputs are concatenated along the sequence axis, with the matching
attention mask (padding of every passage stays masked), and the decoder cross-attends to all of
them at once, so evidence scattered over passages can be combined. The encoder runs in chunks of
passages so k=100 fits in CPU RAM; training an unfrozen encoder turns on gradient checkpointing.

Generation (greedy = beam 1, or beam search) is written here over the fused encoder states: no
KV cache, since answers are a handful of tokens and the cross-attention over k*L states dominates.
Works with any zoo ``seq2seq`` model: T5, BART, and BERT2BERT (``bert2bert:minilm-l6``).

Optional copy head (``CopyHead``, pointer-generator, See et al. 2017): the output distribution
mixes the decoder's vocabulary softmax with an attention over the fused passage tokens, so an
answer can be *copied* from any of the k passages -- and a token found in several passages gathers
the attention of all of them. Without a pretrained seq2seq checkpoint, a decoder that must learn
to spell unseen entity names through its vocabulary head memorises its training answers; pointing
generalises to unseen entities (bench/regressions/fid_k.yaml).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import torch
from transformers.modeling_outputs import BaseModelOutput

from kira.plm import zoo
from kira.plm.device import autocast, pick_device, set_threads
from kira.reader.calibration import NoAnswerCalibration
from kira.schema import Answer, BaseReader, Evidence

ARTIFACT_TYPE = "fid-reader"
COPY_HEAD_FILE = "copy_head.pt"


def fid_question(question: str) -> str:
    """The question part that opens every passage's input (the copy head never points into it)."""
    return f"question: {question.strip()}"


def fid_text(question: str, title: str, text: str) -> str:
    return f"{fid_question(question)} title: {title.strip()} context: {text.strip()}"


def _token_id(value) -> int | None:
    if isinstance(value, list | tuple):
        return int(value[0]) if value else None
    return None if value is None else int(value)


@dataclass
class Fused:
    """FiD's fused encoder output for a batch of questions: the k passages side by side."""

    hidden: torch.Tensor  # [B, S, H] encoder states, S = k * tokens per passage (or compacted)
    mask: torch.Tensor  # [B, S] 1 where a real token of a real passage sits
    ids: torch.Tensor  # [B, S] token ids the copy head may point at (pad in the repeated question prefix)
    slots: torch.Tensor  # [B, S] passage index (retrieval rank) of each position

    def repeat(self, n: int) -> Fused:
        """Each question ``n`` times in a row (one per beam)."""
        return Fused(*(t.repeat_interleave(n, 0) for t in (self.hidden, self.mask, self.ids, self.slots)))


class CopyHead(torch.nn.Module):
    """Pointer-generator output layer over FiD's fused passages.

    ``P(w) = g * P_vocab(w) + (1 - g) * sum of the copy attention on the positions holding w``.
    A position's copy score is a bilinear match between the decoder state and its encoder state,
    plus its passage's score (a relevance read from the passage's first state, as the DPR reader
    selects passages, and a learned bias per retrieval rank), plus a learned *continuation* bonus
    when the token left of it is the previous output token (a copied multi-token name continues
    where it was copied from). The gate ``g`` sees the decoder state and the attended context.
    Special tokens are never copied.
    """

    def __init__(self, decoder_dim: int, encoder_dim: int, dim: int | None = None, max_passages: int = 128,
                 continuation: float = 3.0):
        super().__init__()
        dim = dim or encoder_dim
        self.config = {"decoder_dim": decoder_dim, "encoder_dim": encoder_dim, "dim": dim,
                       "max_passages": max_passages}
        self.query = torch.nn.Linear(decoder_dim, dim)
        self.key = torch.nn.Linear(encoder_dim, dim)
        self.relevance = torch.nn.Linear(encoder_dim, 1)
        self.rank_bias = torch.nn.Embedding(max_passages, 1)
        torch.nn.init.zeros_(self.rank_bias.weight)
        self.gate = torch.nn.Linear(decoder_dim + encoder_dim, 1)
        self.continuation = torch.nn.Parameter(torch.tensor(float(continuation)))

    def slot_scores(self, fused: Fused) -> tuple[torch.Tensor, torch.Tensor]:
        """``([B, K] score, [B, K] present)`` per passage: the relevance read from its first state
        plus the bias of its rank; ``present`` marks passages that have unmasked positions."""
        slots = fused.slots
        first = torch.ones_like(slots, dtype=torch.bool)
        first[:, 1:] = slots[:, 1:] != slots[:, :-1]
        k = int(slots.max()) + 1
        at_first = torch.where(first, slots, k)  # non-first positions land in a dropped column
        rel = self.relevance(fused.hidden.to(self.relevance.weight.dtype)).squeeze(-1).float()
        per_slot = torch.zeros(slots.shape[0], k + 1, device=slots.device).scatter(1, at_first, rel)[:, :k]
        ranks = torch.arange(k, device=slots.device).clamp(max=self.rank_bias.num_embeddings - 1)
        present = torch.zeros(slots.shape[0], k + 1, device=slots.device).scatter(
            1, torch.where(fused.mask.bool(), at_first, k), 1.0)[:, :k].bool()
        return per_slot + self.rank_bias(ranks).squeeze(-1).float()[None], present

    def passage_scores(self, fused: Fused) -> torch.Tensor:
        """``[B, S]``: each position gets its passage's score (``slot_scores``)."""
        return self.slot_scores(fused)[0].gather(1, fused.slots)

    def selection_loss(self, fused: Fused, answer_ids: Sequence[Sequence[int]]) -> torch.Tensor:
        """DPR-reader-style passage selection: ``-log`` of the softmax mass of the passages whose
        tokens contain the answer (questions with no such passage are skipped). It teaches the
        passage scores to pick evidence out of many distractors, so more passages do not hurt."""
        scores, present = self.slot_scores(fused)
        positive = torch.zeros_like(present)
        for b, ans in enumerate(answer_ids):
            n = len(ans)
            if not n or n > fused.ids.shape[1]:
                continue
            # windows of n tokens equal to the answer, starting at a real position; a window never
            # matches across passages, since the special tokens between them are not in an answer
            windows = fused.ids[b].unfold(0, n, 1)
            starts = (windows == torch.tensor(list(ans), device=windows.device)).all(1) & \
                fused.mask[b, :windows.shape[0]].bool()
            positive[b, fused.slots[b, :windows.shape[0]][starts]] = True
        has = positive.any(1)
        if not has.any():
            return scores.sum() * 0.0
        logp = torch.log_softmax(scores.masked_fill(~present, float("-inf")), -1)
        pos = torch.logsumexp(logp.masked_fill(~positive, float("-inf")), -1)
        return -pos[has].mean()

    def forward(self, dec: torch.Tensor, fused: Fused, prev_ids: torch.Tensor, logits: torch.Tensor,
                special_ids: torch.Tensor) -> torch.Tensor:
        """Log-probabilities ``[B, T, V]`` from decoder states ``dec [B, T, Hd]``, the fused
        passages, the decoder input ids ``[B, T]`` (the previous output token at each step) and
        the decoder's vocabulary logits ``[B, T, V]``."""
        enc, ids = fused.hidden.to(dec.dtype), fused.ids
        scores = self.query(dec) @ self.key(enc).transpose(1, 2) / self.key.out_features ** 0.5  # [B, T, S]
        before = torch.cat([torch.full_like(ids[:, :1], -1), ids[:, :-1]], 1)  # the token left of each position
        follows = (before[:, None, :] == prev_ids[:, :, None]) & ~torch.isin(prev_ids, special_ids)[:, :, None]
        scores = scores.float() + self.continuation * follows + self.passage_scores(fused)[:, None, :]
        copyable = fused.mask.bool() & ~torch.isin(ids, special_ids)
        scores = scores.masked_fill(~copyable[:, None, :], float("-inf"))
        attn = torch.softmax(scores, -1).nan_to_num(0.0)  # a question with nothing copyable copies nothing
        context = attn.to(enc.dtype) @ enc
        g = torch.sigmoid(self.gate(torch.cat([dec, context], -1)).float())  # [B, T, 1]
        b, t, _ = attn.shape
        copy = torch.zeros(b, t, logits.shape[-1], device=attn.device).scatter_add_(
            2, ids[:, None, :].expand(b, t, -1), attn)
        probs = g * torch.softmax(logits.float(), -1) + (1 - g) * copy
        return torch.log(probs.clamp_min(1e-12))


@dataclass
class FiDReader(BaseReader):
    """``read(question, evidence) -> [Answer]`` with the decoder fusing all passages."""

    model: Any
    tokenizer: Any
    spec: str = ""
    max_length: int = 192  # tokens per passage
    max_answer_tokens: int = 16
    encoder_chunk: int = 16  # passages per encoder forward
    num_beams: int = 1
    calibration: NoAnswerCalibration | None = None
    no_answer_threshold: float | None = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    bf16: bool = False
    copy: CopyHead | None = None
    name: str = "fid"

    @classmethod
    def load(cls, spec: str | os.PathLike, device: str = "auto", bf16: bool = False,
             no_answer_threshold: float | None = None, **kw) -> FiDReader:
        a = zoo.load_artifact(spec, "seq2seq", ("max_length", "max_answer_tokens", "encoder_chunk", "num_beams"), kw)
        dev = pick_device(device)
        a.model.to(dev).eval()
        copy = None
        if a.config.get("copy_head"):
            copy = CopyHead(**a.config["copy_head"])
            copy.load_state_dict(torch.load(a.resolved.path / COPY_HEAD_FILE, map_location="cpu", weights_only=True))
            copy.to(dev).eval()
        return cls(model=a.model, tokenizer=a.tokenizer, spec=str(spec), device=dev, bf16=bf16, copy=copy,
                   calibration=NoAnswerCalibration.from_dict(a.config.get("no_answer")),
                   no_answer_threshold=no_answer_threshold, **a.options)

    def add_copy_head(self) -> CopyHead:
        """Give the reader a fresh pointer-generator output (before training it)."""
        cfg = self.model.config
        dec_cfg = getattr(cfg, "decoder", cfg)
        enc_cfg = getattr(cfg, "encoder", cfg)
        dims = [getattr(c, "hidden_size", None) or c.d_model for c in (dec_cfg, enc_cfg)]
        self.copy = CopyHead(*dims).to(self.device)
        return self.copy

    def save(self, directory: str | os.PathLike, extra: dict | None = None) -> Path:
        d = zoo.save_artifact(directory, self.model, self.tokenizer, {
            "type": ARTIFACT_TYPE, "base": self.spec, "max_length": self.max_length,
            "max_answer_tokens": self.max_answer_tokens, "encoder_chunk": self.encoder_chunk,
            "num_beams": self.num_beams, "no_answer": self.calibration.to_dict() if self.calibration else None,
            "copy_head": self.copy.config if self.copy is not None else None,
            **(extra or {}),
        })
        if self.copy is not None:
            torch.save(self.copy.state_dict(), d / COPY_HEAD_FILE)
        return d

    def trainable(self) -> torch.nn.Module:
        """Everything that trains: the seq2seq model and, when present, the copy head."""
        return torch.nn.ModuleList([self.model, *([self.copy] if self.copy is not None else [])])

    @property
    def threshold(self) -> float | None:
        if self.no_answer_threshold is not None:
            return self.no_answer_threshold
        return self.calibration.threshold if self.calibration else None

    # ---- special tokens ---------------------------------------------------------------------
    def _cfg(self, name: str) -> int | None:
        gc = getattr(self.model, "generation_config", None)
        v = _token_id(getattr(gc, name, None)) if gc is not None else None
        return v if v is not None else _token_id(getattr(self.model.config, name, None))

    @property
    def eos_id(self) -> int:
        v = self._cfg("eos_token_id")
        return v if v is not None else int(self.tokenizer.sep_token_id or self.tokenizer.eos_token_id)

    @property
    def start_id(self) -> int:
        v = self._cfg("decoder_start_token_id")
        return v if v is not None else self.pad_id

    @property
    def pad_id(self) -> int:
        return int(self.tokenizer.pad_token_id or 0)

    @cached_property
    def word_continuation_ids(self) -> list[int]:
        """WordPiece ``##`` pieces: they only continue a word, so an answer never starts with one."""
        vocab = self.tokenizer.get_vocab() if hasattr(self.tokenizer, "get_vocab") else {}
        return [i for t, i in vocab.items() if t.startswith("##") and len(t) > 2]

    # ---- encoding: the FiD trick ------------------------------------------------------------
    def encode(self, questions: Sequence[str], evidences: Sequence[Sequence[Evidence]]) -> Fused:
        """Fused encoder states ``[B, k*L, H]`` with their mask, token ids and passage slots;
        grads flow when enabled.

        Questions with fewer passages are padded with fully-masked slots; a question without
        passages is read alone (one slot holding just the question).
        """
        k = max(1, max((len(e) for e in evidences), default=1))
        texts, present, question_chars = [], [], []
        for q, evs in zip(questions, evidences, strict=True):
            evs = [e for e in evs if e.kind != "table"] or []
            slots = [fid_text(q, e.title or "", e.text or "") for e in evs[:k]] or [fid_text(q, "", "")]
            present.extend([True] * len(slots) + [False] * (k - len(slots)))
            texts.extend(slots + [""] * (k - len(slots)))
            question_chars.extend([len(fid_question(q))] * k)
        fast = bool(getattr(self.tokenizer, "is_fast", False))
        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt",
                               return_offsets_mapping=fast)
        ids = batch["input_ids"].to(self.device)
        mask = batch["attention_mask"].to(self.device)
        mask = mask * torch.tensor(present, device=self.device, dtype=mask.dtype)[:, None]
        encoder = self.model.get_encoder()
        chunks = []
        for s in range(0, ids.shape[0], self.encoder_chunk):
            out = encoder(input_ids=ids[s:s + self.encoder_chunk], attention_mask=mask[s:s + self.encoder_chunk])
            chunks.append(out.last_hidden_state)
        hidden = torch.cat(chunks, 0)
        copy_ids = ids.clone()
        if fast:  # the question repeats in every passage: copying from it would grow with k
            ends = batch["offset_mapping"][..., 1].to(self.device)
            in_question = (ends > 0) & (ends <= torch.tensor(question_chars, device=self.device)[:, None])
            copy_ids[in_question] = self.pad_id
        b, L = len(questions), ids.shape[1]
        slots = torch.arange(k, device=self.device).repeat_interleave(L).expand(b, -1)
        return Fused(hidden.reshape(b, k * L, hidden.shape[-1]), mask.reshape(b, k * L),
                     copy_ids.reshape(b, k * L), slots)

    def log_probs(self, fused: Fused, dec_ids: torch.Tensor) -> torch.Tensor:
        """Next-token log-probabilities ``[B, T, V]`` after each decoder input token (teacher forcing)."""
        out = self.model(encoder_outputs=BaseModelOutput(last_hidden_state=fused.hidden), attention_mask=fused.mask,
                         decoder_input_ids=dec_ids, use_cache=False, output_hidden_states=self.copy is not None)
        if self.copy is None:
            return torch.log_softmax(out.logits.float(), -1)
        special = torch.tensor(self.tokenizer.all_special_ids, device=dec_ids.device)
        return self.copy(out.decoder_hidden_states[-1], fused, dec_ids, out.logits, special)

    def generate_ids(self, fused: Fused, num_beams: int | None = None,
                     max_new_tokens: int | None = None) -> list[list[tuple[list[int], float]]]:
        """Beam search (``num_beams=1`` is greedy) over the fused states: per question, finished
        hypotheses ``(token ids without start/eos, log-probability)``, best first."""
        nb = num_beams or self.num_beams
        steps = max_new_tokens or self.max_answer_tokens
        b, device = fused.hidden.shape[0], fused.hidden.device
        beams = fused.repeat(nb)
        seqs = torch.full((b * nb, 1), self.start_id, dtype=torch.long, device=device)
        scores = torch.full((b, nb), float("-inf"), device=device)
        scores[:, 0] = 0.0
        scores = scores.flatten()
        finished: list[list[tuple[list[int], float]]] = [[] for _ in range(b)]
        done = [False] * b
        eos = self.eos_id
        for step in range(steps):
            logp = self.log_probs(beams, seqs)[:, -1]
            if step == 0:  # an empty answer is not an answer, nor one that starts mid-word
                logp[:, eos] = float("-inf")
                logp[:, self.word_continuation_ids] = float("-inf")
            cand = (scores[:, None] + logp).reshape(b, -1)
            top_v, top_i = torch.topk(cand, min(2 * nb, cand.shape[1]), dim=1)
            vocab = logp.shape[1]
            new_rows, new_scores = [], []
            for qi in range(b):
                kept = []
                for v, i in zip(top_v[qi].tolist(), top_i[qi].tolist(), strict=True):
                    beam, tok = divmod(i, vocab)
                    row = qi * nb + beam
                    if v == float("-inf"):
                        continue
                    if tok == eos:
                        if not done[qi]:
                            finished[qi].append((seqs[row, 1:].tolist(), v))
                        continue
                    kept.append((row, tok, v))
                    if len(kept) == nb:
                        break
                best_active = kept[0][2] if kept else float("-inf")
                if finished[qi] and (len(finished[qi]) >= nb or max(f[1] for f in finished[qi]) >= best_active):
                    done[qi] = True
                while len(kept) < nb:
                    kept.append((qi * nb, eos, float("-inf")))
                for row, tok, v in kept:
                    new_rows.append((row, tok))
                    new_scores.append(v if not done[qi] else float("-inf"))
            rows = torch.tensor([r for r, _ in new_rows], device=device)
            toks = torch.tensor([t for _, t in new_rows], device=device)[:, None]
            seqs = torch.cat([seqs[rows], toks], 1)
            scores = torch.tensor(new_scores, device=device)
            if all(done):
                break
        for qi in range(b):  # questions that ran out of steps keep their best unfinished beams
            if not done[qi]:
                for j in range(nb):
                    s = float(scores[qi * nb + j])
                    if s > float("-inf"):
                        finished[qi].append((seqs[qi * nb + j, 1:].tolist(), s))
            finished[qi].sort(key=lambda f: -f[1])
        return finished

    # ---- reading ----------------------------------------------------------------------------
    @torch.inference_mode()
    def read_batch(self, questions: Sequence[str], evidences: Sequence[list[Evidence]], top_n: int = 1,
                   allow_no_answer: bool = True) -> list[list[Answer]]:
        set_threads()
        self.trainable().eval()
        results: list[list[Answer]] = [[] for _ in questions]
        have = [i for i, evs in enumerate(evidences) if evs]  # nothing to read: no answer, not a guess
        if not have:
            return results
        if len(have) < len(questions):
            for i, answers in zip(have, self.read_batch([questions[i] for i in have], [evidences[i] for i in have],
                                                        top_n, allow_no_answer), strict=True):
                results[i] = answers
            return results
        with autocast(self.device, self.bf16):
            fused = self.encode(questions, evidences)
        fused.hidden = fused.hidden.float()
        hyps = self.generate_ids(fused, num_beams=max(self.num_beams, top_n))
        results = []
        for evs, hs in zip(evidences, hyps, strict=True):
            answers, seen = [], set()
            for ids, lp in hs:
                text = self.tokenizer.decode(ids, skip_special_tokens=True).strip()
                if not text or text.lower() in seen:
                    continue
                seen.add(text.lower())
                answers.append(self._answer(text, float(torch.tensor(lp).exp()), evs))
                if len(answers) >= top_n:
                    break
            thr = self.threshold
            if allow_no_answer and thr is not None and (not answers or answers[0].score < thr):
                top_ev = [max(evs, key=lambda e: e.score)] if evs else []
                answers = [Answer(text="", score=answers[0].score if answers else 0.0, evidence=top_ev,
                                  reader=self.name, retriever=top_ev[0].retriever if top_ev else "",
                                  no_answer=True), *answers][:max(top_n, 1)]
            results.append(answers)
        return results

    def _answer(self, text: str, score: float, evs: Sequence[Evidence]) -> Answer:
        """Provenance for a generated answer: the passages containing it (span offsets in the first)."""
        from kira.retriever.text import has_answer

        support = [e for e in evs if has_answer([text], e.text or "")]
        ev = support or ([evs[0]] if evs else [])
        span = None
        if support:
            i = (support[0].text or "").lower().find(text.lower())
            span = (i, i + len(text)) if i >= 0 else None
        return Answer(text=text, score=score, evidence=list(ev), reader=self.name,
                      retriever=ev[0].retriever if ev else "", span=span,
                      probability=self.calibration.prob_correct(score) if self.calibration else None)
