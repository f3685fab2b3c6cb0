"""End to end on a toy workspace: KB → verbalized passages → BM25 index → generated questions →
tiny readers trained with distant supervision → QAPipeline.ask / ask_batch → kira eval qa."""

from __future__ import annotations

import json

import pytest

from kira.schema import Entity, Relation, Triple

FACTS = [("dog", "canine"), ("wolf", "canine"), ("trout", "fish"), ("salmon", "fish"), ("oak", "tree"),
         ("maple", "tree"), ("rose", "shrub"), ("eagle", "bird"), ("sparrow", "bird"), ("python", "snake"),
         ("cobra", "snake"), ("tulip", "flower"), ("daisy", "flower"), ("shark", "fish"), ("owl", "bird")]


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    """A workspace with a toy KB, a BM25-only index and tiny trained default readers."""
    from kira.config import load_config
    from kira.index_build.build import build_index
    from kira.kb.store import DuckDBStore
    from kira.kb.verbalize import verbalize_kb
    from kira.reader.questions import questions_from_kb, write_questions
    from kira.reader.train import TrainOptions, train_reader
    from kira.retriever import open_retrievers

    root = tmp_path_factory.mktemp("ws")
    cfg = load_config(root)
    store = DuckDBStore(cfg.store_path)
    names = sorted({n for pair in FACTS for n in pair})
    ents = {f"e:{n}": Entity(id=f"e:{n}", kb="toy", name=n, description=f"the {n}") for n in names}
    rels = {"@": Relation(id="@", kb="toy", name="hypernym")}
    triples = [Triple("toy", f"e:{a}", "@", f"e:{h}") for a, h in FACTS]
    store.add_entities(ents.values())
    store.add_relations(rels.values())
    store.add_triples(triples)
    store.add_passages(verbalize_kb("toy", ents, rels, triples))
    store.register_source("toy", "kb:test")
    version = build_index(cfg, store, dense=False, progress=False)
    records = questions_from_kb(store, "toy", heldout=0.0)
    write_questions(records, root / "questions.jsonl")
    bm25 = open_retrievers(version, cfg)["bm25"]
    ex = train_reader(records * 2, TrainOptions(kind="extractive", base="tiny-bert", n_passages=2, max_length=48,
                                                batch_size=5, lr=3e-3, device="cpu", retrieve_k=3),
                      retriever=bm25, out=cfg.models_dir / "reader-extractive")
    fid = train_reader(records, TrainOptions(kind="fid", base="tiny-t5", n_passages=2, max_length=40,
                                             batch_size=5, lr=1e-2, device="cpu"),
                       retriever=bm25, out=cfg.models_dir / "reader-fid")
    bm25.close()
    store.close()
    return {"cfg": cfg, "root": root, "ex": ex, "fid": fid, "records": records}


def test_distant_supervision_training_runs_and_saves(ws):
    ex, fid = ws["ex"], ws["fid"]
    assert ex.n_train == 2 * len(FACTS) - ex.n_calibrate and ex.steps > 0
    assert sum(ex.losses[-3:]) < sum(ex.losses[:3])
    assert fid.steps > 0 and (ws["cfg"].models_dir / "reader-fid" / "kira.json").exists()
    saved = json.loads((ws["cfg"].models_dir / "reader-extractive" / "kira.json").read_text())
    assert saved["type"] == "extractive-reader" and saved["trained_on"]["steps"] == ex.steps


def test_pipeline_ask_returns_answer_with_evidence_and_provenance(ws):
    from kira.pipeline import AskResult, QAPipeline, evidence_kind, render_result

    pipe = QAPipeline.from_config(ws["cfg"])
    try:
        res = pipe.ask("What is trout a kind of?", k=3, sources="all", reader="extractive")
        assert isinstance(res, AskResult) and res.answer is not None
        assert res.index_version == pipe.index_version and res.index_version.startswith("v")
        # BM25 over the index, fused with graph expansion around the linked entity (kira.graph)
        assert res.retriever.split("+")[0] == "bm25" and res.reader == "extractive"
        assert 0 < len(res.evidence) <= 3 and all(evidence_kind(e) == "kb_fact" for e in res.evidence)
        assert res.evidence[0].title == "trout" or "trout" in res.evidence[0].text
        a = res.answer
        if not a.no_answer:
            assert a.evidence[0].text[a.span[0]:a.span[1]] == a.text
        assert set(res.timings) >= {"retrieve_s", "read_s", "total_s"}
        d = json.loads(json.dumps(res.to_dict()))
        assert d["index_version"] == res.index_version and d["evidence"][0]["id"] == res.evidence[0].id
        batch = pipe.ask_batch(["What is oak a kind of?", "What is owl a kind of?"], k=3, reader="fid")
        assert len(batch) == 2 and all(r.reader == "fid" and r.answer is not None for r in batch)
        assert pipe.ask("What is oak a kind of?", k=3, sources="text").evidence == []  # toy index has no text
        from rich.console import Console

        console = Console(record=True, width=120)
        render_result(res, console=console)
        assert "What is trout a kind of?" in console.export_text()
    finally:
        pipe.close()


def test_missing_reader_is_a_clear_error(ws, tmp_path):
    from kira.errors import KiraError
    from kira.pipeline import QAPipeline

    cfg = ws["cfg"].model_copy(update={"workspace": ws["root"]})
    pipe = QAPipeline.from_config(cfg)
    pipe.cfg = cfg.model_copy(update={"workspace": tmp_path})  # a workspace without models/
    try:
        with pytest.raises(KiraError, match="no fid reader"):
            pipe.ask("q?", reader="fid")
    finally:
        pipe.close()


def test_eval_qa_json(ws):
    from typer.testing import CliRunner

    from kira.cli import app

    out = CliRunner().invoke(app, ["eval", "qa", "--index", str(ws["root"]), "--questions",
                                   str(ws["root"] / "questions.jsonl"), "--k", "3", "--json"])
    assert out.exit_code == 0, out.output
    d = json.loads(out.stdout[out.stdout.index('{"n"'):])
    assert d["n"] == len(ws["records"]) and d["synthetic"] is True
    for kind in ("extractive", "fid"):
        assert 0 <= d[kind]["em"] <= d[kind]["f1"] <= 1
    assert set(d["retrieval"]) == {"top1", "top3"} and d["retrieval"]["top3"] >= d["retrieval"]["top1"]
    assert d["retrieval"]["top1"] > 0.5  # the subject's own passage comes first
    assert set(d["baselines"]) == {"most_frequent_entity", "top1_title"}
    # the answer-free entity baseline reads the hypernym off the top passage; the title never answers
    assert d["baselines"]["most_frequent_entity"]["em"] > 0.5 and d["baselines"]["top1_title"]["em"] == 0.0


def test_ensure_default_readers_trains_once_then_caches(ws):
    """Runs last: retrains the workspace's readers (tiny bases, seconds of budget) in subprocesses."""
    from kira.kb.store import DuckDBStore
    from kira.reader.defaults import ensure_default_readers

    cfg = ws["cfg"]
    store = DuckDBStore(cfg.store_path)
    try:
        info = ensure_default_readers(cfg, store, kb="toy", n_questions=20, extractive_seconds=3, fid_seconds=3,
                                      force=True, bases={"extractive": "tiny-bert"}, log=None)
        assert info["trained"] == ["extractive", "fid"]
        saved = {kind: json.loads((cfg.models_dir / f"reader-{kind}" / "kira.json").read_text())
                 for kind in ("extractive", "fid")}
        for kind in ("extractive", "fid"):
            assert info["summaries"][kind]["steps"] >= 1
            assert not (cfg.models_dir / f"reader-{kind}.partial").exists()
        # FiD is BERT2BERT over the extractive reader just trained, with a copy head
        assert saved["extractive"]["base"] == "tiny-bert"
        assert saved["fid"]["base"] == f"bert2bert:{cfg.models_dir / 'reader-extractive'}"
        assert saved["fid"]["copy_head"] and (cfg.models_dir / "reader-fid" / "copy_head.pt").exists()
        again = ensure_default_readers(cfg, store, kb="toy", log=None)
        assert again["trained"] == []
    finally:
        store.close()


def test_eval_qa_graph_measures_text_plus_graph_against_text_alone(ws):
    from typer.testing import CliRunner

    from kira.cli import app

    out = CliRunner().invoke(app, ["eval", "qa", "--index", str(ws["root"]), "--questions",
                                   str(ws["root"] / "questions.jsonl"), "--k", "3", "--graph", "--json"])
    assert out.exit_code == 0, out.output
    d = json.loads(out.stdout[out.stdout.index('{"n"'):])
    assert d["method"] == "bm25+graph" and set(d["text_only"]) == {"extractive", "fid", "retrieval", "baselines"}
    for kind in ("extractive", "fid"):
        for m in ("em", "f1"):
            assert d["graph_gain"][f"{kind}_{m}"] == pytest.approx(d[kind][m] - d["text_only"][kind][m], abs=1e-4)
    assert d["graph_gain"]["retrieval_top3"] == pytest.approx(
        d["retrieval"]["top3"] - d["text_only"]["retrieval"]["top3"], abs=1e-4)


def test_calibration_reads_retrieved_passages_in_order_not_given_contexts(ws):
    from kira.reader.extractive import ExtractiveReader
    from kira.reader.train import calibrate_in_use
    from kira.retriever import open_retrievers, resolve_version

    cfg = ws["cfg"]
    reader = ExtractiveReader.load(str(cfg.models_dir / "reader-extractive"), device="cpu")
    misleading = [dict(r, contexts=[{"id": "given", "title": "x", "text": "nothing to read"}]) for r in ws["records"]]
    seen: list[list[str]] = []
    read_batch = reader.read_batch

    def spy(questions, evidences, **kw):
        seen.extend([e.id for e in evs] for evs in evidences)
        return read_batch(questions, evidences, **kw)

    reader.read_batch = spy
    bm25 = open_retrievers(resolve_version(cfg.indexes_dir), cfg)["bm25"]
    try:
        calibrate_in_use(reader, misleading, bm25, k=3)
        expected = [[e.id for e in h] for h in bm25.batch_search([r["question"] for r in misleading], k=3)]
    finally:
        bm25.close()
    assert seen == expected and all(0 < len(ids) <= 3 for ids in seen) and "given" not in str(seen)


def test_reader_calibrate_command_stores_what_it_fitted_on(ws, tmp_path):
    import shutil

    from typer.testing import CliRunner

    from kira.reader.cli import app

    cfg = ws["cfg"]
    reader = tmp_path / "reader"
    shutil.copytree(cfg.models_dir / "reader-extractive", reader)
    res = CliRunner().invoke(app, ["calibrate", "--reader", str(reader), "--questions", str(ws["root"] / "questions.jsonl"),
                                   "--workspace", str(ws["root"]), "--method", "bm25", "--k", "3", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout[res.stdout.index("{"):])
    saved = json.loads((reader / "kira.json").read_text())
    assert saved["no_answer"] == out["calibration"] and saved["type"] == "extractive-reader"
    assert saved["no_answer_fitted_on"]["k"] == 3 and saved["no_answer_fitted_on"]["method"] == "bm25"
    res = CliRunner().invoke(app, ["calibrate", "--reader", str(reader), "--questions", str(ws["root"] / "questions.jsonl"),
                                   "--workspace", str(ws["root"]), "--method", "dense"])
    assert res.exit_code != 0 and "dense" in str(res.exception)
