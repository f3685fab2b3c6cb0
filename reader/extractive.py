"""DPR-style extractive reader: pick a passage and a span in it.

Each of the top-k passages is read as ``[CLS] question [SEP] title [SEP] passage [SEP]``. Two heads
sit on the encoder: a *relevance* logit on ``[CLS]`` (softmax across the k passages, as DPR's
passage selector) and start/end logits per token. A candidate's score is
P(passage) x P(start) x P(end); candidates with the same SQuAD-normalised text are summed across
passages, because a string supported by several passages is more likely right.

Span decoding is written here (transformers 5 has no QA pipeline): long passages are cut into
overlapping stride windows (``return_overflowing_tokens``), only passage tokens (sequence id 1,
non-empty offsets) may start or end a span, so an answer never crosses into the question, title or
padding, and token offsets map the span back to exact character offsets in the passage.

Works with any extractive-QA checkpoint the zoo loads (a user's SQuAD model: the relevance is then
taken from the span logits, since such checkpoints have no selector head) and with kira's own
trained reader, an artifact directory holding the QA model, ``relevance_head.safetensors`` and a
``kira.json`` with the calibrated no-answer threshold.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from kira.kb.linking import STOPWORDS
from kira.plm import zoo
from kira.plm.device import autocast, pick_device, set_threads
from kira.reader.calibration import NoAnswerCalibration
from kira.schema import Answer, BaseReader, Evidence

ARTIFACT_TYPE = "extractive-reader"
HEAD_FILE = "relevance_head.safetensors"


def normalize(text: str) -> str:
    """SQuAD normalisation, shared with retrieval (kira.retriever.text)."""
    from kira.retriever.text import normalize_answer

    return normalize_answer(text)


# ---- windows ------------------------------------------------------------------------------------
@dataclass
class Windows:
    """Tokenized stride windows for (question, passage) pairs, with what decoding needs."""

    input_ids: list[list[int]]
    token_type_ids: list[list[int]] | None
    offsets: list[list[tuple[int, int]]]
    valid: list[list[bool]]  # token may start/end an answer (a passage token with a real offset)
    pair: list[int]  # window -> index of its (question, passage) pair

    def __len__(self) -> int:
        return len(self.input_ids)


def _first_segment(tokenizer, question: str, title: str, max_query_tokens: int) -> str:
    """``question [SEP] title``, cut to ``max_query_tokens`` tokens so the passage always gets room."""
    sep = tokenizer.sep_token or "|"
    text = f"{question.strip()} {sep} {title.strip()}" if title.strip() else question.strip()
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    if len(enc["input_ids"]) <= max_query_tokens:
        return text
    return text[: enc["offset_mapping"][max_query_tokens - 1][1]]


def make_windows(tokenizer, pairs: Sequence[tuple[str, str, str]], max_length: int = 256,
                 stride: int = 64, max_query_tokens: int = 64) -> Windows:
    """Stride windows for ``(question, title, passage)`` triples (one or more windows per pair)."""
    max_query_tokens = min(max_query_tokens, max_length // 2)
    stride = min(stride, max(1, (max_length - max_query_tokens - 4) // 2))
    firsts = [_first_segment(tokenizer, q, t, max_query_tokens) for q, t, _ in pairs]
    seconds = [p for _, _, p in pairs]
    enc = tokenizer(firsts, seconds, truncation="only_second", max_length=max_length, stride=stride,
                    return_overflowing_tokens=True, return_offsets_mapping=True, padding=False)
    n = len(enc["input_ids"])
    mapping = enc.get("overflow_to_sample_mapping", list(range(n)))
    valid, offsets = [], []
    for w in range(n):
        seq = enc.sequence_ids(w)
        offs = [tuple(o) for o in enc["offset_mapping"][w]]
        valid.append([s == 1 and o[1] > o[0] for s, o in zip(seq, offs, strict=True)])
        offsets.append(offs)
    return Windows(input_ids=enc["input_ids"], token_type_ids=enc.get("token_type_ids"), offsets=offsets,
                   valid=valid, pair=list(mapping))


def collate(tokenizer, windows: Windows, idx: Sequence[int], device: torch.device) -> dict[str, torch.Tensor]:
    feats = [{"input_ids": windows.input_ids[i]} | (
        {"token_type_ids": windows.token_type_ids[i]} if windows.token_type_ids is not None else {}) for i in idx]
    batch = tokenizer.pad(feats, padding=True, return_tensors="pt")
    return {k: v.to(device) for k, v in batch.items()}


# ---- span decoding ------------------------------------------------------------------------------
def best_spans(start_logits: torch.Tensor, end_logits: torch.Tensor, valid: torch.Tensor,
               max_answer_tokens: int = 30, n_best: int = 5) -> list[tuple[int, int, float]]:
    """Top ``(start, end, log P(start) + log P(end))`` with start <= end < start + max length.

    Softmax runs over valid tokens only, so probabilities are over answers inside the passage.
    """
    valid = valid.bool()
    if not bool(valid.any()):
        return []
    neg = torch.finfo(torch.float32).min
    s = torch.log_softmax(start_logits.float().masked_fill(~valid, neg), -1)
    e = torch.log_softmax(end_logits.float().masked_fill(~valid, neg), -1)
    n = s.shape[0]
    scores = s[:, None] + e[None, :]
    i = torch.arange(n)
    allowed = (i[None, :] >= i[:, None]) & (i[None, :] - i[:, None] < max_answer_tokens)
    allowed &= valid[:, None] & valid[None, :]
    scores = scores.masked_fill(~allowed, float("-inf"))
    flat = scores.flatten()
    k = min(n_best, int(allowed.sum()))
    top = torch.topk(flat, k)
    return [(int(j) // n, int(j) % n, float(v)) for v, j in zip(top.values, top.indices, strict=True)]


@dataclass
class SpanCandidate:
    pair: int
    start_char: int
    end_char: int
    text: str
    logprob: float
    score: float = 0.0
    norm: str = ""


def decode_windows(windows: Windows, passages: Sequence[str], start_logits: Sequence[torch.Tensor],
                   end_logits: Sequence[torch.Tensor], max_answer_tokens: int = 30,
                   n_best: int = 5) -> list[SpanCandidate]:
    """Span candidates of every window, mapped to character offsets in their passage."""
    out = []
    for w in range(len(windows)):
        n = len(windows.input_ids[w])
        valid = torch.tensor(windows.valid[w][:n])
        for s, e, lp in best_spans(start_logits[w][:n], end_logits[w][:n], valid, max_answer_tokens, n_best):
            a, b = windows.offsets[w][s][0], windows.offsets[w][e][1]
            text = passages[windows.pair[w]][a:b]
            if text.strip():
                out.append(SpanCandidate(pair=windows.pair[w], start_char=a, end_char=b, text=text, logprob=lp))
    return out


def reading_text(title: str, text: str) -> tuple[str, int]:
    """What the reader reads as the passage: ``title | text`` (so the entity a passage describes,
    often named only in its title, can be the answer), and the offset of ``text`` in it. A text
    that already opens with its title is read as is."""
    title, text = (title or "").strip(), text or ""
    if not title or text[:len(title) + 2].lower().startswith(title.lower()):
        return text, 0
    prefix = f"{title} | "
    return prefix + text, len(prefix)


_NUMERIC_Q = re.compile(r"^\s*(?:how (?:many|much|high|tall|long|far|old|deep|big|large)|in what year|what year|"
                        r"which year|when)\b", re.IGNORECASE)
_WHO_Q = re.compile(r"^\s*(?:who|whom)\b", re.IGNORECASE)
_DIGIT = re.compile(r"\d")
_RANGE = re.compile(r"\(?\d[\d,.]*\s*[-–]\s*\d[\d,.]*\)?")
_NUMBER_WORDS = frozenset(["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve", "twenty", "hundred", "thousand", "million", "billion"])


# wh-nouns whose answers may be bare numbers ("what year", "which day", "what percentage")
_NUMERIC_NOUNS = frozenset([
    "year", "years", "number", "numbers", "date", "age", "amount", "percentage", "percent", "size", "length",
    "height", "distance", "temperature", "time", "century", "decade", "score", "population", "price", "cost",
    "weight", "speed", "depth", "width", "area", "volume", "value", "rate", "total", "count", "sum", "average",
    "day", "month", "hour", "minute"
])
_NOT_WH_NOUNS = frozenset([
    "is", "are", "was", "were", "do", "does", "did", "can", "could", "will", "would", "has", "have", "had"
])
_SENTENCE_BREAK = re.compile(r"(?:[a-z]{2}|[0-9)])\. [A-Z]")  # not "St. Louis", "Mt. Everest"
NON_NUMERIC_NUMBER = 0.05  # a bare number for "which country", "what river": chosen on the natural validation set
CROSSES_SENTENCE = 0.3  # "Agra. Taj Mahal is …": chosen there too (with the above, +5 / -0 of 318 questions)


def type_agreement(question: str, answer: str) -> float:
    """A prior on the answer's type and form given the question: 1 when they agree, less when a
    "how many"/"when" question gets no number or a range of two ("1564-1616"), a "who" question
    gets a bare number, a "which country" question (a wh-noun that takes no numbers) gets a bare
    number or range, or the span runs across a sentence break."""
    has_num = bool(_DIGIT.search(answer)) or any(w in _NUMBER_WORDS for w in answer.lower().split())
    shape = CROSSES_SENTENCE if _SENTENCE_BREAK.search(answer) else 1.0
    if _NUMERIC_Q.match(question):
        if _RANGE.fullmatch(answer.strip()):  # "1564-1616" answers neither "born" nor "died"
            return 0.3 * shape
        return (1.0 if has_num else 0.2) * shape
    bare_number = has_num and not re.search(r"[^\W\d_]{3,}", answer)
    if _WHO_Q.match(question):
        return (0.2 if bare_number else 1.0) * shape
    m = _WH_TYPE.search(question.lower())
    if bare_number and m and m.group(1) not in _NUMERIC_NOUNS and m.group(1) not in _NOT_WH_NOUNS:
        return NON_NUMERIC_NUMBER * shape
    return shape


# "(1872-1928)" after a name is a life span: its years answer "when was … born/did … die", rarely
# "in what year did Amundsen reach the South Pole"
_LIFE_SPAN = re.compile(r"\((?:[a-z.]+\s+)?\d{3,4}\s*[-–]\s*\d{2,4}\)")
_LIFE_QUESTION = re.compile(r"\b(?:born|birth|die|died|dies|death|dead|live|lived|life|age|old)\b", re.IGNORECASE)
LIFE_SPAN_YEAR = 0.1


def context_agreement(question: str, passage: str, start: int, end: int) -> float:
    """A prior from where a span sits in its passage: ``LIFE_SPAN_YEAR`` for a year of a life span
    "(1872-1928)" when the question is not about a birth, death or age; 1 otherwise."""
    if start < 0 or not _DIGIT.search(passage[start:end]) or _LIFE_QUESTION.search(question):
        return 1.0
    for m in _LIFE_SPAN.finditer(passage, max(0, start - 20), min(len(passage), end + 20)):
        if m.start() <= start and end <= m.end():
            return LIFE_SPAN_YEAR
    return 1.0


ECHO_PENALTY = 0.1
PARTIAL_ECHO = 0.5  # chosen on held-out generated questions at k=10: KB templates 0.607 -> 0.614, text 0.826 -> 0.826


def _stem(word: str) -> str:
    """Plural to singular, crudely ("bees" -> "bee"), so echoes survive number agreement."""
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


# the noun of a wh-phrase names the answer's type, not an entity: "Which river is Baghdad on?" ->
# "Tigris River" is no echo
_WH_TYPE = re.compile(r"\b(?:which|what)\s+(?:(?:kind|type|sort|class)s?\s+of\s+)?(?:an?\s+)?([a-z][\w-]*)")


def echo_factor(question: str, answer: str) -> float:
    """``ECHO_PENALTY`` when every content word of the answer is already in the question ("What is a
    dog a kind of?" -> "dog"; "Which body part contains the retina?" -> "retina"), ``PARTIAL_ECHO``
    when some are ("What do bees make?" -> "quilting bee"): a span the question already names is
    rarely what it asks for. The noun of a wh-phrase ("which river", "what kind of bird") is the
    answer's type, so it does not count. Questions offering a choice ("... X or Y?") are exempt, because there
    the answer is one of the question's own words."""
    typed = {_stem(m.group(1)) for m in _WH_TYPE.finditer(question.lower())}
    q = {_stem(w) for w in normalize(question).split() if w not in STOPWORDS} - typed
    a = [_stem(w) for w in normalize(answer).split() if w not in STOPWORDS]
    if not a or " or " in f" {question.lower()} ":
        return 1.0
    shared = sum(w in q for w in a)
    return ECHO_PENALTY if shared == len(a) else PARTIAL_ECHO if shared else 1.0


# ---- the model ----------------------------------------------------------------------------------
def _hidden_size(config) -> int:
    return int(getattr(config, "hidden_size", None) or config.d_model)


class ReaderModel(torch.nn.Module):
    """A zoo extractive-QA model plus DPR's passage-relevance head on the first token."""

    def __init__(self, qa_model, relevance: torch.nn.Linear | None = None):
        super().__init__()
        self.qa = qa_model
        self.has_relevance = relevance is not None
        self.relevance = relevance or torch.nn.Linear(_hidden_size(qa_model.config), 1)

    def forward(self, **batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out = self.qa(**batch, output_hidden_states=True)
        rel = self.relevance(out.hidden_states[-1][:, 0]).squeeze(-1)
        return out.start_logits, out.end_logits, rel


@dataclass
class ExtractiveReader(BaseReader):
    """``read(question, evidence) -> [Answer]``; ``read_batch`` batches windows of many questions."""

    model: ReaderModel
    tokenizer: Any
    spec: str = ""
    max_length: int = 256
    stride: int = 64
    max_query_tokens: int = 64
    max_answer_tokens: int = 30
    # spans kept per window before aggregation: 5 -> 8 gave +1 to +4 of 318 natural validation questions
    # (three readers, none lost; 20 = 8), as the KB's types can lift a lower-ranked span of the right type
    n_best: int = 8
    batch_size: int = 32
    calibration: NoAnswerCalibration | None = None
    no_answer_threshold: float | None = None  # overrides the calibrated one when set
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    bf16: bool = False
    name: str = "extractive"
    type_prior: bool = True  # weigh candidates by answer-type agreement with the question's wh-word
    echo_prior: bool = True  # down-weigh spans the question already names (echo_factor)
    title_in_passage: bool = False  # read ``title | text`` as the passage (kira's own readers since gen-2)
    # the retriever's order as a prior on the passage: its relevance logit minus rank_prior * log(rank)
    rank_prior: float = 0.0
    # ``factor(question, answer) -> float`` from a KB's classes (``kira.kb.answer_types``): set by the
    # pipeline when its store holds a KB with type relations
    answer_types: Any = None

    @classmethod
    def load(cls, spec: str | os.PathLike, device: str = "auto", bf16: bool = False,
             no_answer_threshold: float | None = None, **kw) -> ExtractiveReader:
        """Any zoo spec (SQuAD checkpoint, tiny model, base encoder) or a kira reader artifact."""
        a = zoo.load_artifact(spec, "extractive-qa",
                              ("max_length", "stride", "max_query_tokens", "max_answer_tokens",
                               "title_in_passage", "rank_prior"), kw)
        head, path = None, a.resolved.path
        if path is not None and (path / HEAD_FILE).exists():
            from safetensors.torch import load_file

            head = torch.nn.Linear(_hidden_size(a.model.config), 1)
            head.load_state_dict(load_file(str(path / HEAD_FILE)))
        model = ReaderModel(a.model, head)
        dev = pick_device(device)
        model.to(dev).eval()
        return cls(model=model, tokenizer=a.tokenizer, spec=str(spec), device=dev, bf16=bf16,
                   calibration=NoAnswerCalibration.from_dict(a.config.get("no_answer")),
                   no_answer_threshold=no_answer_threshold, **a.options)

    @classmethod
    def from_base(cls, spec: str, device: str = "auto", **kw) -> ExtractiveReader:
        """A fresh reader to train: encoder weights from ``spec``, QA and relevance heads random,
        and the relevance head counted as present (it will be trained)."""
        reader = cls.load(spec, device=device, **kw)
        reader.model.has_relevance = True
        return reader

    def save(self, directory: str | os.PathLike, extra: dict | None = None) -> Path:
        from safetensors.torch import save_file

        d = zoo.save_artifact(directory, self.model.qa, self.tokenizer, {
            "type": ARTIFACT_TYPE, "base": self.spec, "max_length": self.max_length, "stride": self.stride,
            "max_query_tokens": self.max_query_tokens, "max_answer_tokens": self.max_answer_tokens,
            "title_in_passage": self.title_in_passage, "rank_prior": self.rank_prior,
            "no_answer": self.calibration.to_dict() if self.calibration else None, **(extra or {}),
        })
        save_file({k: v.detach().cpu().contiguous() for k, v in self.model.relevance.state_dict().items()},
                  str(Path(d) / HEAD_FILE))
        return d

    @property
    def threshold(self) -> float | None:
        if self.no_answer_threshold is not None:
            return self.no_answer_threshold
        return self.calibration.threshold if self.calibration else None

    # ---- inference --------------------------------------------------------------------------
    def pair(self, question: str, title: str, text: str) -> tuple[tuple[str, str, str], int]:
        """The ``(question, title, passage)`` triple this reader reads, and the offset of ``text`` in it."""
        if self.title_in_passage:
            rt, off = reading_text(title, text)
            return (question, "", rt), off
        return (question, title, text), 0

    def windows(self, pairs: Sequence[tuple[str, str, str]]) -> Windows:
        return make_windows(self.tokenizer, pairs, self.max_length, self.stride, self.max_query_tokens)

    def forward_windows(self, windows: Windows, idx: Sequence[int]):
        batch = collate(self.tokenizer, windows, idx, self.device)
        return self.model(**batch)

    @torch.inference_mode()
    def _logits(self, windows: Windows) -> tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor]:
        """Start/end logits per window (unpadded lengths) and relevance logits, length-bucketed."""
        set_threads()
        self.model.eval()
        n = len(windows)
        starts: list[torch.Tensor] = [torch.empty(0)] * n
        ends: list[torch.Tensor] = [torch.empty(0)] * n
        rel = torch.zeros(n)
        order = sorted(range(n), key=lambda i: -len(windows.input_ids[i]))
        for b in range(0, n, self.batch_size):
            idx = order[b:b + self.batch_size]
            with autocast(self.device, self.bf16):
                s, e, r = self.forward_windows(windows, idx)
            s, e, r = s.float().cpu(), e.float().cpu(), r.float().cpu()
            for j, w in enumerate(idx):
                m = len(windows.input_ids[w])
                starts[w], ends[w] = s[j, :m], e[j, :m]
                rel[w] = r[j]
        return starts, ends, rel

    def read_batch(self, questions: Sequence[str], evidences: Sequence[list[Evidence]], top_n: int = 1,
                   allow_no_answer: bool = True) -> list[list[Answer]]:
        """Answers for many questions at once: all their windows share forward batches."""
        readable = [[ev for ev in evs if ev.kind != "table"] for evs in evidences]
        pairs, owner, offs = [], [], []
        for qi, (q, evs) in enumerate(zip(questions, readable, strict=True)):
            for pi, ev in enumerate(evs):
                pr, off = self.pair(q, ev.title or "", ev.text or "")
                pairs.append(pr)
                offs.append(off)
                owner.append((qi, pi))
        if not pairs:
            return [[] for _ in questions]
        windows = self.windows(pairs)
        starts, ends, rel = self._logits(windows)
        cands = decode_windows(windows, [p[2] for p in pairs], starts, ends, self.max_answer_tokens, self.n_best)
        for c in cands:  # offsets into the evidence text; a span in the title has none
            c.start_char -= offs[c.pair]
            c.end_char -= offs[c.pair]
        # passage relevance logit = best window; without a trained head, DPR-style from span logits
        pair_rel = torch.full((len(pairs),), float("-inf"))
        for w in range(len(windows)):
            valid = torch.tensor(windows.valid[w][:len(starts[w])])
            if self.model.has_relevance:
                r = float(rel[w])
            elif bool(valid.any()):
                r = float(starts[w][valid].max() + ends[w][valid].max())
            else:
                r = float("-inf")
            pair_rel[windows.pair[w]] = max(float(pair_rel[windows.pair[w]]), r)
        results = []
        for qi, q in enumerate(questions):
            ids = [i for i, (o, _) in enumerate(owner) if o == qi]
            if not ids:
                results.append([])
                continue
            logits = pair_rel[ids]
            if self.rank_prior:  # evidence comes best first from the retriever
                logits = logits - self.rank_prior * torch.log(torch.arange(1, len(ids) + 1, dtype=logits.dtype))
            probs = torch.softmax(logits, 0) if torch.isfinite(logits).any() else torch.zeros(len(ids))
            p_of = dict(zip(ids, probs.tolist(), strict=True))
            results.append(self._aggregate(q, [c for c in cands if c.pair in p_of], p_of, owner,
                                           readable[qi], top_n, allow_no_answer))
        return results

    def _aggregate(self, question: str, cands: list[SpanCandidate], p_of: dict[int, float],
                   owner: list[tuple[int, int]], evs: list[Evidence], top_n: int,
                   allow_no_answer: bool) -> list[Answer]:
        # best occurrence of each normalised string per passage, then summed across passages
        per_pair: dict[tuple[int, str], SpanCandidate] = {}
        for c in cands:
            part = self.answer_types.agreeing_part(question, c.text) if self.answer_types is not None else None
            if part:  # "Which country …?" -> "Pacific coast of southern Mexico" is read as "Mexico"
                c.text, c.end_char, c.start_char = (c.text[part[0]:part[1]], c.start_char + part[1],
                                                    c.start_char + part[0])
            c.norm = normalize(c.text)
            if not c.norm:
                continue
            c.score = p_of[c.pair] * float(torch.tensor(c.logprob).exp())
            if self.type_prior:
                c.score *= type_agreement(question, c.text)
                c.score *= context_agreement(question, evs[owner[c.pair][1]].text or "", c.start_char, c.end_char)
            if self.echo_prior:
                c.score *= echo_factor(question, c.text)
            key = (c.pair, c.norm)
            if key not in per_pair or c.score > per_pair[key].score:
                per_pair[key] = c
        if self.answer_types is not None and per_pair:
            # the KB's type evidence moves mass between candidates; their total (what abstention
            # was calibrated on) stays as it was
            before = sum(c.score for c in per_pair.values())
            for c in per_pair.values():
                c.score *= self.answer_types.factor(question, c.text)
            after = sum(c.score for c in per_pair.values())
            if after > 0:
                for c in per_pair.values():
                    c.score *= before / after
        groups: dict[str, list[SpanCandidate]] = {}
        for c in per_pair.values():
            groups.setdefault(c.norm, []).append(c)
        ranked = sorted(groups.values(), key=lambda g: -sum(c.score for c in g))
        answers = []
        for g in ranked[:top_n]:
            g.sort(key=lambda c: -c.score)
            best = g[0]
            ev = [evs[owner[c.pair][1]] for c in g]
            span = (best.start_char, best.end_char) if best.start_char >= 0 else None
            total = sum(c.score for c in g)
            answers.append(Answer(text=best.text, score=total, evidence=ev, reader=self.name,
                                  retriever=ev[0].retriever, span=span,
                                  probability=self.calibration.prob_correct(total) if self.calibration else None))
        thr = self.threshold
        if allow_no_answer and thr is not None and (not answers or answers[0].score < thr):
            top_ev = [max(evs, key=lambda e: e.score)] if evs else []
            no = Answer(text="", score=answers[0].score if answers else 0.0, evidence=top_ev, reader=self.name,
                        retriever=top_ev[0].retriever if top_ev else "", no_answer=True)
            answers = [no, *answers][:max(top_n, 1)]
        return answers


# ---- training objective -------------------------------------------------------------------------
def answer_char_spans(text: str, answers: Sequence[str]) -> list[tuple[int, int]]:
    """Every case-insensitive, word-bounded occurrence of any answer string in ``text``."""
    spans = []
    for a in answers:
        a = a.strip()
        if not a:
            continue
        for m in re.finditer(r"(?<!\w)" + re.escape(a) + r"(?!\w)", text, flags=re.IGNORECASE):
            spans.append((m.start(), m.end()))
    return sorted(set(spans))


def token_spans(windows: Windows, w: int, char_spans: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """Token (start, end) of char spans lying wholly inside window ``w``'s passage tokens."""
    offs, valid = windows.offsets[w], windows.valid[w]
    out = []
    for a, b in char_spans:
        s = next((i for i, (o, v) in enumerate(zip(offs, valid, strict=True)) if v and o[0] <= a < o[1]), None)
        e = next((i for i, (o, v) in enumerate(zip(offs, valid, strict=True)) if v and o[0] < b <= o[1]), None)
        if s is not None and e is not None and s <= e:
            out.append((s, e))
    return out


@dataclass
class ReaderExample:
    """One training question: its passages, which are positive, and the answer strings."""

    question: str
    passages: list[tuple[str, str]]  # (title, text)
    answers: list[str]
    positives: list[int]


def extractive_loss(reader: ExtractiveReader, examples: Sequence[ReaderExample]) -> torch.Tensor:
    """DPR reader loss: passage selection (marginal over positives) + span marginal likelihood
    over every answer occurrence in the positive windows."""
    pairs, owner = [], []
    for qi, ex in enumerate(examples):
        for pi, (t, p) in enumerate(ex.passages):
            pairs.append(reader.pair(ex.question, t, p)[0])
            owner.append((qi, pi))
    windows = reader.windows(pairs)
    s, e, r = reader.forward_windows(windows, list(range(len(windows))))
    neg = torch.finfo(s.dtype).min
    losses = []
    for qi, ex in enumerate(examples):
        wins = [w for w in range(len(windows)) if owner[windows.pair[w]][0] == qi]
        if not ex.positives:
            continue
        # relevance: passage logit = max over its windows; softmax across the question's passages
        pl = []
        for pi in range(len(ex.passages)):
            ws = [w for w in wins if owner[windows.pair[w]][1] == pi]
            pl.append(torch.stack([r[w] for w in ws]).max() if ws else r.new_tensor(-1e4))
        pl_t = torch.stack(pl)
        losses.append(torch.logsumexp(pl_t, 0) - torch.logsumexp(pl_t[ex.positives], 0))
        span_terms = []
        for w in wins:
            pi = owner[windows.pair[w]][1]
            if pi not in ex.positives:
                continue
            gold = token_spans(windows, w, answer_char_spans(pairs[windows.pair[w]][2], ex.answers))
            if not gold:
                continue
            n = len(windows.input_ids[w])
            valid = torch.tensor(windows.valid[w], device=s.device)
            ls = torch.log_softmax(s[w, :n].masked_fill(~valid, neg), -1)
            le = torch.log_softmax(e[w, :n].masked_fill(~valid, neg), -1)
            span_terms.append(-torch.logsumexp(torch.stack([ls[a] + le[b] for a, b in gold]), 0))
        if span_terms:
            losses.append(torch.stack(span_terms).mean())
    if not losses:
        return (s.sum() + e.sum() + r.sum()) * 0.0
    return torch.stack(losses).sum() / len(examples)
