"""DPR: loss math, BM25 mining of positives/hard negatives, training that learns, save → rebuild → search."""

import json
import math

import pytest
import torch

from kira.errors import KiraError
from kira.retriever.dpr import Ctx, DPRExample, dpr_loss, mine_examples

TOY = [
    ("Which river flows through Vienna and Budapest?", ["Danube"]),
    ("What is the capital of Germany?", ["Berlin"]),
    ("Which city lies on the river Seine?", ["Paris"]),
    ("How do green plants make sugar?", ["photosynthesis"]),
    ("What is the highest mountain above sea level?", ["Mount Everest"]),
    ("Which flightless seabirds live in the Southern Hemisphere?", ["penguins"]),
    ("What is the fifth planet from the Sun?", ["Jupiter"]),
    ("Which composer was born in Salzburg?", ["Mozart"]),
]


def test_dpr_loss_hand_computed():
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    p = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])  # 2 positives + 1 hard negative
    e = math.e
    expected = -math.log(e / (e + 1 + e))  # both rows: scores [1, 0, 1] / [0, 1, 1]
    assert float(dpr_loss(q, p)) == pytest.approx(expected)
    assert float(dpr_loss(q, p, scale=2.0)) == pytest.approx(-math.log(e**2 / (e**2 + 1 + e**2)))
    mask = torch.tensor([[False, False, True], [False, False, False]])  # hide a duplicate positive
    row0 = -math.log(e / (e + 1))
    assert float(dpr_loss(q, p, mask=mask)) == pytest.approx((row0 + expected) / 2)


def test_mining_positives_and_hard_negatives(tiny_retrievers):
    rows = [{"question": q, "answers": a} for q, a in TOY[:2]]
    rows.append({"question": "Who wrote Hamlet?", "answers": ["Shakespeare"]})
    rows.append({"question": "Vienna river?", "answers": ["Danube"],
                 "positive_ctxs": [{"title": "Gold", "text": "The Danube, given.", "passage_id": "g1"}]})
    ex, rep = mine_examples(rows, tiny_retrievers["bm25"], k=8)
    assert (rep.n_rows, rep.n_examples, rep.mined_positive, rep.given_positive, rep.no_positive) == (4, 3, 2, 1, 1)
    assert ex[0].positive.id == "tiny-2" and ex[1].positive.id == "tiny-1"
    for e in ex:
        assert e.hard_negative is not None and e.hard_negative.id != e.positive.id
        assert "danube" not in e.hard_negative.text.lower() or e.answers != ["Danube"]
    assert ex[2].positive == Ctx("g1", "Gold", "The Danube, given.")
    assert "berlin" not in ex[1].hard_negative.text.lower()


def test_train_separate_encoders_learns_saves_and_serves(tiny_index, build_tiny_index, tmp_path):
    """Train tiny-bert DPR through the CLI, rebuild the index with the passage encoder, search."""
    from typer.testing import CliRunner

    from kira.plm import zoo
    from kira.plm.encoder import TextEncoder
    from kira.retriever.cli import app
    from kira.retriever.dense import DenseRetriever, resolve_query_encoder_spec

    _, version = tiny_index
    qf = tmp_path / "train.jsonl"
    qf.write_text("".join(json.dumps({"question": q, "answers": a}) + "\n" for q, a in TOY))
    out = tmp_path / "dpr"
    res = CliRunner().invoke(app, ["train", "--index", str(version.path), "--questions", str(qf), "--out", str(out),
                                   "--base", "tiny-bert", "--pooling", "mean", "--epochs", "6", "--batch-size", "4",
                                   "--lr", "1e-3",
                                   "--separate", "--json"])
    assert res.exit_code == 0, res.output
    info = json.loads(res.stdout.strip().splitlines()[-1])
    assert info["n_examples"] == 8 and info["mining"]["mined_positive"] == 8
    assert info["loss_after"] < 0.7 * info["loss_before"], info
    qdir, pdir = out / "question", out / "passage"
    assert zoo.artifact_config(pdir)["query_encoder"] == "../question"
    assert zoo.artifact_config(qdir)["role"] == "question"
    # the artifacts reload through the zoo / TextEncoder, and question and passage towers differ
    qenc, penc = TextEncoder(str(qdir)), TextEncoder(str(pdir))
    assert qenc.dim == penc.dim == 32
    a, b = qenc.encode(["capital of Germany"]), penc.encode(["capital of Germany"])
    assert not torch.allclose(torch.from_numpy(a), torch.from_numpy(b))
    # an index built with the passage encoder finds its question encoder by itself
    assert resolve_query_encoder_spec({"encoder": {"spec": str(pdir)}}) == (str(qdir.resolve()), False)
    assert info["rebuild"].endswith(f"--encoder {pdir}")

    _, v2 = build_tiny_index(tmp_path / "ws2", encoder=str(pdir))
    dense = DenseRetriever(v2)
    assert dense.encoder.spec == str(qdir.resolve())
    hits = dense.batch_search([q for q, _ in TOY], k=8)
    # trained on exactly these questions: most find their passage first
    top1 = sum(any(x.lower() in h[0].text.lower() for x in a) for h, (_, a) in zip(hits, TOY, strict=True))
    assert top1 >= 5, [h[0].id for h in hits]


def test_question_only_training_keeps_the_index_and_serves_through_query_encoder(tiny_index, tmp_path):
    """Only the question tower learns, against the index's own vectors: no rebuild, same passages."""
    from typer.testing import CliRunner

    from kira.plm import zoo
    from kira.retriever.cli import app
    from kira.retriever.dense import DenseRetriever

    _, version = tiny_index
    qf = tmp_path / "train.jsonl"
    qf.write_text("".join(json.dumps({"question": q, "answers": a}) + "\n" for q, a in TOY))
    out = tmp_path / "dprq"
    res = CliRunner().invoke(app, ["train", "--index", str(version.path), "--questions", str(qf), "--out", str(out),
                                   "--question-only", "--steps", "12", "--batch-size", "4", "--lr", "1e-4", "--json"])
    assert res.exit_code == 0, res.output
    info = json.loads(res.stdout.strip().splitlines()[-1])
    assert info["n_examples"] == 8 and info["loss_after"] < info["loss_before"], info
    assert zoo.artifact_config(out)["type"] == "dpr-question-encoder" and f'query_encoder = "{out}"' in info["use"]
    tuned, own = DenseRetriever(version, query_encoder=str(out)), DenseRetriever(version)
    assert tuned.encoder.spec == str(out) and tuned.index.ntotal == own.index.ntotal
    hits = tuned.batch_search([q for q, _ in TOY], k=3)
    top1 = sum(any(x.lower() in h[0].text.lower() for x in a) for h, (_, a) in zip(hits, TOY, strict=True))
    assert top1 >= 6, [h[0].id for h in hits]


def test_shared_encoder_training_writes_one_directory(tmp_path):
    from kira.plm import zoo
    from kira.plm.encoder import TextEncoder
    from kira.retriever.dpr import train_dpr

    ex = [DPRExample(q, a, Ctx(f"p{i}", "", f"passage about {a[0]}"), Ctx(f"n{i}", "", "unrelated text"))
          for i, (q, a) in enumerate(TOY[:4])]
    res = train_dpr(ex, tmp_path / "shared", base="tiny-bert", shared=True, epochs=1, batch_size=2, lr=1e-3,
                    pooling="mean")
    assert res.question_dir == res.passage_dir == tmp_path / "shared"
    assert zoo.artifact_config(res.passage_dir)["role"] == "shared"
    assert TextEncoder(str(res.passage_dir)).pooling == "mean"
    assert len(res.losses) == 2 and all(math.isfinite(x) for x in res.losses)
    with pytest.raises(KiraError, match="no training examples"):
        train_dpr([], tmp_path / "none", base="tiny-bert")
