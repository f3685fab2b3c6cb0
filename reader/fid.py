"""Fusion-in-Decoder (Izacard & Grave 2021): read k passages jointly by fusing them in the decoder.

Each passage becomes ``question: … title: … context: …`` and is encoded *independently* (cost
linear in k); the k encoder outputs are concatenated along the sequence axis, with the matching
attention mask (padding of every passage stays masked), and the decoder cross-attends to all of
them at once, so evidence scattered over passages can be combined. The encoder runs in chunks of
passages so k=100 fits in CPU RAM; training turns on gradient checkpointing.

Generation (greedy = beam 1, or beam search) is written here over the fused encoder states: no
KV cache, since answers are a handful of tokens and the cross-attention over k*L states dominates.
Works with any zoo ``seq2seq`` model: T5, BART, and BERT2BERT (``bert2bert:minilm-l6``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers.modeling_outputs import BaseModelOutput

from kira.plm import zoo
from kira.plm.device import autocast, pick_device, set_threads
from kira.reader.calibration import NoAnswerCalibration
from kira.schema import Answer, Evidence

ARTIFACT_TYPE = "fid-reader"


def fid_text(question: str, title: str, text: str) -> str:
    return f"question: {question.strip()} title: {title.strip()} context: {text.strip()}"


def _token_id(value) -> int | None:
    if isinstance(value, list | tuple):
        return int(value[0]) if value else None
    return None if value is None else int(value)


@dataclass
class FiDReader:
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
    name: str = "fid"

    @classmethod
    def load(cls, spec: str | os.PathLike, device: str = "auto", bf16: bool = False,
             no_answer_threshold: float | None = None, **kw) -> FiDReader:
        spec = str(spec)
        r = zoo.resolve(spec)
        saved = zoo.artifact_config(r.path) if r.path else {}
        tok = zoo.load_tokenizer(spec)
        tok.padding_side = "right"
        model = zoo.load_model(spec, "seq2seq")
        opts = {k: saved[k] for k in ("max_length", "max_answer_tokens", "encoder_chunk", "num_beams") if k in saved}
        opts.update(kw)
        dev = pick_device(device)
        model.to(dev).eval()
        return cls(model=model, tokenizer=tok, spec=spec, device=dev, bf16=bf16,
                   calibration=NoAnswerCalibration.from_dict(saved.get("no_answer")),
                   no_answer_threshold=no_answer_threshold, **opts)

    def save(self, directory: str | os.PathLike, extra: dict | None = None) -> Path:
        return zoo.save_artifact(directory, self.model, self.tokenizer, {
            "type": ARTIFACT_TYPE, "base": self.spec, "max_length": self.max_length,
            "max_answer_tokens": self.max_answer_tokens, "encoder_chunk": self.encoder_chunk,
            "num_beams": self.num_beams, "no_answer": self.calibration.to_dict() if self.calibration else None,
            **(extra or {}),
        })

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
        return v if v is not None else int(self.tokenizer.pad_token_id or 0)

    # ---- encoding: the FiD trick ------------------------------------------------------------
    def encode(self, questions: Sequence[str], evidences: Sequence[Sequence[Evidence]]
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Fused encoder states ``[B, k*L, H]`` and mask ``[B, k*L]``; grads flow when enabled.

        Questions with fewer passages are padded with fully-masked slots; a question without
        passages is read alone (one slot holding just the question).
        """
        k = max(1, max((len(e) for e in evidences), default=1))
        texts, present = [], []
        for q, evs in zip(questions, evidences, strict=True):
            evs = [e for e in evs if e.kind != "table"] or []
            slots = [fid_text(q, e.title or "", e.text or "") for e in evs[:k]] or [fid_text(q, "", "")]
            present.extend([True] * len(slots) + [False] * (k - len(slots)))
            texts.extend(slots + [""] * (k - len(slots)))
        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        ids = batch["input_ids"].to(self.device)
        mask = batch["attention_mask"].to(self.device)
        mask = mask * torch.tensor(present, device=self.device, dtype=mask.dtype)[:, None]
        encoder = self.model.get_encoder()
        chunks = []
        for s in range(0, ids.shape[0], self.encoder_chunk):
            out = encoder(input_ids=ids[s:s + self.encoder_chunk], attention_mask=mask[s:s + self.encoder_chunk])
            chunks.append(out.last_hidden_state)
        hidden = torch.cat(chunks, 0)
        b, L = len(questions), ids.shape[1]
        return hidden.reshape(b, k * L, hidden.shape[-1]), mask.reshape(b, k * L)

    def _decode_step(self, hidden: torch.Tensor, mask: torch.Tensor, dec_ids: torch.Tensor) -> torch.Tensor:
        out = self.model(encoder_outputs=BaseModelOutput(last_hidden_state=hidden), attention_mask=mask,
                         decoder_input_ids=dec_ids, use_cache=False)
        return torch.log_softmax(out.logits[:, -1].float(), -1)

    def generate_ids(self, hidden: torch.Tensor, mask: torch.Tensor, num_beams: int | None = None,
                     max_new_tokens: int | None = None) -> list[list[tuple[list[int], float]]]:
        """Beam search (``num_beams=1`` is greedy) over the fused states: per question, finished
        hypotheses ``(token ids without start/eos, log-probability)``, best first."""
        nb = num_beams or self.num_beams
        steps = max_new_tokens or self.max_answer_tokens
        b = hidden.shape[0]
        hid = hidden.repeat_interleave(nb, 0)
        msk = mask.repeat_interleave(nb, 0)
        seqs = torch.full((b * nb, 1), self.start_id, dtype=torch.long, device=hidden.device)
        scores = torch.full((b, nb), float("-inf"), device=hidden.device)
        scores[:, 0] = 0.0
        scores = scores.flatten()
        finished: list[list[tuple[list[int], float]]] = [[] for _ in range(b)]
        done = [False] * b
        eos = self.eos_id
        for step in range(steps):
            logp = self._decode_step(hid, msk, seqs)
            if step == 0:  # an empty answer is not an answer
                logp[:, eos] = float("-inf")
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
            rows = torch.tensor([r for r, _ in new_rows], device=hidden.device)
            toks = torch.tensor([t for _, t in new_rows], device=hidden.device)[:, None]
            seqs = torch.cat([seqs[rows], toks], 1)
            scores = torch.tensor(new_scores, device=hidden.device)
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
    def read(self, question: str, evidence: list[Evidence], top_n: int = 1,
             allow_no_answer: bool = True) -> list[Answer]:
        return self.read_batch([question], [evidence], top_n, allow_no_answer)[0]

    @torch.inference_mode()
    def read_batch(self, questions: Sequence[str], evidences: Sequence[list[Evidence]], top_n: int = 1,
                   allow_no_answer: bool = True) -> list[list[Answer]]:
        set_threads()
        self.model.eval()
        if not questions:
            return []
        with autocast(self.device, self.bf16):
            hidden, mask = self.encode(questions, evidences)
        hyps = self.generate_ids(hidden.float(), mask, num_beams=max(self.num_beams, top_n))
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
                      retriever=ev[0].retriever if ev else "", span=span)

    # ---- training ---------------------------------------------------------------------------
    def labels(self, answers: Sequence[str]) -> torch.Tensor:
        """Answer tokens + eos, padded with -100 (ignored by the loss)."""
        seqs = [self.tokenizer(a, add_special_tokens=False)["input_ids"][: self.max_answer_tokens - 1] + [self.eos_id]
                for a in answers]
        n = max(len(s) for s in seqs)
        return torch.tensor([s + [-100] * (n - len(s)) for s in seqs], device=self.device)

    def loss(self, questions: Sequence[str], evidences: Sequence[Sequence[Evidence]],
             answers: Sequence[str]) -> torch.Tensor:
        hidden, mask = self.encode(questions, evidences)
        return self.loss_on_states(hidden, mask, answers)

    def loss_on_states(self, hidden: torch.Tensor, mask: torch.Tensor, answers: Sequence[str]) -> torch.Tensor:
        """Decoder loss over given fused encoder states (cached ones when the encoder is frozen)."""
        out = self.model(encoder_outputs=BaseModelOutput(last_hidden_state=hidden), attention_mask=mask,
                         labels=self.labels(answers), use_cache=False)
        return out.loss

    @torch.no_grad()
    def encode_compact(self, questions: Sequence[str], evidences: Sequence[Sequence[Evidence]],
                       bf16: bool | None = None) -> list[torch.Tensor]:
        """Per question, the fused encoder states of its *unmasked* positions only ``[n_i, H]``.

        The decoder never attends to masked positions, so dropping them changes nothing and keeps
        a cache of a frozen encoder's outputs small (``no_grad``, not ``inference_mode``: the
        tensors feed the trained decoder's autograd graph later)."""
        bf16 = self.bf16 if bf16 is None else bf16
        with autocast(self.device, bf16):
            hidden, mask = self.encode(questions, evidences)
        return [h[m.bool()].to(torch.bfloat16 if bf16 else h.dtype).cpu() for h, m in zip(hidden, mask, strict=True)]

    def pad_states(self, states: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Stack compact per-question states into ``[B, max n, H]`` with the matching mask."""
        n = max(s.shape[0] for s in states)
        hidden = torch.zeros(len(states), n, states[0].shape[1], device=self.device)
        mask = torch.zeros(len(states), n, dtype=torch.long, device=self.device)
        for i, st in enumerate(states):
            hidden[i, :st.shape[0]] = st.to(self.device, torch.float32)
            mask[i, :st.shape[0]] = 1
        return hidden, mask

    def enable_gradient_checkpointing(self) -> None:
        """Trade compute for memory in training: activations are recomputed in the backward pass."""
        if getattr(self.model, "supports_gradient_checkpointing", False):
            enable = getattr(self.model, "activation_checkpointing_enable", None) or \
                self.model.gradient_checkpointing_enable
            enable()
            self.model.config.use_cache = False
