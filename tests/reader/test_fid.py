"""Fusion-in-Decoder: fused shapes and masking, chunking, generation, training, save/load."""

from __future__ import annotations

import pytest
import torch
from transformers.modeling_outputs import BaseModelOutput

from kira.reader.fid import FiDReader, fid_text
from kira.schema import Evidence


def _evs(n: int, prefix: str = "p") -> list[Evidence]:
    return [Evidence(id=f"{prefix}{i}", title=f"Title {i}", text=f"passage {i} says the city of Paris is in France",
                     score=1.0 / (i + 1)) for i in range(n)]


def test_fid_text_format():
    assert fid_text("who? ", "T", " body ") == "question: who? title: T context: body"


@pytest.mark.parametrize("spec", ["tiny-t5", "tiny-bart"])
def test_concatenation_shape_and_mask(spec):
    r = FiDReader.load(spec, device="cpu", max_length=24)
    hidden, mask = r.encode(["first question", "second"], [_evs(3), _evs(1)])
    single = r.tokenizer([fid_text("second", e.title, e.text) for e in _evs(1)], padding=True, truncation=True,
                         max_length=24, return_tensors="pt")
    L = hidden.shape[1] // 3
    assert hidden.shape == (2, 3 * L, r.model.config.d_model) and mask.shape == (2, 3 * L)
    # the second question's missing passage slots are fully masked; its real slot keeps its mask
    assert mask[1, L:].sum() == 0
    assert mask[1, :L].sum() == single["attention_mask"].sum()
    assert mask[0].sum() > mask[1].sum()


def test_masked_slots_do_not_change_the_decoder_and_chunking_is_exact():
    r = FiDReader.load("tiny-t5", device="cpu", max_length=24)
    with torch.no_grad():
        h_batch, m_batch = r.encode(["q", "question two"], [_evs(3), _evs(1, "x")])
        h_one, m_one = r.encode(["question two"], [_evs(1, "x")])
        r.encoder_chunk = 1
        h_chunk, _ = r.encode(["q", "question two"], [_evs(3), _evs(1, "x")])
        dec = torch.tensor([[r.start_id, 2003]])

        def logits(h, m):
            return r.model(encoder_outputs=BaseModelOutput(last_hidden_state=h), attention_mask=m,
                           decoder_input_ids=dec).logits

        L = h_one.shape[1]
        padded = logits(h_batch[1:2], m_batch[1:2])  # k=3 slots, two of them padding
        alone = logits(h_one, m_one)  # k=1
    assert torch.allclose(padded, alone, atol=1e-4)
    assert torch.allclose(h_chunk, h_batch, atol=1e-5)
    assert h_batch[1:2, :L].shape == h_one.shape


def test_training_reduces_loss_generates_answer_and_round_trips(tmp_path):
    torch.manual_seed(0)
    r = FiDReader.load("tiny-t5", device="cpu", max_length=32, max_answer_tokens=6)
    r.enable_gradient_checkpointing()
    qs = ["capital of France?", "largest planet?"]
    evs = [_evs(3), [Evidence(id="j", title="Jupiter", text="Jupiter is the largest planet", score=1.0)]]
    opt = torch.optim.AdamW(r.model.parameters(), lr=2e-2)
    r.model.train()
    losses = []
    for _ in range(20):
        loss = r.loss(qs, evs, ["paris", "jupiter"])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    r.model.eval()
    assert losses[-1] < 0.5 * losses[0]
    got = r.read_batch(qs, evs)
    assert [a[0].text for a in got] == ["paris", "jupiter"]
    assert got[0][0].evidence[0].id == "p0" and got[0][0].span is not None
    r.num_beams = 3
    beams = r.read(qs[1], evs[1], top_n=2)
    assert beams[0].text == "jupiter" and len(beams) == 2 and beams[0].score >= beams[1].score
    out = r.save(tmp_path / "fid")
    again = FiDReader.load(str(out), device="cpu")
    assert again.num_beams == 3 and again.max_length == 32
    assert [a[0].text for a in again.read_batch(qs, evs)] == ["paris", "jupiter"]


def test_bert2bert_reads_many_passages():
    r = FiDReader.load("bert2bert:tiny-bert", device="cpu", max_length=16, max_answer_tokens=3, encoder_chunk=8)
    ans = r.read("q?", _evs(20))
    hidden, mask = r.encode(["q?"], [_evs(20)])
    assert hidden.shape[0] == 1 and hidden.shape[1] == 20 * 16 and int(mask.sum()) > 0
    assert len(ans) == 1 and ans[0].reader == "fid"


@pytest.mark.parametrize("spec", ["tiny-t5", "bert2bert:tiny-bert"])
def test_compact_cached_states_give_the_same_loss(spec):
    """A frozen encoder's cached states (masked positions dropped) train the decoder exactly as
    the full fused states would."""
    r = FiDReader.load(spec, device="cpu", max_length=20)
    r.model.eval()
    qs, evs, answers = ["where is paris?", "which city"], [_evs(3), _evs(2, "x")], ["France", "Paris"]
    with torch.no_grad():
        full = r.loss(qs, evs, answers)
        states = r.encode_compact(qs, evs)
        hidden, mask = r.encode(qs, evs)
        assert [s.shape[0] for s in states] == mask.sum(1).tolist()
        cached = r.loss_on_states(*r.pad_states(states), answers)
    assert torch.allclose(full, cached, atol=1e-5)


def test_frozen_encoder_training_trains_the_decoder_only():
    from kira.reader.train import TrainOptions, train_reader

    records = [{"question": f"where is city {i}?", "answers": [f"land{i}"],
                "contexts": [{"title": f"city {i}", "text": f"city {i} is in land{i}"}]} for i in range(6)]
    before = FiDReader.load("tiny-t5", device="cpu")
    enc0 = {k: v.clone() for k, v in before.model.get_encoder().state_dict().items()}
    res = train_reader(records * 4, TrainOptions(kind="fid", base="tiny-t5", n_passages=1, max_length=16, batch_size=4,
                                                 epochs=6, lr=1e-2, device="cpu", freeze_encoder=True, bf16=False,
                                                 calibrate_fraction=0.0))
    enc1 = res.reader.model.get_encoder().state_dict()
    assert all(torch.equal(enc0[k], enc1[k]) for k in enc0)
    assert res.steps == 36 and sum(res.losses[-4:]) < sum(res.losses[:4])
