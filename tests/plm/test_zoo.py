import pytest
import torch

from kira.errors import ModelNotFoundError
from kira.plm import zoo


def test_alias_resolves_to_packaged_minilm():
    r = zoo.resolve("minilm-l6")
    assert r.kind == "alias" and (r.path / "model.safetensors").exists()
    assert zoo.resolve(None).spec == zoo.DEFAULT_SPEC


def test_local_directory_round_trip(tmp_path):
    tok, model = zoo.load("tiny-bert")
    d = zoo.save_artifact(tmp_path / "m", model, tok, {"type": "test"})
    assert zoo.resolve(str(d)).kind == "dir"
    tok2, model2 = zoo.load(str(d))
    ids = tok("hello world", return_tensors="pt")
    with torch.no_grad():
        a = model(**ids).last_hidden_state
        b = model2(**ids).last_hidden_state
    assert torch.allclose(a, b)
    saved = zoo.artifact_config(d)
    assert saved["type"] == "test" and saved["format_version"] == 1 and saved["kira_version"]


def test_missing_model_error_names_spec_and_cache(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError) as e:
        zoo.load_model("no-such-org/no-such-model")
    assert "no-such-org/no-such-model" in str(e.value) and "cache" in str(e.value)
    with pytest.raises(ModelNotFoundError, match="no such directory"):
        zoo.resolve("/definitely/not/here")


@pytest.mark.parametrize(
    ("spec", "family", "cls_name"),
    [
        ("tiny-bert", "encoder", "BertModel"),
        ("tiny-bert", "extractive-qa", "BertForQuestionAnswering"),
        ("tiny-bert", "mlm", "BertForMaskedLM"),
        ("tiny-t5", "seq2seq", "T5ForConditionalGeneration"),
        ("tiny-bart", "seq2seq", "BartForConditionalGeneration"),
        ("bert2bert:tiny-bert", "seq2seq", "EncoderDecoderModel"),
        ("tiny-tapas", "tapas", "TapasForQuestionAnswering"),
        ("tiny-bigbird", "long-encoder", "BigBirdModel"),
        ("tiny-longformer", "long-encoder", "LongformerModel"),
    ],
)
def test_tiny_model_for_every_family_runs_forward(spec, family, cls_name):
    tok, model = zoo.load(spec, family)
    assert type(model).__name__ == cls_name
    text = "where is paris? " * (20 if family == "long-encoder" else 1)
    model.eval()
    with torch.no_grad():
        if family == "seq2seq":
            enc = tok(["question: where is paris?"], return_tensors="pt")
            labels = tok(["france"], return_tensors="pt").input_ids
            out = model(input_ids=enc.input_ids, attention_mask=enc.attention_mask, labels=labels)
            assert torch.isfinite(out.loss)
        elif family == "tapas":
            import pandas as pd

            table = pd.DataFrame({"city": ["Paris", "Lima"], "pop": ["2.1", "9.7"]})
            enc = tok(table=table, queries=["population of paris?"], return_tensors="pt")
            out = model(**enc)
            assert out.logits.shape == enc.input_ids.shape
        else:
            enc = tok([text], return_tensors="pt")
            out = model(**enc)
            assert out[0].shape[0] == 1


def test_tiny_models_are_deterministic():
    a = zoo.load_model("tiny-bert")
    b = zoo.load_model("tiny-bert")
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)


def test_unknown_family_rejected():
    with pytest.raises(ValueError, match="family"):
        zoo.load_model("tiny-bert", "vision")


def test_bert2bert_decoder_is_warm_started_from_the_encoder():
    """Cross-attention starts as the layer's self-attention, the LM-head transform as the identity."""
    _, model = zoo.load("bert2bert:tiny-bert", "seq2seq")
    enc = model.encoder.state_dict()
    dec = model.decoder.bert.state_dict()
    for name in ("encoder.layer.1.attention.self.query.weight", "encoder.layer.0.attention.output.dense.bias"):
        assert torch.equal(dec[name.replace(".attention.", ".crossattention.")], enc[name])
        assert torch.equal(dec[name], enc[name])
    dense = model.decoder.cls.predictions.transform.dense
    assert torch.equal(dense.weight, torch.eye(dense.weight.shape[0])) and not dense.bias.any()
    assert model.decoder.cls.predictions.decoder.weight is model.decoder.bert.embeddings.word_embeddings.weight
