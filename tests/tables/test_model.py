"""The TAPAS model through kira: heads and embeddings, losses, save/load round trip, training."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from kira.tables.generate import generate_for_table
from kira.tables.tapas import TableQAModel
from kira.tables.train import train_table_qa
from kira.tables.values import AGGREGATIONS

DF = pd.DataFrame({"name": ["ann", "bob", "cid", "dee"], "team": ["red", "blue", "red", "red"],
                   "age": [31, 25, 47, 38]})


@pytest.fixture(scope="module")
def tiny():
    return TableQAModel.load("tiny-tapas", max_length=64, device="cpu")


def test_forward_shapes_and_table_embeddings(tiny):
    cfg = tiny.model.config
    assert cfg.num_aggregation_labels == 4 and cfg.aggregation_labels[3] == "COUNT"
    items = [tiny.encode_one(DF, "how old is bob?", [(1, 2)], ["25"]),
             tiny.encode_one(DF, "total age of team red?", [(0, 2), (2, 2), (3, 2)], ["116"])]
    batch = tiny.collate(items)
    n = batch["input_ids"].shape[1]
    assert batch["token_type_ids"].shape == (2, n, 7)  # segment, column, row, prev, rank, inv-rank, numeric
    tt = batch["token_type_ids"][0]
    assert tt[:, 1].max() == 3 and tt[:, 2].max() == 4  # 3 columns, 4 rows
    assert tt[:, 4].max() == 4  # the numeric 'age' column is ranked 1..4
    assert int(batch["labels"][1].sum()) >= 3
    out = tiny.model(**batch, aggregation_labels=torch.tensor([0, 1]), float_answer=torch.tensor([25.0, 116.0]))
    assert out.logits.shape == (2, n) and out.logits_aggregation.shape == (2, 4)
    assert torch.isfinite(out.loss)
    out.loss.backward()
    m = tiny.model
    for p in (m.aggregation_classifier.weight, m.column_output_weights, m.output_weights,
              m.tapas.embeddings.token_type_embeddings_1.weight):
        assert p.grad is not None and p.grad.abs().sum() > 0
    m.zero_grad()


def test_predict_gives_valid_cells(tiny):
    preds = tiny.predict([DF, DF], ["how old is bob?", "how many red?"])
    assert len(preds) == 2
    for p in preds:
        assert p.aggregation in AGGREGATIONS and len(p.aggregation_probs) == 4
        assert all(0 <= r < 4 and 0 <= c < 3 for r, c in p.cells)


def test_save_load_round_trip(tiny, tmp_path):
    d = tiny.save(tmp_path / "tq", {"note": "test"})
    assert json.loads((d / "kira.json").read_text())["type"] == "table-qa"
    again = TableQAModel.load(d, device="cpu")
    assert again.max_length == 64
    b = tiny.collate([tiny.encode_one(DF, "how old is bob?")])
    inputs = {k: b[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
    tiny.model.eval()
    with torch.no_grad():
        a1, a2 = tiny.model(**inputs), again.model(**inputs)
    assert torch.allclose(a1.logits, a2.logits) and torch.allclose(a1.logits_aggregation, a2.logits_aggregation)


def test_minilm_init_loads_bert_body():
    from kira.plm import zoo

    m = TableQAModel.load("minilm-l6", max_length=64, device="cpu")
    bert = zoo.load_model("minilm-l6", "encoder")
    assert torch.equal(m.model.tapas.embeddings.word_embeddings.weight, bert.embeddings.word_embeddings.weight)
    assert torch.equal(m.model.tapas.encoder.layer[5].output.dense.weight, bert.encoder.layer[5].output.dense.weight)
    assert m.model.config.num_aggregation_labels == 4


def test_training_lowers_loss():
    model = TableQAModel.load("tiny-tapas", max_length=64, device="cpu")
    qs = generate_for_table("people", DF, ["VARCHAR", "VARCHAR", "BIGINT"], n_views=4, per_view=3, seed=0)
    stats = train_table_qa(model, qs, {"people": DF}, steps=40, batch_size=8, lr=1e-3, head_lr=1e-2,
                           bf16=False, log=None)
    assert stats.examples == len(qs) and stats.steps == 40
    assert stats.final_loss < 0.8 * stats.first_loss
