"""Training FiD: the answer's token NLL over fused passages (plus the copy head's passage
selection), and the frozen-encoder cache (compact per-question states, padded into batches).
The model and reading are in ``kira.reader.fid``; the loop is ``kira.reader.train``."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from kira.plm.device import autocast
from kira.reader.fid import FiDReader, Fused
from kira.schema import Evidence


def answer_labels(reader: FiDReader, answers: Sequence[str]) -> torch.Tensor:
    """Answer tokens + eos, padded with -100 (ignored by the loss)."""
    seqs = [reader.tokenizer(a, add_special_tokens=False)["input_ids"][: reader.max_answer_tokens - 1] + [reader.eos_id]
            for a in answers]
    n = max(len(s) for s in seqs)
    return torch.tensor([s + [-100] * (n - len(s)) for s in seqs], device=reader.device)


def fid_loss(reader: FiDReader, questions: Sequence[str], evidences: Sequence[Sequence[Evidence]],
             answers: Sequence[str]) -> torch.Tensor:
    return loss_on_states(reader, reader.encode(questions, evidences), answers)


def loss_on_states(reader: FiDReader, fused: Fused, answers: Sequence[str]) -> torch.Tensor:
    """Mean token NLL of the answers over given fused encoder states (cached ones when the
    encoder is frozen); the decoder reads the answer shifted right after the start token.
    With a copy head, plus its passage-selection loss."""
    labels = answer_labels(reader, answers)
    dec_ids = torch.cat([torch.full_like(labels[:, :1], reader.start_id), labels[:, :-1]], 1)
    dec_ids = dec_ids.masked_fill(dec_ids == -100, reader.pad_id)
    logp = reader.log_probs(fused, dec_ids)
    loss = torch.nn.functional.nll_loss(logp.reshape(-1, logp.shape[-1]), labels.reshape(-1), ignore_index=-100)
    if reader.copy is not None:
        eos = reader.eos_id
        answer_ids = [[t for t in row if t not in (-100, eos)] for row in labels.tolist()]
        loss = loss + reader.copy.selection_loss(fused, answer_ids)
    return loss


@torch.no_grad()
def encode_compact(reader: FiDReader, questions: Sequence[str], evidences: Sequence[Sequence[Evidence]],
                   bf16: bool | None = None) -> list[Fused]:
    """Per question, the fused passages at their *unmasked* positions only (``[1, n_i, …]``).

    The decoder never attends to masked positions, so dropping them changes nothing and keeps
    a cache of a frozen encoder's outputs small (``no_grad``, not ``inference_mode``: the
    tensors feed the trained decoder's autograd graph later)."""
    bf16 = reader.bf16 if bf16 is None else bf16
    with autocast(reader.device, bf16):
        f = reader.encode(questions, evidences)
    out = []
    for i in range(f.hidden.shape[0]):
        keep = f.mask[i].bool()
        out.append(Fused(f.hidden[i][keep].to(torch.bfloat16 if bf16 else f.hidden.dtype).cpu()[None],
                         f.mask[i][keep].cpu()[None], f.ids[i][keep].cpu()[None], f.slots[i][keep].cpu()[None]))
    return out


def pad_states(reader: FiDReader, states: Sequence[Fused]) -> Fused:
    """Stack compact per-question passages into one right-padded batch on the reader's device."""
    n = max(st.hidden.shape[1] for st in states)
    b, dev = len(states), reader.device
    out = Fused(torch.zeros(b, n, states[0].hidden.shape[-1], device=dev),
                torch.zeros(b, n, dtype=torch.long, device=dev),
                torch.full((b, n), reader.pad_id, dtype=torch.long, device=dev),
                torch.zeros(b, n, dtype=torch.long, device=dev))
    for i, st in enumerate(states):
        m = st.hidden.shape[1]
        out.hidden[i, :m] = st.hidden[0].to(dev, torch.float32)
        out.mask[i, :m] = 1
        out.ids[i, :m] = st.ids[0].to(dev)
        out.slots[i, :m] = st.slots[0].to(dev)
        if m < n:  # padding continues the last passage's slot so it never looks like a new passage
            out.slots[i, m:] = out.slots[i, m - 1] if m else 0
    return out


def enable_gradient_checkpointing(reader: FiDReader) -> None:
    """Trade compute for memory in training: activations are recomputed in the backward pass."""
    if getattr(reader.model, "supports_gradient_checkpointing", False):
        enable = getattr(reader.model, "activation_checkpointing_enable", None) or \
            reader.model.gradient_checkpointing_enable
        enable()
        reader.model.config.use_cache = False
