"""``kira kb`` end to end in a workspace: add, list, facts, link, embed, eval kb, remove."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from kira.cli import app

runner = CliRunner()


def invoke(*args):
    res = runner.invoke(app, list(args))
    assert res.exit_code == 0, res.output
    return res.output


def test_kb_cli_lifecycle(workspace, tmp_path):
    d = tmp_path / "toy"
    d.mkdir()
    (d / "train.txt").write_text("".join(f"p{i}\tlives_in\tc{i % 3}\n" for i in range(3, 30)) +
                                 "".join(f"p{i}\tfriend_of\tp{(i + 3) % 30}\n" for i in range(30)))
    (d / "test.txt").write_text("".join(f"p{i}\tlives_in\tc{i % 3}\n" for i in range(3)))
    out = json.loads(invoke("kb", "add", "toy", str(d), "--source", "pykeen", "--no-index", "--json"))
    assert out["n_triples"] == 60 and out["splits"] == {"train": 57, "test": 3} and out["version"] == 1
    rows = json.loads(invoke("kb", "list", "--json"))
    assert rows[0]["name"] == "toy" and rows[0]["n_entities"] == 33
    facts = json.loads(invoke("kb", "facts", "p4", "--json"))
    assert ["p4", "lives_in", "c1"] in [f["triple"] for f in facts["facts"]]
    links = json.loads(invoke("kb", "link", "who does p4 know", "--json"))
    assert links[0]["id"] == "p4"
    emb = json.loads(invoke("kb", "embed", "--kb", "toy", "--dim", "16", "--epochs", "30", "--device", "cpu",
                            "--json"))
    assert (workspace / "models" / "toy-transe" / "weights.safetensors").exists()
    ev = json.loads(invoke("eval", "kb", "--kb", "toy", "--json"))
    assert ev["n"] == 3 and abs(ev["mrr"] - emb["test"]["mrr"]) < 1e-9
    assert "removed toy and 1 artifact" in invoke("kb", "remove", "toy", "--no-index")
    assert json.loads(invoke("kb", "list", "--json")) == []


def test_bad_file_is_a_clean_error(workspace, tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("a\tr\tb\nonly two\tcolumns\n")
    res = runner.invoke(app, ["kb", "add", "bad", str(bad), "--no-index"])
    assert res.exit_code == 2 and "bad.tsv:2" in res.output
