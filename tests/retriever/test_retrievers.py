"""BM25, dense and hybrid over a real built index (Lucene + FAISS + MiniLM), via the contract."""

import pytest

from kira.errors import IndexError_
from kira.retriever.testing import RetrieverContract

EASY = {
    "Which river flows through Vienna and Budapest?": "tiny-2",
    "capital of Germany": "tiny-1",
    "composer born in Salzburg": "tiny-7",
    "highest mountain on Earth": "tiny-4",
}


class TestBM25(RetrieverContract):
    easy_queries = EASY
    easy_top = 1

    @pytest.fixture
    def retriever(self, tiny_retrievers):
        return tiny_retrievers["bm25"]

    @pytest.fixture
    def retriever_factory(self, tiny_index):
        from kira.retriever.bm25 import BM25Retriever

        return lambda: BM25Retriever(tiny_index[1])  # its own Lucene searcher, closed by the test


class TestDense(RetrieverContract):
    easy_queries = {**EASY, "flightless birds of the south": "tiny-5", "how plants turn light into food": "tiny-3"}
    easy_top = 1

    @pytest.fixture
    def retriever(self, tiny_retrievers):
        return tiny_retrievers["dense"]

    @pytest.fixture
    def retriever_factory(self, tiny_index):
        from kira.retriever.dense import DenseRetriever

        return lambda: DenseRetriever(tiny_index[1], device="cpu")  # its own docstore map, closed by the test


class TestHybridRRF(RetrieverContract):
    easy_queries = EASY
    easy_top = 1

    @pytest.fixture
    def retriever(self, tiny_retrievers):
        return tiny_retrievers["hybrid"]


class TestHybridLinear(RetrieverContract):
    easy_queries = EASY
    easy_top = 1

    @pytest.fixture
    def retriever(self, tiny_retrievers):
        from kira.retriever.hybrid import HybridRetriever

        return HybridRetriever(tiny_retrievers["bm25"], tiny_retrievers["dense"], method="linear", alpha=0.5)


def test_evidence_carries_provenance_from_the_version(tiny_retrievers, tiny_index):
    _, version = tiny_index
    for name in ("bm25", "dense"):
        top = tiny_retrievers[name].search("Danube Vienna", k=1)[0]
        assert top.id == "tiny-2" and top.title == "Danube"
        assert top.text.startswith("The Danube is the second-longest river")  # text without the title line
        assert top.source == "tiny" and top.retriever == name
        assert top.metadata["position"] == 2 and top.metadata["rank"] == 1
        assert top.metadata["index_version"] == version.name


def test_dense_default_k_is_100_and_bounded_by_corpus(tiny_retrievers):
    dense = tiny_retrievers["dense"]
    assert dense.k == 100
    assert len(dense.search("river")) == 8  # whole tiny corpus, nothing invented


def test_dense_scores_are_faiss_inner_products(tiny_retrievers):
    import numpy as np

    dense = tiny_retrievers["dense"]
    q = dense.encode(["capital of Germany"])
    scores, ids = dense.search_ids(q, 3)
    vec = dense.index.reconstruct(int(ids[0][0]))
    assert float(scores[0][0]) == pytest.approx(float(np.dot(q[0], vec)), rel=1e-4)
    hits = dense.search_vectors(q, 3)[0]
    assert [h.score for h in hits] == pytest.approx(scores[0].tolist())


def test_passage_vectors_are_the_index_vectors_read_back(tiny_retrievers):
    import numpy as np

    dense = tiny_retrievers["dense"]
    hit = dense.search("capital of Germany", k=1)[0]
    q = dense.encode(["capital of Germany"])[0]
    got = dense.passage_vectors([hit.id, "no-such-passage"])
    assert set(got) == {hit.id} and float(np.linalg.norm(got[hit.id])) == pytest.approx(1.0, rel=1e-5)
    assert float(got[hit.id] @ q) == pytest.approx(hit.score / float(np.linalg.norm(dense.index.reconstruct(
        dense.docids.index(hit.id)))), rel=1e-4)


def test_bm25_parameters_come_from_manifest_and_can_be_overridden(tiny_index):
    from kira.retriever.bm25 import BM25Retriever

    _, version = tiny_index
    default = BM25Retriever(version)
    assert (default.k1, default.b) == (0.9, 0.4)
    other = BM25Retriever(version, k1=2.0, b=1.0)
    q = "river city capital"
    assert [h.score for h in default.search(q, 3)] != [h.score for h in other.search(q, 3)]


def test_open_by_path_and_workspace(tiny_index):
    from kira.retriever import open_retrievers, resolve_version

    cfg, version = tiny_index
    ws = version.path.parent.parent
    assert resolve_version(ws).path == version.path
    assert resolve_version(version.path.parent).path == version.path
    assert resolve_version(str(version.path)).name == version.name
    with pytest.raises(IndexError_):
        resolve_version(ws / "nowhere")
    assert set(open_retrievers(version.path, cfg)) == {"bm25", "dense", "hybrid"}


def test_query_encoder_dimension_mismatch_is_a_clear_error(tiny_index):
    from kira.retriever.dense import DenseRetriever

    _, version = tiny_index
    with pytest.raises(IndexError_, match="32-d vectors but the FAISS index holds 384-d"):
        DenseRetriever(version, query_encoder="tiny-bert")


@pytest.mark.parametrize("method", ["bm25", "dense", "hybrid"])
def test_search_cli_json(tiny_index, method):
    import json

    from typer.testing import CliRunner

    from kira.retriever.cli import app

    _, version = tiny_index
    res = CliRunner().invoke(app, ["search", "river through Vienna and Budapest", "--index",
                                   str(version.path.parent.parent), "--method", method, "--k", "2", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["method"] == method and out["version"] == version.name
    assert len(out["hits"]) == 2 and out["hits"][0]["id"] == "tiny-2"
    assert out["hits"][0]["retriever"] == method


def test_search_cli_rejects_unknown_method(tiny_index):
    from typer.testing import CliRunner

    from kira.retriever.cli import app

    _, version = tiny_index
    res = CliRunner().invoke(app, ["search", "x", "--index", str(version.path), "--method", "splade"])
    assert res.exit_code == 2 and "--method" in res.output


def test_bm25_only_version_opens_bm25_and_eval_skips_dense(build_tiny_index, tmp_path):
    import json

    from typer.testing import CliRunner

    from kira.retriever import open_retrievers
    from kira.retriever.cli import app

    cfg, version = build_tiny_index(tmp_path / "ws", dense=False)
    rets = open_retrievers(version, cfg)
    assert set(rets) == {"bm25"}
    assert rets["bm25"].search("Danube", 1)[0].id == "tiny-2"
    qf = tmp_path / "q.jsonl"
    qf.write_text(json.dumps({"question": "Danube river", "answers": ["Danube"]}) + "\n")
    res = CliRunner().invoke(app, ["eval", "--index", str(tmp_path / "ws"), "--questions", str(qf), "--k", "1",
                                   "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout) == {"n": 1, "bm25": {"top1": 1.0}}
