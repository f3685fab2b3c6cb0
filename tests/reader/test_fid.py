"""Fusion-in-Decoder: fused shapes and masking, chunking, generation, training, save/load."""

from __future__ import annotations

import pytest
import torch
from transformers.modeling_outputs import BaseModelOutput

from kira.reader import fid_train
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
    f = r.encode(["first question", "second"], [_evs(3), _evs(1)])
    hidden, mask = f.hidden, f.mask
    single = r.tokenizer([fid_text("second", e.title, e.text) for e in _evs(1)], padding=True, truncation=True,
                         max_length=24, return_tensors="pt")
    L = hidden.shape[1] // 3
    assert hidden.shape == (2, 3 * L, r.model.config.d_model) and mask.shape == (2, 3 * L)
    # the second question's missing passage slots are fully masked; its real slot keeps its mask
    assert mask[1, L:].sum() == 0
    assert mask[1, :L].sum() == single["attention_mask"].sum()
    assert mask[0].sum() > mask[1].sum()
    assert f.ids.shape == mask.shape and f.slots[0, :L].eq(0).all() and f.slots[0, 2 * L:].eq(2).all()


def test_masked_slots_do_not_change_the_decoder_and_chunking_is_exact():
    r = FiDReader.load("tiny-t5", device="cpu", max_length=24)
    with torch.no_grad():
        batch = r.encode(["q", "question two"], [_evs(3), _evs(1, "x")])
        one = r.encode(["question two"], [_evs(1, "x")])
        h_batch, m_batch, h_one, m_one = batch.hidden, batch.mask, one.hidden, one.mask
        r.encoder_chunk = 1
        h_chunk = r.encode(["q", "question two"], [_evs(3), _evs(1, "x")]).hidden
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
    fid_train.enable_gradient_checkpointing(r)
    qs = ["capital of France?", "largest planet?"]
    evs = [_evs(3), [Evidence(id="j", title="Jupiter", text="Jupiter is the largest planet", score=1.0)]]
    opt = torch.optim.AdamW(r.model.parameters(), lr=2e-2)
    r.model.train()
    losses = []
    for _ in range(20):
        loss = fid_train.fid_loss(r, qs, evs, ["paris", "jupiter"])
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
    assert again.num_beams == 3 and again.max_length == 32 and again.copy is None
    assert [a[0].text for a in again.read_batch(qs, evs)] == ["paris", "jupiter"]


def test_copy_head_round_trips(tmp_path):
    r = FiDReader.load("tiny-t5", device="cpu", max_length=24)
    torch.manual_seed(1)
    r.add_copy_head()
    torch.nn.init.normal_(r.copy.rank_bias.weight)
    qs, evs = ["where is paris?"], [_evs(3)]
    with torch.no_grad():
        before = fid_train.fid_loss(r, qs, evs, ["France"])
    again = FiDReader.load(str(r.save(tmp_path / "fid")), device="cpu")
    assert again.copy is not None and again.copy.config == r.copy.config
    with torch.no_grad():
        assert torch.allclose(fid_train.fid_loss(again, qs, evs, ["France"]), before, atol=1e-6)


def test_bert2bert_reads_many_passages():
    r = FiDReader.load("bert2bert:tiny-bert", device="cpu", max_length=16, max_answer_tokens=3, encoder_chunk=8)
    ans = r.read("q?", _evs(20))
    f = r.encode(["q?"], [_evs(20)])
    assert f.hidden.shape[0] == 1 and f.hidden.shape[1] == 20 * 16 and int(f.mask.sum()) > 0
    assert len(ans) == 1 and ans[0].reader == "fid"


@pytest.mark.parametrize("spec,copy", [("tiny-t5", False), ("bert2bert:tiny-bert", False),
                                       ("tiny-t5", True), ("bert2bert:tiny-bert", True)])
def test_compact_cached_states_give_the_same_loss(spec, copy):
    """A frozen encoder's cached states (masked positions dropped) train the decoder exactly as
    the full fused states would, with or without the copy head."""
    r = FiDReader.load(spec, device="cpu", max_length=20)
    if copy:
        torch.manual_seed(0)
        r.add_copy_head()
        torch.nn.init.normal_(r.copy.rank_bias.weight)  # make the passage terms matter
    r.trainable().eval()
    qs, evs, answers = ["where is paris?", "which city"], [_evs(3), _evs(2, "x")], ["France", "Paris"]
    with torch.no_grad():
        full = fid_train.fid_loss(r, qs, evs, answers)
        states = fid_train.encode_compact(r, qs, evs)
        f = r.encode(qs, evs)
        assert [s.hidden.shape[1] for s in states] == f.mask.sum(1).tolist()
        assert states[1].slots.unique().tolist() == [0, 1]
        cached = fid_train.loss_on_states(r, fid_train.pad_states(r, states), answers)
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


def test_passage_scores_give_each_position_its_passage_relevance_and_rank_bias():
    from kira.reader.fid import CopyHead, Fused

    head = CopyHead(4, 4)
    with torch.no_grad():
        head.relevance.weight.copy_(torch.tensor([[1.0, 0, 0, 0]]))
        head.relevance.bias.zero_()
        head.rank_bias.weight[:3, 0] = torch.tensor([0.0, 10.0, 20.0])
    enc = torch.zeros(1, 6, 4)
    enc[0, :, 0] = torch.tensor([1.0, 9.0, 2.0, 9.0, 3.0, 0.0])  # passage starts hold 1, 2, 3
    fused = Fused(enc, torch.tensor([[1, 1, 1, 1, 1, 0]]), torch.tensor([[5, 6, 7, 8, 9, 0]]),
                  torch.tensor([[0, 0, 1, 1, 2, 2]]))
    assert head.passage_scores(fused).tolist() == [[1.0, 1.0, 12.0, 12.0, 23.0, 23.0]]
    # selection: the passage holding the answer tokens (7, 8) is the positive one
    scores, present = head.slot_scores(fused)
    assert present.tolist() == [[True, True, True]]
    expected = -torch.log_softmax(scores, -1)[0, 1]
    assert torch.allclose(head.selection_loss(fused, [[7, 8]]), expected)
    assert float(head.selection_loss(fused, [[4]]).detach()) == 0.0  # no passage holds the answer: no signal


def _city_records(lands: list[str]) -> list[dict]:
    return [{"question": f"which land holds city number {i}?", "answers": [land],
             "contexts": [{"title": f"city {i}", "text": f"city number {i} lies in {land} , far away"},
                          {"title": "other", "text": "some other city lies elsewhere"}]} for i, land in enumerate(lands)]


@pytest.mark.parametrize("copy", [True, False])
def test_copy_head_answers_entities_never_seen_in_training(copy):
    """The pointer-generator copies an unseen answer out of the passage; a plain decoder cannot
    spell answers it never saw. This is why the default FiD reader has a copy head."""
    from kira.reader.train import TrainOptions, attach_passages, train_reader
    from kira.retriever.text import exact_match

    words = ["alpha", "bravo", "delta", "echo", "golf", "hotel", "india", "kilo", "lima", "mike", "oscar", "papa",
             "quebec", "romeo", "sierra", "tango", "victor", "whiskey", "yankee", "zulu", "amber", "coral",
             "ivory", "jade", "lemon", "olive", "pearl", "ruby", "silver", "steel"]
    train, test = _city_records(words[:24]), _city_records(words[24:])
    res = train_reader(train * 4, TrainOptions(kind="fid", base="bert2bert:tiny-bert", n_passages=2, max_length=24,
                                               batch_size=8, epochs=6, lr=3e-3, device="cpu", bf16=False,
                                               freeze_encoder=True, copy_head=copy, calibrate_fraction=0.0))
    r = res.reader
    r.max_answer_tokens = 1  # one-token names: what is tested is where the answer comes from
    got = r.read_batch([t["question"] for t in test], attach_passages(test, None, 2), allow_no_answer=False)
    em = sum(exact_match(a[0].text, t["answers"]) for a, t in zip(got, test, strict=True)) / len(test)
    assert (em >= 0.8) if copy else (em <= 0.2), em
