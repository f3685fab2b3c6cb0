import json

from typer.testing import CliRunner

from kira.graph.cli import app

runner = CliRunner()


def test_build_questions_expand_and_train(geo_workspace, tmp_path):
    cfg = geo_workspace
    r = runner.invoke(app, ["build", "--kb", "geo", "--json"])
    assert r.exit_code == 0, r.output
    stats = json.loads(r.output)
    assert stats["nodes"] == 9 and stats["edges"] == 8
    assert list((cfg.models_dir / "graph-cache").glob("geo-all-*.pkl"))
    out = tmp_path / "q.jsonl"
    r = runner.invoke(app, ["multihop-questions", "--kb", "geo", "--out", str(out), "--json"])
    assert r.exit_code == 0 and json.loads(r.output)["questions"] == 5
    r = runner.invoke(app, ["expand", "Where was Mozart born?", "--encoder", "none", "--json", "--k", "2"])
    assert r.exit_code == 0, r.output
    ev = json.loads(r.output)["evidence"]
    assert len(ev) == 2 and all(e["retriever"] == "graph" and e["metadata"]["triples"] for e in ev)
    r = runner.invoke(app, ["train-graph-bert", "--kb", "geo", "--features", "id", "--k", "3", "--hidden", "16",
                            "--pretrain-steps", "2", "--steps", "3", "--batch-size", "4", "--json"])
    assert r.exit_code == 0, r.output
    assert (cfg.models_dir / "geo-graph-bert" / "kira.json").exists()
    r = runner.invoke(app, ["build", "--kb", "nope"])
    assert r.exit_code == 2
