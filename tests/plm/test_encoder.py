import numpy as np
import pytest

from kira.plm import TextEncoder
from kira.plm.encoder import sentence_transformers_pooling
from kira.plm.zoo import packaged_minilm_path


@pytest.fixture(scope="module")
def minilm():
    return TextEncoder("minilm-l6")


def test_minilm_uses_its_sentence_transformers_pooling(minilm):
    assert sentence_transformers_pooling(packaged_minilm_path()) == ("mean", True)
    assert (minilm.pooling, minilm.normalize, minilm.dim) == ("mean", True, 384)


def test_bucketing_preserves_order_and_bf16_matches_fp32(minilm):
    texts = ["short", "a much longer sentence about rivers flowing through european capitals " * 3,
             "medium length text about cats", "", "x " * 300]
    minilm.bf16 = True
    fast = minilm.encode(texts, batch_size=2)
    minilm.bf16 = False
    exact = np.stack([minilm.encode([t])[0] for t in texts])
    minilm.bf16 = True
    cos = (fast * exact).sum(1)
    assert fast.shape == (5, 384) and fast.dtype == np.float32
    assert cos.min() > 0.999


def test_semantic_similarity_is_real(minilm):
    q, a, b = minilm.encode(["capital city of France", "Paris is the capital of France", "penguins swim"])
    assert q @ a > q @ b + 0.2


def test_encoder_save_load_round_trip(tmp_path):
    enc = TextEncoder("tiny-bert", pooling="cls", normalize=False)
    enc.save(tmp_path / "enc")
    back = TextEncoder.load(tmp_path / "enc")
    assert (back.pooling, back.normalize) == ("cls", False)
    texts = ["one", "two words"]
    np.testing.assert_allclose(enc.encode(texts), back.encode(texts), rtol=1e-4, atol=1e-5)


def test_embed_has_gradients():
    enc = TextEncoder("tiny-bert", pooling="mean", normalize=True)
    v = enc.embed(["a b", "c"])
    v.sum().backward()
    assert any(p.grad is not None for p in enc.model.parameters())


def test_empty_input():
    enc = TextEncoder("tiny-bert")
    assert enc.encode([]).shape == (0, enc.dim)
