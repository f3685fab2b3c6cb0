"""``kira reader train`` with given contexts, ``generate-questions`` on a toy store, bad input."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from kira.kb.store import DuckDBStore
from kira.reader.cli import app
from kira.schema import Entity, Relation, Triple


def test_train_with_given_contexts_saves_a_reloadable_artifact(tmp_path):
    rows = [{"question": f"What is {s} a kind of?", "answers": [h],
             "contexts": [{"title": s, "text": f"{s}, hypernym: {h}."}, {"title": "x", "text": "nothing here"}]}
            for s, h in [("dog", "canine"), ("oak", "tree"), ("trout", "fish"), ("rose", "shrub")]]
    q = tmp_path / "q.jsonl"
    q.write_text("\n".join(json.dumps(r) for r in rows))
    out = tmp_path / "reader"
    res = CliRunner().invoke(app, ["train", "--questions", str(q), "--kind", "extractive", "--base", "tiny-bert",
                                   "--out", str(out), "--max-length", "32", "--batch-size", "2", "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout[res.stdout.index("{"):])
    assert summary["n_train"] == 4 and summary["steps"] == 2
    from kira.reader.extractive import ExtractiveReader

    r = ExtractiveReader.load(str(out), device="cpu")
    assert r.model.has_relevance and r.max_length == 32
    saved = json.loads((out / "kira.json").read_text())
    assert saved["type"] == "extractive-reader" and saved["trained_on"]["n_train"] == 4


def test_train_rejects_bad_questions_file(tmp_path):
    q = tmp_path / "q.jsonl"
    q.write_text('{"question": "ok?", "answers": ["a"], "contexts": [{"text": "a"}]}\n{"question": 3}\n')
    res = CliRunner().invoke(app, ["train", "--questions", str(q), "--base", "tiny-bert", "--out", str(tmp_path / "o")])
    assert res.exit_code != 0 and "q.jsonl:2" in str(res.exception)
    assert not (tmp_path / "o").exists()


def test_generate_questions_command(tmp_path):
    ws = tmp_path / "ws"
    store = DuckDBStore(ws / "store.duckdb")
    store.add_entities([Entity(id="a", kb="k", name="dog"), Entity(id="b", kb="k", name="canine",
                                                                 aliases=["canid"])])
    store.add_relations([Relation(id="@", kb="k", name="hypernym")])
    store.add_triples([Triple("k", "a", "@", "b")])
    store.close()
    out = tmp_path / "qs.jsonl"
    res = CliRunner().invoke(app, ["generate-questions", "--workspace", str(ws), "--kb", "k", "--out", str(out)])
    assert res.exit_code == 0, res.output
    (rec,) = [json.loads(x) for x in out.read_text().splitlines()]
    assert rec["answers"] == ["canine", "canid"] and rec["synthetic"] and "dog" in rec["question"].lower()
    res = CliRunner().invoke(app, ["generate-questions", "--workspace", str(ws), "--kb", "nope", "--out", str(out)])
    assert res.exit_code != 0 and "nope" in str(res.exception)
